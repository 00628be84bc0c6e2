"""Runs on a local Dask cluster of real worker processes equal single-process runs bit for bit."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from eventsnn.cli import main  # noqa: E402
from eventsnn.engine import simulate  # noqa: E402
from eventsnn.model import convert, save  # noqa: E402
from eventsnn.scaleout import dask_client, simulate_on_cluster  # noqa: E402
from eventsnn.testing import strategies as es  # noqa: E402

TIMING = ("seconds", "samples_per_second")
PATH = ["--path", "direct"]  # 'auto' times the paths on each machine: the choice (not the spikes) may differ


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as client:
        yield client


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    """A residual model file and a data file of 60 images for it."""
    net, x = es.fixed_sample(es.networks_and_inputs(residual=True, min_samples=60, max_samples=60), 3)[-1]
    folder = tmp_path_factory.mktemp("residual")
    save(convert(net, x), folder / "model.npz")
    np.savez(folder / "data.npz", x=x, y=np.arange(60) % net.output_shape[0])
    return folder


def report_differences(a: dict, b: dict) -> dict:
    """The fields, timings aside, in which two run reports differ: {field: (a's, b's)}."""
    return {k: (a.get(k), b.get(k)) for k in sorted((set(a) | set(b)) - set(TIMING)) if a.get(k) != b.get(k)}


def run_json(tmp_path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["run", *args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("settings", [[], ["--input", "poisson", "--spikes", "binary", "--steps", "20"],
                                      ["--spikes", "binary", "--output", "softmax", "--steps", "30", "--exit-stable", "3"]])
def test_the_cli_on_a_local_cluster_equals_one_process(tmp_path, residual, settings):
    args = [str(residual / "model.npz"), "--data", str(residual / "data.npz"), *PATH, *settings]
    one = run_json(tmp_path, "one", *args)
    cluster = run_json(tmp_path, "cluster", *args, "--workers", "2", "--chunk", "7")
    assert not report_differences(one, cluster)


@pytest.mark.parametrize("chunk", [1, 64, 1000])
def test_any_chunk_size_gives_the_single_process_result(client, demo, demo_files, chunk):
    snn = demo.model.build()
    single = simulate(snn, demo.x[:64], 8, seed=3)
    merged = simulate_on_cluster(client, demo.model, str(demo_files["mnist_sample.npz"]), 64, 8, seed=3, chunk=chunk)
    for field in ("decisions", "spikes", "synops", "synops_per_step", "first_spike", "output_counts",
                  "output_membrane", "spike_amounts", "input_synops", "exit_step"):
        np.testing.assert_array_equal(getattr(single, field), getattr(merged, field), err_msg=field)


def test_a_worker_killed_mid_run_changes_nothing(client, demo, demo_files):
    model = demo.model
    snn = model.build(spikes="binary")
    n, steps = 600, 200
    single = simulate(snn, demo.x[:n], steps)
    started = threading.Event()
    outcome = {}

    def run():
        outcome["result"] = simulate_on_cluster(client, model, str(demo_files["mnist_sample.npz"]), n, steps, chunk=10,
                                                build_options={"spikes": "binary"},
                                                progress=lambda done, n: started.set())

    victim = next(iter(client.run(os.getpid).values()))  # asked before the run: the kill follows its first chunk at once
    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(60)
    assert worker.is_alive()  # killed mid-run
    os.kill(victim, signal.SIGKILL)
    worker.join(120)
    assert "result" in outcome, "the run did not finish after a worker was killed"
    for field in ("decisions", "spikes", "synops", "output_membrane"):
        np.testing.assert_array_equal(getattr(single, field), getattr(outcome["result"], field), err_msg=field)


def test_a_sweep_equals_the_individual_runs(tmp_path, demo_files):
    spec = {"checkpoints": [{"name": "demo", "checkpoint": str(demo_files["mnist_cnn.pt"]),
                             "arch": str(demo_files["mnist_cnn.json"]), "calib": str(demo_files["mnist_sample.npz"]),
                             "calib_limit": 300}],
            "data": str(demo_files["mnist_sample.npz"]), "limit": 80,
            "grid": {"spikes": ["graded", "binary"], "steps": [3], "calibrate": ["none", "bias", "potential"]}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["sweep", str(tmp_path / "spec.json"), "-o", str(tmp_path / "sweep.json"), "--workers", "2",
                 "--chunk", "30", *PATH]) == 0
    cells = json.loads((tmp_path / "sweep.json").read_text())["cells"]
    assert len(cells) == 6 and (tmp_path / "sweep.md").exists()
    for cell in cells:
        settings = cell["cell"]
        model = tmp_path / f"{settings['spikes']}_{settings['calibrate']}.npz"
        assert main(["convert", spec["checkpoints"][0]["checkpoint"], "--arch", spec["checkpoints"][0]["arch"],
                     "--calib", spec["data"], "--calib-limit", "300", "--spikes", settings["spikes"],
                     "--calibrate", settings["calibrate"], "--steps", "3", "-o", str(model)]) == 0
        alone = run_json(tmp_path, "alone", str(model), "--data", spec["data"], "--limit", "80", "--steps", "3", *PATH)
        differences = report_differences(cell["report"], alone)
        assert not differences, (settings, differences)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, demo, demo_files, capsys):
    save(demo.model, tmp_path / "m.npz")
    began = time.perf_counter()
    code = main(["run", str(tmp_path / "m.npz"), "--data", str(demo_files["mnist_sample.npz"]),
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2 and time.perf_counter() - began < 15
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


def test_a_port_that_is_not_a_dask_scheduler_and_other_protocols_are_refused_in_seconds(tmp_path, demo, demo_files,
                                                                                        capsys, monkeypatch):
    """Regressions: --scheduler at an HTTP server's port hung past 120 s despite the 5 s connect
    timeout; tls:// and ws:// ended in 'unexpected error' (rc 1)."""
    import socket

    from eventsnn import scaleout

    monkeypatch.setattr(scaleout, "ANSWER_SECONDS", 3)
    server = socket.create_server(("127.0.0.1", 0))  # accepts connections (the backlog) and never answers, as HTTP
    save(demo.model, tmp_path / "m.npz")
    run = ["run", str(tmp_path / "m.npz"), "--data", str(demo_files["mnist_sample.npz"]), "--scheduler"]
    try:
        began = time.perf_counter()
        assert main(run + [f"tcp://127.0.0.1:{server.getsockname()[1]}"]) == 2
        assert time.perf_counter() - began < 15
        assert "no Dask scheduler answered" in capsys.readouterr().err
    finally:
        server.close()
    for address in ("tls://127.0.0.1:9", "ws://127.0.0.1:9"):
        assert main(run + [address]) == 2
        assert "give the scheduler's tcp://host:port address" in capsys.readouterr().err


def test_too_many_local_workers_are_refused_before_any_starts(monkeypatch):
    """Regression: --workers had no upper bound, and 8 workers under a 500 MiB limit peaked at 1.86 GB."""
    import os

    from eventsnn.memory import ENV, MemoryLimitError
    from eventsnn.scaleout import dask_client

    with pytest.raises(ValueError, match="would only wait for each other"):
        with dask_client(workers=4 * (os.cpu_count() or 1) + 1):
            pass
    monkeypatch.setenv(ENV, "500")
    with pytest.raises(MemoryLimitError, match="a local cluster of 3 worker processes"):
        with dask_client(workers=3):
            pass


def test_analyze_on_a_local_cluster_equals_one_process(tmp_path, residual):
    reports = []
    for name, extra in (("one", []), ("cluster", ["--workers", "2"])):
        out = tmp_path / name
        assert main(["analyze", str(residual / "model.npz"), "--data", str(residual / "data.npz"), "--batch", "16",
                     "--steps", "8", *PATH, "-o", str(out), *extra]) == 0
        reports.append(json.loads((out / "report.json").read_text()))
    one, cluster = ({k: v for k, v in r.items() if k not in ("seconds", "samples_per_second")} for r in reports)
    assert one.keys() == cluster.keys()
    assert one == cluster


def test_a_worker_keeps_the_model_its_cached_network_was_built_from(residual):
    """Regression: the cache was keyed by the model's id alone, so once the model was freed, the next
    cell's model could take its id and run the previous network (a sweep cell seen mixing two)."""
    import gc
    import weakref

    from eventsnn.model import load
    from eventsnn.scaleout import _network

    model = load(residual / "model.npz")
    alive = weakref.ref(model)
    network = _network(model, {})
    del model
    gc.collect()
    assert alive() is not None and _network(alive(), {}) is network
    other = load(residual / "model.npz")
    assert _network(other, {}) is not network
