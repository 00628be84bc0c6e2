"""Fuzzing the command line with damaged files: every one ends in a result or a one-line error.

Hypothesis draws mutations (truncation, flipped bytes, overwritten ranges, changed header
fields) of valid model files, checkpoints, specs, data files and NIR graphs. All mutated files of
a kind are run through ``eventsnn.cli.main`` in one subprocess under an address-space limit, so
that a crash (a signal), a traceback, an unexpected error or a runaway allocation fails the test
with the file that caused it, instead of taking pytest down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import strategies as st

from eventsnn.model import save
from eventsnn.testing.strategies import fixed_sample

MUTATIONS_PER_KIND = 60  # 400 a kind (3,200 runs) were clean when this was written; 60 keeps CI short
ADDRESS_SPACE_LIMIT = 6 * 2**30  # numba and LLVM reserve much virtual memory; real use stays far below
MEMORY_LIMIT_MIB = 1024  # eventsnn's own limit, checked before it allocates


@st.composite
def mutations(draw, size: int):
    """A list of edits to a file of ``size`` bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "zero"]))
    at = draw(st.integers(0, max(size - 1, 0)))
    if kind == "truncate":
        return [("truncate", at, 0, b"")]
    count = draw(st.integers(1, 8))
    if kind == "flip":
        return [("flip", draw(st.integers(0, size - 1)), 0, b"") for _ in range(count)]
    value = draw(st.binary(min_size=1, max_size=16)) if kind == "overwrite" else bytes(count)
    return [("overwrite", at, 0, value)]


def mutate(raw: bytes, edits) -> bytes:
    data = bytearray(raw)
    for kind, at, _, value in edits:
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] ^= 0xFF
        elif kind == "overwrite":
            data[at:at + len(value)] = value
    return bytes(data)


RUNNER = textwrap.dedent("""
    import contextlib, io, json, os, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    os.environ["EVENTSNN_MEMORY_LIMIT_MIB"] = "{memory}"
    from eventsnn.cli import main
    for line in sys.stdin:
        args = json.loads(line)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(args)
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 2
            except BaseException as exc:
                code = "raised " + type(exc).__name__ + ": " + str(exc)
        print(json.dumps({{"args": args, "code": code, "stderr": err.getvalue()}}), flush=True)
""")


def run_all(cases: list[list[str]]) -> list[dict]:
    """Every argument list through ``main`` in one subprocess; a case that kills it is reported."""
    script = RUNNER.format(limit=ADDRESS_SPACE_LIMIT, memory=MEMORY_LIMIT_MIB)
    proc = subprocess.run([sys.executable, "-c", script], input="".join(json.dumps(c) + "\n" for c in cases),
                          capture_output=True, text=True, timeout=600)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        victim = cases[len(results)] if len(results) < len(cases) else None
        pytest.fail(f"the CLI process died (code {proc.returncode}) on {victim}: {proc.stderr[-2000:]}")
    return results


def assert_clean(results: list[dict]) -> None:
    assert any("undamaged_" in " ".join(r["args"]) for r in results)  # the seed itself is among the cases
    for r in results:
        where = f"{r['args']}: code {r['code']}, stderr {r['stderr'][-1500:]!r}"
        if "undamaged_" in " ".join(r["args"]):  # the valid seed file must work, or the fuzzing proves nothing
            assert r["code"] == 0, where
        assert r["code"] in (0, 2), where  # 1 = an unexpected error (a bug), a string = an exception escaped
        assert "Traceback" not in r["stderr"], where
        if r["code"] == 2:
            lines = [line for line in r["stderr"].splitlines() if line.strip()]
            assert len(lines) == 1 and "error" in lines[0], where


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, demo, demo_files):
    folder = tmp_path_factory.mktemp("fuzz")
    save(demo.model, folder / "model.npz")
    np.savez(folder / "data.npz", x=(demo.x[:8] * 255).astype(np.uint8), y=demo.y[:8])
    return folder


def mutated_files(raw: bytes, folder, name: str) -> list:
    """The undamaged file first, then its mutations."""
    (folder / f"undamaged_{name}").write_bytes(raw)
    paths = [folder / f"undamaged_{name}"]
    for i, edits in enumerate(fixed_sample(mutations(len(raw)), MUTATIONS_PER_KIND)):
        path = folder / f"{i}_{name}"
        path.write_bytes(mutate(raw, edits))
        paths.append(path)
    return paths


def test_damaged_model_files(seeds, tmp_path):
    files = mutated_files((seeds / "model.npz").read_bytes(), tmp_path, "model.npz")
    assert_clean(run_all([["run", str(f), "--data", str(seeds / "data.npz"), "--steps", "3"] for f in files]))


def test_damaged_checkpoints_and_specs(seeds, demo_files, tmp_path):
    ckpts = mutated_files(demo_files["mnist_cnn.pt"].read_bytes(), tmp_path, "ckpt.pt")
    specs = mutated_files(demo_files["mnist_cnn.json"].read_bytes(), tmp_path, "arch.json")
    common = ["--calib", str(seeds / "data.npz"), "-o", str(tmp_path / "out.npz")]
    cases = [["convert", str(c), "--arch", str(demo_files["mnist_cnn.json"]), *common] for c in ckpts]
    cases += [["convert", str(demo_files["mnist_cnn.pt"]), "--arch", str(s), *common] for s in specs]
    assert_clean(run_all(cases))


def test_damaged_data_files(seeds, tmp_path):
    files = mutated_files((seeds / "data.npz").read_bytes(), tmp_path, "data.npz")
    idx = np.concatenate([[0, 0, 8, 3], np.frombuffer(np.array([8, 28, 28], ">u4").tobytes(), np.uint8),
                          np.random.default_rng(0).integers(0, 256, 8 * 784)]).astype(np.uint8).tobytes()
    cases = [["run", str(seeds / "model.npz"), "--data", str(f), "--steps", "3"] for f in files]
    for raw in mutated_files(idx, tmp_path, "images"):
        folder = tmp_path / f"mnist_{raw.name}"
        folder.mkdir()
        raw_path = folder / "t10k-images-idx3-ubyte"
        raw_path.write_bytes(raw.read_bytes())
        (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 8]) + bytes(8))
        cases.append(["run", str(seeds / "model.npz"), "--data", str(folder), "--steps", "3"])
    assert_clean(run_all(cases))


def test_damaged_nir_graphs(seeds, demo, tmp_path):
    pytest.importorskip("nir")
    import warnings

    from eventsnn.loaders.nir_graph import save_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from eventsnn.ir import Flatten, Linear, Network, ReLU
        from eventsnn.snn import SimulationConfig, build

        net = Network((1, 28, 28), (Flatten(), Linear(np.ones((4, 784), np.float32) / 784, None, "h"), ReLU(),
                                    Linear(np.ones((10, 4), np.float32), None, "o")))
        save_nir(build(net, SimulationConfig(spikes="binary")), seeds / "net.nir")
    files = mutated_files((seeds / "net.nir").read_bytes(), tmp_path, "net.nir")
    assert_clean(run_all([["run", str(f), "--data", str(seeds / "data.npz"), "--steps", "3"] for f in files]))


def test_damaged_onnx_graphs(seeds, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(0, 0.05, (16, 784)).astype(np.float32), rng.normal(0, 0.3, (10, 16)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1),
         helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
         # a QCFS activation (4 levels, threshold 0.5) as an elementwise chain, the way torch exports one
         helper.make_node("Mul", ["h", "steps"], ["q1"]), helper.make_node("Add", ["q1", "half"], ["q2"]),
         helper.make_node("Floor", ["q2"], ["q3"]), helper.make_node("Clip", ["q3", "zero", "levels"], ["q4"]),
         helper.make_node("Div", ["q4", "steps"], ["r"]),
         helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], transB=1)],
        "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(np.zeros(16, np.float32), "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(np.zeros(10, np.float32), "b2"),
         *(numpy_helper.from_array(np.float32(v), k) for k, v in
           (("steps", 8.0), ("half", 0.5), ("zero", 0.0), ("levels", 4.0)))])
    onnx.save(helper.make_model(graph), seeds / "net.onnx")
    files = mutated_files((seeds / "net.onnx").read_bytes(), tmp_path, "net.onnx")
    common = ["--calib", str(seeds / "data.npz"), "-o", str(tmp_path / "out.npz")]
    assert_clean(run_all([["convert", str(f), *common] for f in files]))


def test_damaged_sweep_specs_and_energy_models(seeds, tmp_path):
    """Sweep specs and energy-model files: damaged JSON is one line, exit 2 (a few cells at most run:
    the spec is checked whole first)."""
    spec = {"checkpoints": [{"checkpoint": str(seeds / "onnx_for_sweep.onnx"), "calib": str(seeds / "data.npz"),
                             "calib_limit": 8}],
            "data": str(seeds / "data.npz"), "limit": 8, "grid": {"steps": [2], "spikes": ["graded", "binary"]}}
    _write_small_onnx(seeds / "onnx_for_sweep.onnx")
    specs = mutated_files(json.dumps(spec).encode(), tmp_path, "spec.json")
    cases = [["sweep", str(f), "-o", str(tmp_path / f"out_{f.stem}.json")] for f in specs]
    energy = mutated_files(json.dumps({"e_ac_pj": 0.03, "e_mac_pj": 0.2, "source": "int8"}).encode(), tmp_path,
                           "energy.json")
    cases += [["analyze", str(seeds / "model.npz"), "--data", str(seeds / "data.npz"), "--steps", "2",
               "--energy-model", str(f), "-o", str(tmp_path / f"report_{f.stem}")] for f in energy]
    assert_clean(run_all(cases))


def _write_small_onnx(path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(1).normal(0, 0.05, (10, 784)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph), path)


# --- structure-aware fuzzing: valid containers with drawn contents ---------------------------------

FOLDED_OPS = ("Gather", "Unsqueeze", "Concat", "Cast", "Div", "Mul", "Add", "Sub")
AWKWARD_INTEGERS = st.one_of(st.integers(-3, 800), st.sampled_from([0, -1, 784, 2**31, 2**62, -2**63]),
                             st.lists(st.integers(-2, 800), max_size=4))


@st.composite
def shape_programs(draw):
    """The nodes and int64 constants of a shape computation on Shape(x): a chain of drawn folding
    ops (a Concat may take a value twice, the doubling of a constant bomb), whose last value is the
    target of the Reshape before the classifier."""
    nodes, constants, values = [("Shape", ["x"], "v0", {})], {}, ["v0"]
    for i in range(1, draw(st.integers(1, 8)) + 1):
        op, source, const = draw(st.sampled_from(FOLDED_OPS)), draw(st.sampled_from(values)), f"c{i}"
        constants[const] = draw(AWKWARD_INTEGERS)
        attributes = {"axis": draw(st.integers(-2, 1))} if op in ("Gather", "Concat") else {}
        inputs = {"Cast": [source], "Concat": [source, draw(st.sampled_from(values)), const]}.get(
            op, [const, source] if op in ("Div", "Sub") and draw(st.booleans()) else [source, const])
        if op == "Cast":
            attributes = {"to": 7}  # INT64
        nodes.append((op, inputs, f"v{i}", attributes))
        values.append(f"v{i}")
    return nodes, constants


def _onnx_with_shape_program(path, nodes, constants) -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(1).normal(0, 0.05, (10, 784)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node(op, inputs, [out], **attributes) for op, inputs, out, attributes in nodes]
        + [helper.make_node("Reshape", ["x", nodes[-1][2]], ["r"]), helper.make_node("Gemm", ["r", "w"], ["y"], transB=1)],
        "folded", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(w, "w")]
        + [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in constants.items()])
    from onnx import save

    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_onnx_shape_arithmetic_of_drawn_constants(seeds, tmp_path):
    """ONNX constant folding: drawn chains of Shape/Gather/Unsqueeze/Concat/Cast/Div/Mul/Add/Sub
    over awkward integers (zero, negative, 2**62, lists, doubling concats) feeding a Reshape."""
    pytest.importorskip("onnx")
    valid = ([("Shape", ["x"], "v0", {}), ("Gather", ["v0", "c1"], "v1", {"axis": 0}),
              ("Concat", ["v1", "c2"], "v2", {"axis": 0})], {"c1": [0], "c2": [784]})  # [1, 784]
    _onnx_with_shape_program(tmp_path / "undamaged_folded.onnx", *valid)
    files = [tmp_path / "undamaged_folded.onnx"]
    for i, program in enumerate(fixed_sample(shape_programs(), MUTATIONS_PER_KIND)):
        files.append(tmp_path / f"{i}_folded.onnx")
        _onnx_with_shape_program(files[-1], *program)
    common = ["--calib", str(seeds / "data.npz"), "-o", str(tmp_path / "out.npz")]
    assert_clean(run_all([["convert", str(f), *common] for f in files]))


NIR_REPLACEMENTS = ("shape", "int8", "complex", "text", "scalar", "nan", "delete", "huge", "big_integers")


def _replace_dataset(path, dataset: str, how: str, rng: np.random.Generator) -> None:
    """Replace one dataset of a NIR (HDF5) file in place: another shape, dtype or value, gone, or
    declared huge and never written."""
    import h5py

    with h5py.File(path, "r+") as f:
        old = f[dataset]
        shape = old.shape
        del f[dataset]
        if how == "shape":
            f[dataset] = rng.normal(size=tuple(rng.integers(0, 6, rng.integers(1, 4)))).astype(np.float32)
        elif how == "int8":
            f[dataset] = np.ones(shape, np.int8)
        elif how == "complex":
            f[dataset] = np.ones(shape, np.complex64)
        elif how == "text":
            f[dataset] = "IF"
        elif how == "scalar":
            f[dataset] = np.float32(3.0)
        elif how == "nan":
            f[dataset] = np.full(shape or (), np.nan, np.float32)
        elif how == "huge":
            f.create_dataset(dataset, shape=(40_000, 40_000), dtype=np.float32, chunks=(1000, 1000))
        elif how == "big_integers":
            f[dataset] = np.full(shape or (3,), 2**40, np.int64)


def test_nir_datasets_of_drawn_shapes_types_and_values(seeds, tmp_path):
    """NIR HDF5 internals: each case replaces one dataset of a valid graph (weights, thresholds, the
    input shape, edges, type names, metadata) by another shape, dtype or value, removes it, or
    declares it 40000 x 40000 without writing it."""
    pytest.importorskip("nir")
    import shutil
    import warnings

    import h5py

    from eventsnn.ir import Flatten, Linear, Network, ReLU
    from eventsnn.loaders.nir_graph import save_nir
    from eventsnn.snn import SimulationConfig, build

    seed = tmp_path / "undamaged_graph.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Network((1, 28, 28), (Flatten(), Linear(np.ones((4, 784), np.float32) / 784, None, "h"), ReLU(),
                                    Linear(np.ones((10, 4), np.float32), None, "o")))
        save_nir(build(net, SimulationConfig(spikes="binary")), seed)
    with h5py.File(seed) as f:
        datasets = []
        f.visititems(lambda name, item: datasets.append(name) if isinstance(item, h5py.Dataset) else None)
    assert len(datasets) > 20
    files = [seed]
    cases = fixed_sample(st.tuples(st.sampled_from(datasets), st.sampled_from(NIR_REPLACEMENTS),
                                   st.integers(0, 2**31)), MUTATIONS_PER_KIND)
    for i, (dataset, how, draw_seed) in enumerate(cases):
        files.append(tmp_path / f"{i}_graph.nir")
        shutil.copy(seed, files[-1])
        _replace_dataset(files[-1], dataset, how, np.random.default_rng(draw_seed))
    assert_clean(run_all([["run", str(f), "--data", str(seeds / "data.npz"), "--steps", "3"] for f in files]))
