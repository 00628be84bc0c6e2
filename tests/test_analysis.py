"""`eventsnn analyze`: the report contract, streaming statistics, exact fidelity, energy, the CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from eventsnn import simulate
from eventsnn.analysis import EXIT_STABLE, analyze
from eventsnn.energy import load_energy_model
from eventsnn.early_exit import stable_exit_steps
from eventsnn.cli import main
from eventsnn.ir import Linear, Network, ReLU
from eventsnn.model import ConvertedModel, save
from eventsnn.report import steps_to_within
from eventsnn.snn import SimulationConfig


def test_report_contract_and_agreement_with_a_plain_run(demo):
    x, y = demo.x[:60], demo.y[:60]
    report = analyze(demo.model, x, y, 12, batch_size=25)
    T = 12
    assert len(report["accuracy_per_step"]) == T and len(report["cumulative_synops_per_step"]) == T
    run = simulate(demo.model.build(), x, T)
    np.testing.assert_allclose(report["accuracy_per_step"], run.accuracy_per_step(y))
    assert report["cumulative_synops_per_step"][-1] == pytest.approx(run.synops.sum(axis=1).mean())
    assert set(report["steps_to_within"]) == {"0.5", "1", "2"}
    assert report["steps_to_within"]["1"] == steps_to_within(report["accuracy_per_step"], report["ann_accuracy"], 1)
    for layer in report["layers"]:
        assert {"name", "neurons", "rate", "silent_share", "spikes_per_sample", "synops_per_sample", "macs"} <= set(layer)
    hidden = [layer for layer in report["layers"] if layer["kind"] == "IF"]
    assert hidden and all(0.9 < layer["rate_correlation"] <= 1 for layer in hidden)
    energy = report["energy"]
    assert len(energy["snn_uj_per_sample_per_step"]) == T and energy["ann_uj_per_sample"] > 0
    below = [t + 1 for t, e in enumerate(energy["snn_uj_per_sample_per_step"]) if e <= energy["ann_uj_per_sample"]]
    assert energy["break_even_step"] == (below[-1] if below else None)
    json.dumps(report)  # JSON-ready
    assert report["layers"][-1]["silent_share"] is None  # the membrane readout emits nothing: not "silent 100%"
    assert all(layer["silent_share"] is not None for layer in report["layers"][:-1])
    with pytest.raises(ValueError, match="floating-point array of intensities"):  # raw pixels scored 66% silently
        analyze(demo.model, (x * 255).astype(np.uint8), y, 4)


def assert_close(a, b, where="report"):
    """Nested dicts and lists equal, numbers to 1e-6 relative."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_close(u, v, f"{where}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-12), where  # sums taken in another order
    else:
        assert a == b, where


def test_streaming_statistics_do_not_depend_on_the_batch_size(demo):
    """One batch or many: the same report (the scatter sample and the timing aside)."""
    x, y = demo.x[:40], demo.y[:40]
    one, many = analyze(demo.model, x, y, 8, batch_size=40), analyze(demo.model, x, y, 8, batch_size=7)
    for report in (one, many):
        del report["seconds"]
        for layer in report["layers"]:
            layer.pop("scatter", None)
    assert_close(one, many)


def test_fidelity_is_exact_where_rates_equal_activations():
    """Identity hidden layer, inputs j/16, T = 16, V(0) = threshold/2, reset by subtraction:
    N(T) = T z exactly, so the SNN's values equal the ANN's (r = 1, error 0)."""
    n = 6
    net = Network((n,), (Linear(np.eye(n), None, "hidden"), ReLU("relu"), Linear(np.ones((2, n)), None, "out")))
    x = (np.arange(40 * n).reshape(40, n) % 17 / 16).astype(np.float32)
    for spikes in ("binary", "graded"):
        config = SimulationConfig(spikes=spikes, shift="membrane", output="membrane")
        model = ConvertedModel(net, (1.0, None, 1.0), None, config)
        hidden = analyze(model, x, np.zeros(40, np.int64), 16)["layers"][0]
        assert hidden["rate_correlation"] == pytest.approx(1.0, abs=1e-12)
        assert hidden["rate_error"] == pytest.approx(0.0, abs=1e-12)


def test_energy_model_file_is_checked(tmp_path):
    (tmp_path / "e.json").write_text(json.dumps({"e_ac_pj": 0.03, "e_mac_pj": 0.2, "source": "hypothetical"}))
    older = load_energy_model(tmp_path / "e.json")  # the older format: an add and a MAC
    assert (older.add_pj, older.mac_pj, older.source) == (0.03, pytest.approx(0.2), "hypothetical")
    (tmp_path / "n.json").write_text(json.dumps({"add_pj": 0.1, "mult_pj": 0.2, "operand_bits": 8, "weight_bits": 8}))
    newer = load_energy_model(tmp_path / "n.json")
    assert (newer.name, newer.weight_bits, newer.state_bits, newer.memory) == ("n", 8, 32, False)
    (tmp_path / "bits.json").write_text(json.dumps({"weight_bits": 0}))
    with pytest.raises(ValueError, match="whole number of bits"):
        load_energy_model(tmp_path / "bits.json")
    (tmp_path / "bad.json").write_text(json.dumps({"e_ac_pj": -1}))
    with pytest.raises(ValueError, match="non-negative"):
        load_energy_model(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"joules": 1}))
    with pytest.raises(ValueError, match="unknown"):
        load_energy_model(tmp_path / "odd.json")
    for not_an_object in ("3", "[1, 2]", '"pJ"'):  # was "unexpected error: TypeError"
        (tmp_path / "scalar.json").write_text(not_an_object)
        with pytest.raises(ValueError, match="an energy model is a JSON object"):
            load_energy_model(tmp_path / "scalar.json")


@pytest.mark.parametrize("with_matplotlib", [True, False])
def test_analyze_command(tmp_path, demo, capsys, monkeypatch, with_matplotlib):
    if not with_matplotlib:
        monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    else:
        pytest.importorskip("matplotlib")  # in the test extra
    save(demo.model, tmp_path / "graded.npz")
    (tmp_path / "other").mkdir()
    save(demo.model, tmp_path / "other" / "graded.npz")
    np.savez(tmp_path / "test.npz", x=demo.x[:30], y=demo.y[:30])
    out = tmp_path / "report"
    assert main(["analyze", str(tmp_path / "graded.npz"), "--data", str(tmp_path / "test.npz"), "--steps", "6",
                 "--compare", str(tmp_path / "other" / "graded.npz"), "-o", str(out), "--spikes", "binary"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 30 and report["settings"]["spikes"] == "binary"
    # two files of one name in different folders: both reported (one was dropped silently), by their paths
    assert report["model"] == str(tmp_path / "graded.npz") and list(report["compare"]) == [str(tmp_path / "other" / "graded.npz")]
    markdown = (out / "report.md").read_text()
    assert "Efficiency analysis" in markdown and "ANN zero-skipping" in markdown and "Wilson" in markdown
    rows = (out / "per_step.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("step,accuracy,accuracy_low,accuracy_high")
    assert (out / f"per_step_{str(tmp_path / 'other' / 'graded.npz').replace('/', '_')}.csv").exists()
    pngs = sorted(p.name for p in out.glob("*.png"))
    if with_matplotlib:
        assert "accuracy_vs_synops.png" in pngs and "skipped" not in printed
        assert sum(name.startswith("rate_vs_activation") for name in pngs) == 2  # every compared model's scatter
        assert {"layer_energy.png", "accuracy_vs_energy.png"} <= set(pngs)
    else:
        assert pngs == [] and "skipped without matplotlib" in printed


@pytest.mark.parametrize("k", EXIT_STABLE)
def test_early_exit_table_matches_the_engines_early_exit(demo, k):
    """The analysis evaluates `--exit-stable K` from one full run; the engine, told to stop, agrees
    on every sample's stop step and decision (binary spikes, where decisions still change)."""
    snn = demo.model.build(spikes="binary")
    x = demo.x[:60]
    full, stopped = simulate(snn, x, 24), simulate(snn, x, 24, stable_steps=k)
    stop = stable_exit_steps(full.decisions, k)
    np.testing.assert_array_equal(stop, np.where(stopped.exit_step > 0, stopped.exit_step, 24))
    np.testing.assert_array_equal(full.decisions[np.arange(len(x)), stop - 1], stopped.predictions())
    assert np.any(stop < 24)


def test_a_break_even_at_the_last_step_says_the_snn_was_cheaper_all_along():
    """Regression: 'break-even step 32' at T = 32 read as a crossing at 32; it means never exceeded within T."""
    from eventsnn.analysis_report import _break_even, _up_to

    assert _break_even(5, 32) == "5" and _break_even(None, 32) == "never"
    assert _break_even(32, 32).startswith("> 32")
    assert "every step run" in _up_to(32, 32) and _up_to(5, 32) == "up to step 5" and "no step" in _up_to(None, 32)


def test_rate_histograms_give_each_possible_count_its_own_bin_when_they_are_few(demo):
    """Regression: 33 possible counts in 20 bins drew a false zigzag (empty bins between full ones)."""
    import dataclasses

    x, y = demo.x[:20], demo.y[:20]
    binary = dataclasses.replace(demo.model, config=demo.model.config.updated(spikes="binary"))
    report = analyze(binary, x, y, 8, batch_size=20)
    run = simulate(binary.build(), x, 8, count_neurons=True)
    offsets = np.concatenate([[0], np.cumsum([s.size for s in binary.build().stages])])
    checked = 0
    for s, layer in enumerate(report["layers"]):
        if "rate_histogram" not in layer:  # the output layer
            continue
        assert len(layer["rate_histogram"]) == 9  # counts 0..8
        counts = run.neuron_counts[:, offsets[s]:offsets[s + 1]]
        assert layer["rate_histogram"] == np.bincount(counts.ravel(), minlength=9).tolist()
        checked += 1
    assert checked >= 3
    graded = analyze(demo.model, x, y, 8, batch_size=20)
    assert all(len(layer["rate_histogram"]) == 20 for layer in graded["layers"] if "rate_histogram" in layer)


def test_a_report_that_fails_while_drawing_leaves_the_previous_one_whole(tmp_path, demo, monkeypatch):
    """Regression: analyze failing in a plot wrote no report but left new plots beside the old one."""
    pytest.importorskip("matplotlib")
    import matplotlib.figure

    from eventsnn.analysis_report import write_report

    report = analyze(demo.model, demo.x[:10], demo.y[:10], 3, batch_size=10)
    write_report({"a.npz": report}, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "report.json" in before and "rate_vs_activation.png" in before
    calls = []

    def failing(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return real(self, path, *args, **kwargs)

    real = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", failing)
    with pytest.raises(OSError, match="No space left"):
        write_report({"b.npz": analyze(demo.model, demo.x[:10], demo.y[:10], 5, batch_size=10)}, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing new, nothing half-replaced
