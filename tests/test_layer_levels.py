"""Run length, levels and per-layer levels chosen for the fewest SynOps (``--choose-levels``)."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn import ann
from eventsnn.cli import main
from eventsnn.convert import population_members
from eventsnn.engine import simulate
from eventsnn.layer_levels import choose_levels
from eventsnn.model import ConvertedModel, ModelFileError, convert, load, save
from eventsnn.snn import SimulationConfig
from eventsnn.testing import strategies as es


def _converted(net, x, config: SimulationConfig) -> ConvertedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a drawn layer may be silent on the drawn inputs
        return dataclasses.replace(convert(net, x, percentile=99.0), config=config)


def _same_run(a, b, output_factor: float = 1.0) -> None:
    for field in ("spikes", "synops"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    v0 = 0.5  # V(0) = threshold / 2, the same in both
    # within float32 rounding: the two runs add terms of different sizes, so an output's error scales
    # with the largest (hypothesis found 1.6e-6 relative, and 1.8e-5 on an output of 0.74 beside one of 12)
    expected = output_factor * (b.output_membrane - v0)
    atol = 1e-5 * max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(a.output_membrane - v0, expected, rtol=1e-5, atol=atol)
    # so decisions may differ only between outputs tied within that rounding (hypothesis found one)
    samples = np.flatnonzero(a.predictions() != b.predictions())
    v = b.output_membrane[samples]
    np.testing.assert_allclose(v[np.arange(len(samples)), a.predictions()[samples]], v.max(axis=1), rtol=1e-5, atol=atol)


@settings(max_examples=25, deadline=None)
@given(net_x=es.networks_and_inputs(), k=st.sampled_from([2, 4]), steps=st.integers(1, 3))
def test_coarsening_every_population_by_k_is_levels_divided_by_k(net_x, k, steps):
    """Scales times k (a power of two) at L levels are exactly scales at L / k levels; the output
    layer, not coarsened, integrates k times the current (its V(0) unchanged)."""
    net, x = net_x
    fine = _converted(net, x, SimulationConfig(levels=4, max_spikes=8))
    coarse = dataclasses.replace(fine, coarsening={name: k for name in population_members(fine.ann)})
    _same_run(simulate(coarse.build(), x, steps), simulate(fine.build(levels=4 // k), x, steps), output_factor=k)


def test_a_coarsened_first_layer_quantizes_its_ann_activation_to_levels_over_k(demo):
    """At T = 1 with analog input and V(0) = threshold / 2, the first population's spikes are its
    ANN activation rounded to L / k levels of its scale (clipped at max_spikes)."""
    levels, k, max_spikes = 16, 4, 32
    model = dataclasses.replace(demo.model, config=SimulationConfig(levels=levels, max_spikes=max_spikes))
    first = next(iter(population_members(model.ann)))
    model = dataclasses.replace(model, coarsening={first: k})
    x = demo.x[:50]
    result = simulate(model.build(), x, 1, count_neurons=True)
    i = [layer.name for layer in model.ann.layers].index(first)
    activation = dict(ann.activations(model.ann, x))[i].reshape(len(x), -1)
    expected = np.clip(np.floor(activation * (levels // k) / model.scales[i] + 0.5), 0, max_spikes)
    counts = result.neuron_counts[:, :model.build().stages[0].size]
    assert np.abs(counts - expected).max() <= 1  # float32 sums against float64 at rounding ties
    assert np.mean(counts == expected) > 0.999
    assert counts.max() > 0


@pytest.fixture(scope="module")
def chosen(demo):
    x = demo.x_calib[:200]
    return choose_levels(demo.model, x, 2, max_loss=0.02, per_layer=True), x


def test_the_choice_keeps_its_limit_and_no_cheaper_candidate_does(chosen, demo):
    model, x = chosen
    info = model.levels_choice
    ann_decisions = ann.forward(model.ann, x).argmax(axis=1)
    rerun = simulate(model.build(), x, info["steps"])
    disagreement = float(np.mean(rerun.predictions() != ann_decisions))
    assert disagreement == pytest.approx(info["disagreement"]["after"]) and disagreement <= info["limit"]
    assert rerun.synops.sum() / len(x) == pytest.approx(info["synops_per_image"]["after"])
    assert info["limit"] == pytest.approx(min(r["disagreement"] for r in info["grid"]) + 0.01)
    stage1 = next(r for r in info["grid"] if (r["steps"], r["levels"]) == (info["steps"], info["levels"]))
    assert info["synops_per_image"]["after"] <= stage1["synops_per_image"]
    for row in info["grid"]:  # every cheaper candidate breaks the limit
        if row["synops_per_image"] < stage1["synops_per_image"]:
            assert row["disagreement"] > info["limit"], row
    assert (model.config.levels, model.config.max_spikes) == (info["levels"], info["max_spikes"])
    assert info["population_levels"] == {name: info["levels"] // model.coarsening.get(name, 1)
                                         for name in population_members(model.ann)}
    assert len(info["grid"]) == 2 * 4 and info["trade_off"][-1]["synops_per_image"] == info["synops_per_image"]["after"]


@pytest.mark.parametrize("shift", ["membrane", "bias"])
def test_every_grid_row_is_what_a_run_of_its_length_gives(demo, shift):
    """With V(0) = threshold / 2 one run is read at every step; with a bias shift of threshold / 2T
    each T is run on its own. Either way a row is a run of its length."""
    model = dataclasses.replace(demo.model, config=demo.model.config.updated(shift=shift))
    x, steps = demo.x_calib[:60], 3
    info = choose_levels(model, x, steps, max_loss=0.02).levels_choice
    assert info["runs"] == (4 if shift == "membrane" else 4 * steps)
    ann_decisions = ann.forward(model.ann, x).argmax(axis=1)
    assert len(info["grid"]) == 4 * steps
    for row in info["grid"]:
        alone = simulate(model.build(levels=row["levels"], max_spikes=row["max_spikes"]), x, row["steps"])
        assert row["synops_per_image"] == pytest.approx(alone.synops.sum() / len(x), rel=1e-12), row
        assert row["disagreement"] == pytest.approx(np.mean(alone.predictions() != ann_decisions)), row


def test_without_the_per_layer_stage_the_choice_is_stage_one_s(chosen, demo):
    per_layer, x = chosen
    model = choose_levels(demo.model, x, 2, max_loss=0.02)
    info = model.levels_choice
    assert model.coarsening == {} and info["trade_off"] == [] and not info["per_layer"]
    assert info["grid"] == per_layer.levels_choice["grid"]  # the same runs, the same numbers
    assert (info["steps"], info["levels"]) == (per_layer.levels_choice["steps"], per_layer.levels_choice["levels"])
    assert info["synops_per_image"]["after"] == info["synops_per_image"]["before"]
    assert set(info["population_levels"].values()) == {info["levels"]}


def test_every_population_coarser_than_chosen_breaks_the_limit(chosen):
    """Bisection's claim, checked directly for the last population it settled."""
    model, x = chosen
    info = model.levels_choice
    last = info["trade_off"][-1]["population"]
    k = model.coarsening.get(last, 1)
    assert info["levels"] // k > 1  # the demo's last population keeps more than one level: a coarser one exists
    coarser = dataclasses.replace(model, coarsening=dict(model.coarsening, **{last: 2 * k}))
    ann_decisions = ann.forward(model.ann, x).argmax(axis=1)
    assert np.mean(simulate(coarser.build(), x, info["steps"]).predictions() != ann_decisions) > info["limit"]


def test_the_choice_is_saved_and_loaded(chosen, tmp_path):
    model, x = chosen
    save(model, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.coarsening == model.coarsening and loaded.levels_choice == json.loads(json.dumps(model.levels_choice))
    _same_run(simulate(loaded.build(), x[:20], 2), simulate(model.build(), x[:20], 2))


@pytest.mark.parametrize("coarsening, message", [({"nope": 2}, "not a spiking population"),
                                                 ({"conv1": 0}, "positive integer"), ({"conv1": 1.5}, "positive integer"),
                                                 ({"conv1": True}, "positive integer")])
def test_a_bad_coarsening_is_refused(demo, coarsening, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(demo.model, coarsening=coarsening)


def test_a_bad_stored_coarsening_is_a_model_file_error(demo, tmp_path):
    save(dataclasses.replace(demo.model, coarsening={"conv1": 2}), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    description = json.loads(str(arrays["__model__"]))
    for bad in ({"fc2": 2}, [2], {"conv1": "2"}):  # the output layer is not a population
        description["coarsening"] = bad
        np.savez(tmp_path / "bad.npz", **dict(arrays, __model__=np.array(json.dumps(description))))
        with pytest.raises(ModelFileError, match="coarsening"):
            load(tmp_path / "bad.npz")


def test_what_cannot_be_chosen_is_refused(demo):
    x = demo.x_calib[:20]
    binary = dataclasses.replace(demo.model, config=SimulationConfig(spikes="binary", levels=1))
    with pytest.raises(ValueError, match="graded spikes"):
        choose_levels(binary, x, 2)
    shifted = dataclasses.replace(demo.model, bias_shift={"conv1": np.zeros(16, np.float32)})
    with pytest.raises(ValueError, match="before calibrating"):
        choose_levels(shifted, x, 2)
    for steps in (0, 1.5, True):
        with pytest.raises(ValueError, match="positive number of steps"):
            choose_levels(demo.model, x, steps)
    with pytest.raises(ValueError, match="share"):
        choose_levels(demo.model, x, 2, max_loss=1)
    with pytest.raises(ValueError, match="calibration images"):
        choose_levels(demo.model, x[:0], 2)


def test_convert_choose_levels_is_stored_and_run_uses_its_steps(tmp_path, demo_files, small_data, capsys):
    out = tmp_path / "m.npz"
    convert_args = ["convert", str(demo_files["mnist_cnn.pt"]), "--arch", str(demo_files["mnist_cnn.json"]),
                    "--calib", str(small_data / "calib.npz"), "-o", str(out)]
    assert main(convert_args + ["--choose-levels"]) == 2
    assert "--choose-levels needs --steps" in capsys.readouterr().err
    assert main(convert_args + ["--per-layer-levels", "--steps", "2"]) == 2
    assert "give both" in capsys.readouterr().err
    assert main(convert_args + ["--choose-levels", "--steps", "2", "--levels-images", "100",
                                "--levels-loss", "1"]) == 0
    model = load(out)
    info = model.levels_choice
    assert info["images"] == 100 and info["max_loss"] == 0.01 and 1 <= info["steps"] <= 2
    assert f"levels for T={info['steps']}" in capsys.readouterr().out
    assert main(["run", str(out), "--data", str(small_data / "test.npz"), "--limit", "10"]) == 0
    assert f"SNN accuracy at T={info['steps']}" in capsys.readouterr().out
