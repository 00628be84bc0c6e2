"""Offset correction (``correction='offset'``): layer by layer, each IF population runs its T steps,
V(0) is moved by the miscount its residual V(T) shows, and it runs again."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.engine import simulate
from eventsnn.ir import Linear, MaxPool2d, Network, ReLU
from eventsnn.snn import SimulationConfig, build
from eventsnn.testing import strategies as es

from .test_equivalence import assert_identical, engine_and_reference
from .test_fixed_point import assert_int32_engine_equals_reference

NO_MAX_POOL = ("avgpool",)
OFFSET = dict(corrections=("offset",), resets=("subtract",), outputs=("membrane",))



@settings(max_examples=50, deadline=None)
@given(net_x=es.networks_and_inputs(pools=NO_MAX_POOL), config=es.simulation_configs(**OFFSET),
       steps=st.sampled_from([1, 4, 16]), seed=st.integers(0, 999), data=st.data())
def test_offset_engine_equals_reference(net_x, config, steps, seed, data):
    """Chains and residual graphs, binary and graded spikes, analog and Poisson input, calibrated
    V(0) offsets, dyadic weights: every event, count, SynOp, membrane update and final membrane
    is the same in both simulators."""
    net, x = net_x
    snn = data.draw(es.initial_potentials(build(net, config)))
    event, reference = engine_and_reference(snn, x, steps, seed)
    assert_identical(event, reference, snn)
    np.testing.assert_array_equal(event.decisions, reference.decisions)
    np.testing.assert_array_equal(event.membrane, reference.membrane)


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(dyadic=False, pools=NO_MAX_POOL),
       config=es.simulation_configs(arithmetics=("int32",), **OFFSET), steps=st.sampled_from([4, 16]))
def test_offset_int32_engine_equals_reference_on_any_weights(net_x, config, steps):
    net, x = net_x
    assert_int32_engine_equals_reference(net, config, x, steps)


def _chain(hidden_weight: float) -> Network:
    """driver (one neuron, analog input) -> hidden (one neuron) -> output."""
    return Network((1,), (Linear(np.array([[1.0]]), None, "driver"), ReLU("r1"),
                          Linear(np.array([[hidden_weight]]), None, "hidden"), ReLU("r2"),
                          Linear(np.array([[1.0]]), None, "out")))


def _hidden_count(correction: str, potential: float, hidden_weight: float, drive: float = 1.0, steps: int = 4) -> int:
    snn = build(_chain(hidden_weight), SimulationConfig(spikes="binary", levels=1, max_spikes=1, correction=correction))
    stages = list(snn.stages)
    stages[1] = dataclasses.replace(stages[1], potential=np.float32([potential]))
    snn = dataclasses.replace(snn, stages=tuple(stages))
    result = simulate(snn, np.full((1, 1), drive, np.float32), steps, count_neurons=True)
    assert stages[1].name == "hidden"
    return int(result.neuron_counts[0, 1])


def test_an_early_spike_that_is_not_due_is_taken_out_of_the_second_run():
    """The hidden neuron starts 2 thresholds above threshold/2 and receives -0.75 thresholds per step:
    its charge over 4 steps is 2.5 - 3 < 0, so no spike is due. Uncorrected it fires once at step 1;
    corrected, V(0) moves down by that one threshold and it stays silent."""
    assert _hidden_count("none", 2.0, -0.75) == 1
    assert _hidden_count("offset", 2.0, -0.75) == 0


def test_a_spike_held_back_by_a_late_input_is_moved_into_the_run():
    """In 2 steps the driver, given 7/16 of a threshold per step from V(0) = 1/2, fires at step 2
    only; the hidden neuron gets 2.5 thresholds then but fires at most once a step, so it ends at
    V(T) = 2 thresholds with 1 spike of the 2 its charge (0.5 + 2.5) is due. Corrected, it starts a
    threshold higher, fires at step 1 already, and emits 2."""
    assert _hidden_count("none", 0.0, 2.5, drive=7 / 16, steps=2) == 1
    assert _hidden_count("offset", 0.0, 2.5, drive=7 / 16, steps=2) == 2


def test_the_correction_changes_spike_trains_of_a_mixed_sign_net():
    """Guard against a vacuous equivalence test: in a dense net whose weights have both signs (so
    spikes come early or late), the correction changes many neurons' counts, never beyond T, and
    the engine still equals the reference. Dyadic weights and inputs keep float32 sums exact."""
    rng = np.random.default_rng(0)
    sizes = (24, 32, 32, 10)
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        weight = np.round(rng.normal(0, 0.4, (n_out, n_in)) * 64) / 64
        layers += [Linear(weight.astype(np.float32), None, f"fc{k}")] + ([ReLU(f"relu{k}")] if k < 2 else [])
    net = Network((sizes[0],), tuple(layers))
    x = (rng.integers(0, 17, (6, sizes[0])) / 16).astype(np.float32)
    counts = {}
    for correction in ("none", "offset"):
        snn = build(net, SimulationConfig(spikes="binary", levels=1, max_spikes=1, correction=correction))
        event, reference = engine_and_reference(snn, x, 4)
        assert_identical(event, reference, snn)
        counts[correction] = event.neuron_counts
    assert counts["offset"].min() >= 0 and counts["offset"].max() <= 4
    assert np.sum(counts["offset"] != counts["none"]) >= 10, np.sum(counts["offset"] != counts["none"])


@pytest.mark.parametrize("change, message", [
    (dict(reset="zero"), "reset by subtraction"),
    (dict(output="softmax"), "membrane readout"),
    (dict(spikes="signed"), "binary or graded"),
])
def test_settings_it_cannot_correct_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(correction="offset", **change)


def test_max_pooling_and_early_exit_are_refused():
    pooled = [net for net, _ in es.fixed_sample(es.networks_and_inputs(residual=False, pools=("maxpool",)), 20)
              if any(isinstance(layer, MaxPool2d) for layer in net.layers)]
    with pytest.raises(ValueError, match="without max-pooling"):
        build(pooled[0], SimulationConfig(correction="offset"))
    net, x = es.fixed_sample(es.networks_and_inputs(residual=False, pools=NO_MAX_POOL), 1)[0]
    snn = build(net, SimulationConfig(correction="offset"))
    with pytest.raises(ValueError, match="no early exit"):
        simulate(snn, x, 4, stable_steps=2)


def test_the_run_summary_says_what_a_step_of_a_corrected_run_means():
    from eventsnn.cli.run import summary
    from eventsnn.pipeline import run_report

    net, x = es.fixed_sample(es.networks_and_inputs(residual=False, pools=NO_MAX_POOL), 1)[0]
    snn = build(net, SimulationConfig(spikes="binary", levels=1, max_spikes=1, correction="offset"))
    result = simulate(snn, x, 4)
    text = summary(run_report(snn, result, np.zeros(len(x), np.int64), 1.0))
    assert "offset correction: step t reads a run corrected for T=4" in text


def test_the_demo_refuses_offset_correction_on_its_max_pooling_net_with_one_line(capsys):
    from eventsnn.cli import main

    assert main(["demo", "--spikes", "binary", "--correction", "offset", "--samples", "2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "offset correction needs a network without max-pooling" in error
