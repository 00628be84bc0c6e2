"""Model files, the command line, and clear errors for bad input."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from eventsnn import ann
from eventsnn.cli import main
from eventsnn.engine import simulate
from eventsnn.ir import QCFS, Conv2d, Flatten, Linear, Network, ReLU
from eventsnn.model import ModelFileError, convert, default_config, load, save
from eventsnn.snn import SimulationConfig
from eventsnn.spec import network_to_spec
from eventsnn.testing import strategies as es


def test_model_file_round_trip_without_pickle(tmp_path, demo):
    model = demo.model
    save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        assert "__model__" in f.files
    loaded = load(tmp_path / "m.npz")
    assert loaded.scales == model.scales and loaded.config == model.config
    for a, b in zip(loaded.ann.layers, model.ann.layers):
        assert type(a) is type(b) and a.name == b.name
        if hasattr(a, "weight"):
            np.testing.assert_array_equal(a.weight, b.weight)
            np.testing.assert_array_equal(a.bias, b.bias)
    x = demo.x[:5]
    np.testing.assert_array_equal(simulate(loaded.build(), x, 10).decisions, simulate(model.build(), x, 10).decisions)


@pytest.mark.parametrize("net_x", es.fixed_sample(es.networks_and_inputs(residual=True, min_samples=20, max_samples=20), 4))
def test_residual_model_file_round_trip(tmp_path, net_x):
    net, x = net_x
    model = convert(net, x)
    save(model, tmp_path / "res.npz")
    loaded = load(tmp_path / "res.npz")
    assert loaded.ann.inputs == model.ann.inputs and loaded.scales == model.scales
    np.testing.assert_array_equal(ann.forward(loaded.normalized(), x), ann.forward(model.normalized(), x))
    np.testing.assert_array_equal(simulate(loaded.build(), x, 10).spikes, simulate(model.build(), x, 10).spikes)


def test_corrupt_model_files_are_refused(tmp_path, demo):
    save(demo.model, tmp_path / "m.npz")
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ModelFileError):
        load(tmp_path / "cut.npz")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(ModelFileError, match="not an eventsnn model"):
        load(tmp_path / "plain.npz")


def test_convert_and_run_from_the_command_line(tmp_path, small_data, demo_files, demo, capsys):
    out = tmp_path / "snn.npz"
    assert main(["convert", str(demo_files["mnist_cnn.pt"]), "--arch", str(demo_files["mnist_cnn.json"]),
                 "--calib", str(small_data / "calib.npz"), "--percentile", "99", "-o", str(out)]) == 0
    assert load(out).percentile == 99.0
    calibration_images = len(np.load(small_data / "calib.npz")["x"])
    assert f"(percentile 99.0 on {calibration_images} calibration images;" in capsys.readouterr().out
    report_path = tmp_path / "report.json"
    assert main(["run", str(out), "--data", str(small_data / "test.npz"), "--steps", "30",
                 "--json", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "SNN accuracy at T=30" in printed and "conv2" in printed
    report = json.loads(report_path.read_text())
    for key in ("accuracy", "ann_accuracy", "accuracy_per_step", "spikes_per_sample", "synops_per_sample",
                "seconds", "samples_per_second", "layers"):
        assert key in report
    assert len(report["accuracy_per_step"]) == 30
    assert report["ann_accuracy"] == pytest.approx(ann.accuracy(demo.model.ann, demo.x[:40], demo.y[:40]))
    assert report["accuracy"] > 0.8
    layer = report["layers"][2]
    assert {"name", "neurons", "spikes_per_sample", "synops_per_sample", "macs"} <= set(layer)
    assert layer["name"] == "conv2" and layer["macs"] == 32 * 14 * 14 * 16 * 9
    assert report["synops_per_sample"] == pytest.approx(sum(l["synops_per_sample"] for l in report["layers"]))
    assert len(report["cumulative_synops_per_step"]) == 30
    assert report["cumulative_synops_per_step"][-1] == pytest.approx(report["synops_per_sample"])


def test_reference_engine_from_the_command_line(tmp_path, small_data, demo, capsys):
    save(demo.model, tmp_path / "m.npz")
    assert main(["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--limit", "4",
                 "--steps", "5", "--engine", "reference", "--reset", "zero", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["reset"] == "zero" and report["samples"] == 4


def test_int32_arithmetic_from_the_command_line(tmp_path, small_data, demo):
    """--arithmetic int32: the engine and the reference give the same accuracy at every step."""
    save(demo.model, tmp_path / "m.npz")
    args = ["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--limit", "6", "--steps", "4",
            "--arithmetic", "int32"]
    assert main(args + ["--json", str(tmp_path / "event.json")]) == 0
    assert main(args + ["--engine", "reference", "--json", str(tmp_path / "reference.json")]) == 0
    event, reference = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("event", "reference"))
    assert event["settings"]["arithmetic"] == "int32"
    assert event["accuracy_per_step"] == reference["accuracy_per_step"]


def test_bad_data_gets_a_clear_error(tmp_path, demo, capsys):
    save(demo.model, tmp_path / "m.npz")
    np.savez(tmp_path / "nan.npz", x=np.full((2, 1, 28, 28), np.nan, np.float32), y=np.zeros(2, np.int64))
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 3, 28, 28), np.float32), y=np.zeros(2, np.int64))
    np.savez(tmp_path / "range.npz", x=np.full((2, 1, 28, 28), 3.0, np.float32), y=np.zeros(2, np.int64))
    for name, message in (("nan", "NaN"), ("shape", "shape"), ("range", r"\[0, 1\]")):
        assert main(["run", str(tmp_path / "m.npz"), "--data", str(tmp_path / f"{name}.npz")]) == 2
        assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("x, steps, message", [
    (np.full((1, 1, 28, 28), np.inf, np.float32), 5, "NaN or Inf"),
    (np.zeros((1, 28, 28), np.float32), 5, "shape"),
    (np.zeros((1, 1, 28, 28), np.float32), 0, "steps"),
])
def test_simulators_validate_before_any_kernel(demo, x, steps, message):
    from eventsnn.reference import simulate_reference

    snn = demo.model.build()
    for run in (simulate, simulate_reference):
        with pytest.raises(ValueError, match=message):
            run(snn, x, steps)


def test_invalid_settings_are_refused(demo):
    with pytest.raises(ValueError, match="reset must be one of"):
        SimulationConfig(reset="hard")
    with pytest.raises(ValueError, match="softmax_rate"):
        demo.model.build(softmax_rate=0.0)
    with pytest.raises(ValueError, match="unknown simulation settings"):
        demo.model.build(leak=0.1)


def test_connectivity_cap_is_enforced_before_building(demo):
    with pytest.raises(ValueError, match="conv1.*MiB to build.*kernel-direct"):
        demo.model.build(max_bytes=1 << 20, path="csr")
    snn = demo.model.build(max_bytes=1 << 20)  # 'auto' falls back to the kernel-direct path
    assert [s.path for s in snn.stages if s.name.startswith("conv")] == ["direct", "direct"]
    assert max(s.connectivity_bytes for s in snn.stages) < 1 << 20


@pytest.mark.parametrize("layer, shape", [("conv", (8, 40, 40)), ("avgpool", (8, 40, 40)), ("maxpool", (8, 41, 41))])
def test_the_connectivity_estimate_bounds_the_real_peak(layer, shape):
    """Regression: the cap compared the finished CSR (8 bytes a synapse) while building one peaked
    at about 6 times that; the estimate now covers the peak, measured here."""
    import tracemalloc

    from eventsnn.connectivity import avgpool_csr, conv_csr, csr_build_bytes_estimate, maxpool_windows
    from eventsnn.ir import AvgPool2d, MaxPool2d

    make = {"conv": (Conv2d(np.ones((16, 8, 3, 3), np.float32), None, 1, 1), conv_csr),
            "avgpool": (AvgPool2d(2, 2), avgpool_csr), "maxpool": (MaxPool2d(3, 2), maxpool_windows)}
    ir_layer, build = make[layer]
    tracemalloc.start()
    try:
        build(ir_layer, shape)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= csr_build_bytes_estimate(ir_layer, shape)


def test_run_with_early_exit_and_kernel_direct_path(tmp_path, small_data, demo, capsys):
    save(demo.model, tmp_path / "m.npz")
    assert main(["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--steps", "60",
                 "--path", "direct", "--exit-stable", "15", "--threads", "1", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert {c["path"] for c in report["connectivity"] if c["name"].startswith("conv")} == {"direct"}
    assert 15 <= report["exit_step_mean"] < 60
    assert "early exit" in capsys.readouterr().out


def test_run_profile_says_where_the_time_went(tmp_path, small_data, demo, capsys):
    save(demo.model, tmp_path / "m.npz")
    args = ["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--steps", "8"]
    assert main(args + ["--json", str(tmp_path / "plain.json")]) == 0
    assert main(args + ["--profile", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "where the time went" in out and "compaction" in out
    plain, report = (json.loads((tmp_path / name).read_text()) for name in ("plain.json", "r.json"))
    assert report["accuracy_per_step"] == plain["accuracy_per_step"]  # profiling changes nothing
    profile = report["profile"]
    assert abs(sum(profile["share"].values()) - 1) < 1e-9
    assert set(profile["stages"]) == {c["name"] for c in report["connectivity"]}
    assert profile["share"]["delivery"] > 0 and profile["share"]["gate"] > 0  # the demo CNN has max-pool gates
    assert main(args + ["--profile", "--engine", "reference"]) == 2
    assert "--profile times the event engine" in capsys.readouterr().err


def test_streaming_in_chunks_does_not_change_the_report(tmp_path, small_data, demo, monkeypatch):
    import dataclasses

    from eventsnn import pipeline

    save(demo.model.__class__(demo.model.ann, demo.model.scales, demo.model.percentile,
                              SimulationConfig(input="poisson")), tmp_path / "m.npz")
    reports = []
    for chunk in (4096, 7):
        monkeypatch.setattr(pipeline, "DEFAULTS", dataclasses.replace(pipeline.DEFAULTS, read_chunk=chunk))
        path = tmp_path / f"r{chunk}.json"
        assert main(["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--steps", "20",
                     "--batch", "5", "--json", str(path)]) == 0
        reports.append(json.loads(path.read_text()))
    for key in ("accuracy_per_step", "ann_accuracy", "synops_per_sample", "spikes_per_sample"):
        assert reports[0][key] == reports[1][key]


def test_graded_settings_travel_through_the_model_file_and_the_command_line(tmp_path, small_data, demo_files):
    out = tmp_path / "graded.npz"
    assert main(["convert", str(demo_files["mnist_cnn.pt"]), "--arch", str(demo_files["mnist_cnn.json"]),
                 "--calib", str(small_data / "calib.npz"), "--spikes", "graded", "--max-spikes", "8", "--levels", "4",
                 "-o", str(out)]) == 0
    config = load(out).config
    assert (config.spikes, config.max_spikes, config.levels) == ("graded", 8, 4)
    report_path = tmp_path / "graded.json"
    assert main(["run", str(out), "--data", str(small_data / "test.npz"), "--steps", "4", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["settings"]["levels"] == 4
    assert report["spikes_weighted_per_sample"] > report["spikes_per_sample"]  # some events carry several spikes
    # overridden at run time; an impossible combination is one clear line, exit code 2
    assert main(["run", str(out), "--data", str(small_data / "test.npz"), "--steps", "4", "--max-spikes", "2"]) == 2


def test_outputs_are_written_where_asked_and_never_half(tmp_path, demo, monkeypatch):
    save(demo.model, tmp_path / "model.bin")  # no .npz appended behind the user's back
    assert (tmp_path / "model.bin").exists() and not (tmp_path / "model.bin.npz").exists()
    good = (tmp_path / "model.bin").read_bytes()

    def broken(f, **arrays):
        f.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        save(demo.model, tmp_path / "model.bin")
    assert (tmp_path / "model.bin").read_bytes() == good  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]  # no temporary left behind
    with pytest.raises(IsADirectoryError):
        save(demo.model, tmp_path)


def test_bad_arguments_and_outputs_fail_before_the_work(tmp_path, small_data, demo, capsys):
    save(demo.model, tmp_path / "m.npz")
    run = ["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz")]
    for bad in (["--limit", "0"], ["--limit", "-5"], ["--batch", "0"], ["--steps", "-1"], ["--exit-stable", "-2"]):
        with pytest.raises(SystemExit) as exit_info:
            main(run + bad)
        assert exit_info.value.code == 2
        assert "must be at least" in capsys.readouterr().err
    assert main(run + ["--json", str(tmp_path / "missing" / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debugging(tmp_path, small_data, demo, capsys, monkeypatch):
    save(demo.model, tmp_path / "m.npz")
    args = ["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--steps", "2"]
    monkeypatch.setattr("eventsnn.pipeline.efficiency_report", lambda *a, **k: 1 / 0)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "unexpected error: ZeroDivisionError" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug"] + args)


def test_qcfs_nets_default_to_their_own_levels(tmp_path, small_data):
    """A net whose activations are all QCFS with L levels converts with levels = max_spikes = L
    (one graded step reproduces its quantized ANN); settings given on the command line win."""
    rng = np.random.default_rng(0)
    net = Network((1, 28, 28), (Conv2d(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), np.zeros(2, np.float32), 2, 0, "c"),
                                QCFS(4, 1.0, "q"), Flatten("f"), Linear(rng.normal(size=(10, 2 * 13 * 13)), None, "fc")))
    assert (default_config(net).levels, default_config(net).max_spikes) == (4, 4)
    spec, params = network_to_spec(net)
    (tmp_path / "arch.json").write_text(json.dumps(spec))
    np.savez(tmp_path / "weights.npz", **params)
    base = ["convert", str(tmp_path / "weights.npz"), "--arch", str(tmp_path / "arch.json"),
            "--calib", str(small_data / "calib.npz")]
    assert main(base + ["-o", str(tmp_path / "a.npz")]) == 0
    assert (load(tmp_path / "a.npz").config.levels, load(tmp_path / "a.npz").config.max_spikes) == (4, 4)
    assert main(base + ["--levels", "2", "-o", str(tmp_path / "b.npz")]) == 0
    assert load(tmp_path / "b.npz").config.levels == 2
    assert default_config(Network((3,), (Linear(np.eye(3), None, "h"), ReLU(), Linear(np.eye(3), None, "o")))) \
        == SimulationConfig()


def test_warmup_compiles_the_kernels(capsys):
    from eventsnn.engine.layerwise import _run_chunk_layerwise
    from eventsnn.engine.lockstep import _fire_stage, _unroll
    from eventsnn.engine.loop import _run_chunk
    from eventsnn.engine.winograd import _transform_inputs

    assert main(["warmup"]) == 0
    assert "cache:" in capsys.readouterr().out
    for chunk in (_run_chunk, _run_chunk_layerwise):  # step by step, and offset correction's layer by layer
        compiled = {(x.dtype.name, dict(zip(net.fields, net.types))["v_init"].dtype.name)
                    for x, _, _, _, net, *_ in chunk.signatures}
        # inputs and membranes: float32; int32 pixels into int32 membranes; Poisson rates into int32 membranes
        assert compiled >= {("float32", "float32"), ("int32", "int32"), ("float32", "int32")}, chunk
    # stage by stage: the fire pass in both arithmetics; Winograd tiles of counts, windows of pixels and counts
    assert {sig[5].dtype.name for sig in _fire_stage.signatures} >= {"float32", "int32"}
    assert {(sig[0].dtype.name, sig[-1].dtype.name) for sig in _transform_inputs.signatures} >= {
        ("int16", "float32"), ("int16", "float64")}
    assert {(sig[0].dtype.name, sig[-1].dtype.name) for sig in _unroll.signatures} >= {
        ("float32", "float32"), ("int32", "float64"), ("int16", "float32"), ("int16", "float64")}


def test_atomic_writes_give_files_the_usual_mode(tmp_path):
    """Regression: files written through a temporary file were private (0600), unlike a plain write."""
    import os

    from eventsnn.atomic import write_text

    write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == os.stat(tmp_path / "b.txt").st_mode & 0o777
    os.chmod(tmp_path / "a.txt", 0o640)
    write_text(tmp_path / "a.txt", "y")  # an existing file keeps its mode
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o640


@pytest.mark.parametrize("command", [[], ["convert"], ["run"], ["analyze"], ["sweep"], ["export"], ["demo"], ["warmup"]])
def test_help_of_every_command_prints_and_shows_defaults(command, capsys):
    """Regression: `eventsnn --help` crashed on a bare '%' in a help text."""
    with pytest.raises(SystemExit) as exit_info:
        main(command + ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: eventsnn") and "--memory-limit-mib" in out
    if command in (["run"], ["analyze"]):
        assert "(default: 256)" in out  # --batch
    if command in (["run"], ["sweep"]):
        assert "--chunk" in out and "analyze" not in out
    if command == ["analyze"]:
        assert "--chunk" not in out  # its Dask tasks are its batches


def test_debug_after_the_command_shows_the_traceback(monkeypatch, capsys):
    from eventsnn.cli import tools

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tools, "warmup", broken)
    assert main(["warmup"]) == 1
    assert "unexpected error: RuntimeError: a bug (rerun with --debug" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="a bug"):
        main(["warmup", "--debug"])


def test_demo_refuses_more_samples_than_it_ships(capsys):
    assert main(["demo", "--samples", "2000"]) == 2
    assert "--samples: the demo ships 1000 test images, not 2000" in capsys.readouterr().err


def test_global_options_are_taken_after_the_command_too(tmp_path, small_data, demo, capsys, monkeypatch):
    from eventsnn.memory import ENV

    monkeypatch.setenv(ENV, "100000")  # main() sets it for the process: restored after the test
    save(demo.model, tmp_path / "m.npz")
    run = ["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz")]
    assert main(run + ["--memory-limit-mib", "0.001"]) == 2
    assert "memory limit" in capsys.readouterr().err
    assert main(["--memory-limit-mib", "0.001"] + run) == 2  # before the command, as before
    assert "memory limit" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_run_quietly(tmp_path, small_data, demo):
    """`eventsnn run ... | head` must exit 0 without an error message once head has gone."""
    import os
    import subprocess
    import sys

    from eventsnn.memory import ENV

    save(demo.model, tmp_path / "m.npz")
    command = [sys.executable, "-m", "eventsnn", "run", str(tmp_path / "m.npz"), "--data",
               str(small_data / "test.npz"), "--steps", "2", "--limit", "20"]
    env = {k: v for k, v in os.environ.items() if k != ENV}  # another test's --memory-limit-mib may linger
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # the reader goes away before anything is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=300) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err


def test_a_sweep_spec_without_calibration_data_is_refused_up_front(tmp_path, small_data, demo_files, capsys):
    """Regression: a checkpoint entry without 'calib' ended in KeyError (rc 1) after loading."""
    spec = {"checkpoints": [{"checkpoint": str(demo_files["mnist_cnn.pt"]), "arch": str(demo_files["mnist_cnn.json"])}],
            "data": str(small_data / "test.npz")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["sweep", str(tmp_path / "spec.json"), "-o", str(tmp_path / "out.json")]) == 2
    assert "needs 'checkpoint' and 'calib'" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "spec.json"), "-o", str(tmp_path / "out.md")]) == 2
    assert "another name than its .md table" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"grid": {"steps": list(range(1, 101)), "seed": list(range(100)), "levels": list(range(1, 101)),
               "max_spikes": list(range(1, 11))}}, "more than 10,000"),
    ({"grid": {"steps": ["four"]}}, "'steps' values must be positive integers"),
    ({"grid": {"reset": [3]}}, "reset must be one of"),
    ({"grid": {"softmax_rate": ["half"]}}, "softmax_rate"),
    ({"grid": {"percentile": [99.9, 101]}}, "percentile values lie in"),
    ({"grid": {"spikes": ["graded"], "levels": [1, 2, 4, 16], "max_spikes": [8]}}, "levels=16"),
    ({"limit": 0}, "'limit' must be a positive integer"),
])
def test_sweep_specs_are_checked_before_any_cell_runs(tmp_path, small_data, demo_files, capsys, change, message):
    """Regressions: a 2 KB spec of 10^10 cells ate memory; wrong-typed values ended in 'unexpected
    error'; a bad combination in the 4th cell threw away cells 1-3; limit 0 ran every sample."""
    spec = {"checkpoints": [{"checkpoint": str(demo_files["mnist_cnn.pt"]), "arch": str(demo_files["mnist_cnn.json"]),
                             "calib": str(small_data / "test.npz")}], "data": str(small_data / "test.npz"), **change}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["sweep", str(tmp_path / "spec.json"), "-o", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and "converting" not in err, err
    assert not (tmp_path / "out.json").exists()


def test_an_npz_holding_python_objects_is_refused_without_numpys_pickle_advice(tmp_path, demo, capsys):
    """numpy's message suggests allow_pickle=True, which would run code from the file."""
    save(demo.model, tmp_path / "m.npz")
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    assert main(["run", str(tmp_path / "m.npz"), "--data", str(tmp_path / "objects.npz")]) == 2
    err = capsys.readouterr().err
    assert "allow_pickle" not in err and "Python objects" in err, err
    np.savez(tmp_path / "model.npz", __model__=np.array("{}"), w=np.array([None], dtype=object))
    with pytest.raises(ModelFileError, match="never unpickles") as info:
        load(tmp_path / "model.npz")
    assert "allow_pickle" not in str(info.value)


def test_an_output_never_replaces_an_input_a_special_file_or_a_link(tmp_path, small_data, demo, capsys):
    """Regressions: `run m.npz --json m.npz` and `run --data d.npz --json d.npz` overwrote their
    input with rc 0; --json on a FIFO waited forever and on a device or symlink replaced it with a
    regular file; a name 14 bytes short of the limit failed only after the whole simulation."""
    save(demo.model, tmp_path / "m.npz")
    data = tmp_path / "d.npz"
    data.write_bytes((small_data / "test.npz").read_bytes())
    before = {p: p.read_bytes() for p in (tmp_path / "m.npz", data)}
    run = ["run", str(tmp_path / "m.npz"), "--data", str(data), "--steps", "2", "--limit", "10"]
    for target in (tmp_path / "m.npz", data):
        assert main(run + ["--json", str(target)]) == 2
        assert "would destroy that input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(run + ["--json", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err
    assert fifo.is_fifo()
    link = tmp_path / "link.json"
    (tmp_path / "real.json").write_text("{}")
    link.symlink_to(tmp_path / "real.json")
    assert main(run + ["--json", str(link)]) == 0
    assert link.is_symlink() and json.loads((tmp_path / "real.json").read_text())["samples"] == 10  # written through
    long_name = tmp_path / ("r" * (os.pathconf(tmp_path, "PC_NAME_MAX") - 5))
    assert main(run + ["--json", str(long_name)]) == 2
    assert "file name is too long" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "m.npz"), "--calib", str(data), "-o", str(data)]) == 2
    assert "would destroy that input" in capsys.readouterr().err
