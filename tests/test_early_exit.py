"""Early exit chosen on calibration data (``--exit auto``)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.cli import main
from eventsnn.early_exit import STABLE_CANDIDATES, choose_exit, stable_exit_steps
from eventsnn.engine import simulate
from eventsnn.model import ModelFileError, load, save
from eventsnn.snn import SimulationConfig, build
from eventsnn.testing import strategies as es


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(), config=es.simulation_configs(), k=st.integers(1, 6))
def test_stable_exit_steps_are_where_the_engine_stops(net_x, config, k):
    net, x = net_x
    snn = build(net, config)
    steps = 12
    full, early = simulate(snn, x, steps), simulate(snn, x, steps, stable_steps=k)
    expected = stable_exit_steps(full.decisions, k)
    np.testing.assert_array_equal(np.where(early.exit_step > 0, early.exit_step, steps), expected)
    rows = np.arange(len(x))
    np.testing.assert_array_equal(early.decisions[:, -1], full.decisions[rows, expected - 1])


@pytest.mark.parametrize("spikes, output", [("graded", "membrane"), ("binary", "membrane"), ("binary", "spikes")])
def test_the_chosen_rule_keeps_the_budget_and_no_faster_rule_does(demo, spikes, output):
    model = dataclasses.replace(demo.model, config=SimulationConfig(spikes=spikes, output=output))
    x, steps, budget = demo.x_calib[:300], 40, 0.01
    rule = choose_exit(model, x, steps, max_loss=budget)
    full = simulate(model.build(), x, steps)
    early = simulate(model.build(), x, steps, stable_steps=rule["stable_steps"], exit_margin=rule["exit_margin"])
    changed = np.mean(early.decisions[:, -1] != full.decisions[:, -1])
    stop = np.where(early.exit_step > 0, early.exit_step, steps).mean()
    assert changed == pytest.approx(rule["changed"]) and changed <= budget / 2
    assert stop == pytest.approx(rule["mean_stop_step"]) and stop < steps / 2, rule  # it does save steps
    rows = np.arange(len(x))
    for k in (k for k in STABLE_CANDIDATES if k < steps):  # every faster stable rule breaks the budget
        k_stop = stable_exit_steps(full.decisions, k)
        if k_stop.mean() < stop:
            assert np.mean(full.decisions[rows, k_stop - 1] != full.decisions[:, -1]) > budget / 2, k
    with pytest.raises(ValueError, match="share"):
        choose_exit(model, x, steps, max_loss=20)


def test_convert_exit_auto_is_stored_and_applied_by_run(tmp_path, demo_files, capsys):
    out = tmp_path / "m.npz"
    data = str(demo_files["mnist_sample.npz"])
    assert main(["convert", str(demo_files["mnist_cnn.pt"]), "--arch", str(demo_files["mnist_cnn.json"]),
                 "--calib", data, "--spikes", "binary", "--steps", "50", "--exit", "auto", "--exit-images", "300",
                 "-o", str(out)]) == 0
    rule = load(out).early_exit
    assert rule["stable_steps"] > 0 and rule["steps"] == 50 and rule["images"] == 300
    assert "early exit for T=50" in capsys.readouterr().out
    assert main(["run", str(out), "--data", data, "--limit", "100", "--json", str(tmp_path / "r.json")]) == 0
    assert "early exit chosen at conversion" in capsys.readouterr().out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_step_mean"] < 50
    for layer in report["layers"]:  # rates per step run: samples that stopped early count their steps only
        assert layer["rate"] == pytest.approx(layer["spikes_per_sample"] / (layer["neurons"] * report["exit_step_mean"]))
    assert main(["run", str(out), "--data", data, "--limit", "100", "--exit-stable", "0",
                 "--json", str(tmp_path / "r0.json")]) == 0
    assert "exit_step_mean" not in json.loads((tmp_path / "r0.json").read_text())


def test_a_malformed_stored_rule_is_refused(tmp_path, demo):
    save(dataclasses.replace(demo.model, early_exit={"stable_steps": -1, "exit_margin": 0}), tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="early_exit"):
        load(tmp_path / "m.npz")


def test_an_exit_margin_under_the_membrane_readout_is_refused(tmp_path, small_data, demo, capsys):
    """Regression: --exit-margin silently did nothing under the default membrane readout."""
    save(demo.model, tmp_path / "m.npz")
    run = ["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--steps", "4"]
    assert main(run + ["--exit-margin", "3"]) == 2
    assert "membrane readout emits none" in capsys.readouterr().err
    assert main(run + ["--exit-margin", "3", "--output", "spikes", "--limit", "20"]) == 0


def test_run_takes_the_steps_an_early_exit_was_chosen_for(tmp_path, small_data, demo, capsys):
    """convert --exit auto --steps T stores T with the rule; run without --steps uses it."""
    rule = {"stable_steps": 3, "exit_margin": 0, "steps": 12}
    save(dataclasses.replace(demo.model, early_exit=rule), tmp_path / "m.npz")
    assert main(["run", str(tmp_path / "m.npz"), "--data", str(small_data / "test.npz"), "--limit", "10"]) == 0
    assert "SNN accuracy at T=12" in capsys.readouterr().out
