"""Every file format bounded and every output whole: small inputs that ask for huge work are refused
with the estimate, large graphs load in linear time, an interrupted export leaves the old file."""

from __future__ import annotations

import time

import numpy as np
import pytest

from eventsnn import ann
from eventsnn.ir import Conv2d, Network, ReLU
from eventsnn.memory import ENV, MemoryLimitError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from eventsnn.loaders import OnnxError, load_onnx  # noqa: E402


def _graph(nodes, initializers, shape=(1, 4)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_constant_arithmetic_that_doubles_is_refused_small(tmp_path):
    """Regression: a 1.3 KB ONNX file of Concat nodes doubling a constant reached 2.2-4.3 GB."""
    nodes, name = [], "c0"
    for k in range(40):
        nodes.append(helper.make_node("Concat", [name, name], [f"c{k + 1}"], axis=0))
        name = f"c{k + 1}"
    nodes.append(helper.make_node("Reshape", ["x", name], ["y"]))
    onnx.save(_graph(nodes, {"c0": np.array([1, -1], np.int64)}), tmp_path / "bomb.onnx")
    assert (tmp_path / "bomb.onnx").stat().st_size < 4096
    with pytest.raises(OnnxError, match="constant arithmetic yields"):
        load_onnx(tmp_path / "bomb.onnx")


def test_a_conv_with_huge_padding_is_refused_before_the_forward_pass(monkeypatch):
    """Regression: a 292-byte ONNX file (a Conv with pads 3000) reached a 6.77 GiB MemoryError in the
    ANN's forward pass at `convert --calib`."""
    monkeypatch.setenv(ENV, "500")
    net = Network((1, 8, 8), (Conv2d(np.ones((1, 1, 3, 3), np.float32), None, 1, 3000, "c"), ReLU("r")))
    with pytest.raises(MemoryLimitError, match="the ANN's forward pass of 64 samples of"):
        ann.forward(net, np.zeros((64, 1, 8, 8), np.float32))


def test_a_graph_of_thousands_of_nodes_of_one_name_loads_in_linear_time(tmp_path):
    """Regression: 8,000 nodes called alike took 51-75 s (a name grew one character per clash)."""
    n = 4000
    nodes = []
    for k in range(n):
        nodes += [helper.make_node("Gemm", [f"a{k}" if k else "x", "W", "b"], [f"h{k}"], name="layer"),
                  helper.make_node("Relu", [f"h{k}"], [f"a{k + 1}"], name="layer")]
    nodes.append(helper.make_node("Gemm", [f"a{n}", "W", "b"], ["y"], name="layer"))
    onnx.save(_graph(nodes, {"W": np.eye(4, dtype=np.float32), "b": np.zeros(4, np.float32)}), tmp_path / "deep.onnx")
    began = time.perf_counter()
    net = load_onnx(tmp_path / "deep.onnx")
    assert len(net.layers) == 2 * n + 1 and len({layer.name for layer in net.layers}) == 2 * n + 1
    assert max(len(layer.name) for layer in net.layers) <= len("layer_") + 5
    assert time.perf_counter() - began < 20  # was minutes: quadratic in the number of nodes


def _chain(n: int) -> Network:
    from eventsnn.ir import Linear

    layers = []
    for k in range(n):
        layers += [Linear(np.eye(4, dtype=np.float32), np.full(4, 0.1, np.float32), f"fc{k}"), ReLU(f"r{k}")]
    return Network((4,), tuple(layers + [Linear(np.ones((2, 4), np.float32), None, "out")]))


def test_a_nir_chain_of_many_layers_reads_back_in_linear_time():
    """Regression: a 1,000-layer NIR chain took 19-28 s (the topological order was quadratic)."""
    pytest.importorskip("nir")
    from eventsnn.loaders import from_nir, to_nir
    from eventsnn.model import convert

    graph = to_nir(convert(_chain(1000), None, percentile=None).build(spikes="binary"))
    began = time.perf_counter()
    model = from_nir(graph)
    assert len(model.ann.layers) == 2001
    assert time.perf_counter() - began < 10


def test_an_export_that_fails_leaves_the_old_nir_file_whole(tmp_path, monkeypatch):
    """Regression: `export -o existing.nir` wrote in place: a write error truncated the old file."""
    nir = pytest.importorskip("nir")
    from eventsnn.loaders import save_nir
    from eventsnn.model import convert

    snn = convert(_chain(2), None, percentile=None).build(spikes="binary")
    save_nir(snn, tmp_path / "m.nir")
    good = (tmp_path / "m.nir").read_bytes()
    real_write = nir.write

    def failing(path, graph):
        real_write(path, graph)
        with open(path, "r+b") as f:
            f.truncate(100)
        raise OSError("No space left on device")

    monkeypatch.setattr(nir, "write", failing)
    with pytest.raises(OSError, match="No space left"):
        save_nir(snn, tmp_path / "m.nir")
    assert (tmp_path / "m.nir").read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.nir"]  # no temporary left


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_a_terminated_convert_leaves_no_temporary_file(tmp_path, demo_files, monkeypatch, capsys, signum):
    """Regression: SIGTERM or SIGHUP while `convert` wrote its model left a hidden 15 MB .m.npz.*.tmp."""
    import os
    import signal

    from eventsnn.cli import main

    real = np.savez_compressed

    def interrupted(f, **arrays):
        real(f, **arrays)
        os.kill(os.getpid(), getattr(signal, signum))  # delivered while the temporary file is open

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    before = signal.getsignal(getattr(signal, signum))
    code = main(["convert", str(demo_files["mnist_cnn.pt"]), "--arch", str(demo_files["mnist_cnn.json"]),
                 "--calib", str(demo_files["mnist_sample.npz"]), "--calib-limit", "100", "-o", str(tmp_path / "m.npz")])
    assert code == 128 + getattr(signal, signum)
    assert f"terminated ({signum})" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(getattr(signal, signum)) is before  # the handler is given back


def test_a_nir_dataset_declared_huge_but_never_written_is_refused(tmp_path, monkeypatch):
    """Regression: a NIR file whose HDF5 dataset is declared but never written reached 3.2 GB."""
    pytest.importorskip("nir")
    import h5py

    from eventsnn.loaders import load_nir

    monkeypatch.setenv(ENV, "500")
    with h5py.File(tmp_path / "bomb.nir", "w") as f:
        f.create_group("node").create_dataset("weight", shape=(40000, 40000), dtype="f4")  # allocated lazily
    assert (tmp_path / "bomb.nir").stat().st_size < 64 * 1024
    with pytest.raises(MemoryLimitError, match="declared sizes"):
        load_nir(tmp_path / "bomb.nir")
