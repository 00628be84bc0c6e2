"""Signed spikes (``spikes='signed'``): a neuron that has spiked takes a spike back where V < 0."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.engine import simulate
from eventsnn.ir import Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU
from eventsnn.snn import IF, SimulationConfig, build
from eventsnn.testing import strategies as es

from .test_equivalence import assert_identical, engine_and_reference
from .test_fixed_point import assert_int32_engine_equals_reference

NO_MAX_POOL = ("avgpool",)  # a max-pool gate counts spikes up only: refused with signed spikes



@settings(max_examples=50, deadline=None)
@given(net_x=es.networks_and_inputs(pools=NO_MAX_POOL), config=es.simulation_configs(spikes=("signed",)),
       steps=st.sampled_from([4, 16]), seed=st.integers(0, 999), data=st.data())
def test_signed_engine_equals_reference(net_x, config, steps, seed, data):
    """Chains and residual graphs, dyadic weights, calibrated V(0) offsets: every event (with its
    sign), count, SynOp and membrane update is the same in both simulators."""
    net, x = net_x
    snn = data.draw(es.initial_potentials(build(net, config)))
    assert_identical(*engine_and_reference(snn, x, steps, seed), snn)


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(dyadic=False, pools=NO_MAX_POOL),
       config=es.simulation_configs(spikes=("signed",), arithmetics=("int32",)), steps=st.sampled_from([4, 16]))
def test_signed_int32_engine_equals_reference_on_any_weights(net_x, config, steps):
    net, x = net_x
    assert_int32_engine_equals_reference(net, config, x, steps)


def test_spikes_are_taken_back_and_counts_stay_non_negative():
    """Guard against a vacuous equivalence test: -1 events occur; and no neuron's running count
    goes below zero (a spike is taken back only from a neuron that has one to give)."""
    taken_back = 0
    for net, x in es.fixed_sample(es.networks_and_inputs(pools=NO_MAX_POOL), 12):
        snn = build(net, SimulationConfig(spikes="signed"))
        result = simulate(snn, x, 16, record=True, count_neurons=True)
        taken_back += int((result.raster < 0).sum())
        assert result.raster.min() >= -1 and result.raster.max() <= 1
        assert np.all(np.cumsum(result.raster, axis=1) >= 0)
        np.testing.assert_array_equal(result.spike_amounts, result.spikes.sum(axis=2))  # -1 counts as a spike
    assert taken_back > 20, taken_back


def test_a_late_negative_input_takes_the_early_spike_back():
    """One hidden neuron starts 2 thresholds above V(0) = threshold/2 (a calibrated offset) and
    receives -0.75 thresholds per step from a neuron that fires every step. After four steps its
    charge is 2 - 3 = -1 thresholds, so no spike is due: binary spikes keep the one fired at step 1,
    signed spikes take it back."""
    net = Network((1,), (Linear(np.array([[1.0]]), None, "driver"), ReLU("r1"),
                         Linear(np.array([[-0.75]]), None, "hidden"), ReLU("r2"),
                         Linear(np.array([[1.0]]), None, "out")))
    counts = {}
    for spikes in ("binary", "signed"):
        snn = build(net, SimulationConfig(spikes=spikes, levels=1, max_spikes=1))
        hidden = 1
        assert snn.stages[hidden].kind == IF and snn.stages[hidden].name == "hidden"
        stages = list(snn.stages)
        stages[hidden] = dataclasses.replace(stages[hidden], potential=np.array([2.0], np.float32))
        snn = dataclasses.replace(snn, stages=tuple(stages))
        event, reference = engine_and_reference(snn, np.ones((1, 1), np.float32), 4)
        assert_identical(event, reference, snn)
        counts[spikes] = event.raster[0, :, 1].tolist()  # the hidden neuron's events per step
    # V: 2.5 -0.75 -> 1.75 fires, 0.75; -0.75 -> 0.0, -0.75 -> -0.75; -0.75 -> -1.5 (binary keeps its 1 spike)
    assert counts["binary"] == [1, 0, 0, 0]
    # signed: 1.75 fires (0.75); 0.0; -0.75 < 0 with one spike out: -1 (V 0.25); -0.5: count 0, nothing
    assert counts["signed"] == [1, 0, -1, 0]


def test_signed_spikes_refuse_max_pooling():
    net = Network((1, 4, 4), (Conv2d(np.ones((2, 1, 3, 3)), None, 1, 1, "conv"), ReLU("relu"),
                              MaxPool2d(2, 2, "pool"), Flatten("flat"), Linear(np.ones((2, 8)), None, "out")))
    with pytest.raises(ValueError, match="signed spikes need a network without max-pooling"):
        build(net, SimulationConfig(spikes="signed"))


def test_converting_a_max_pooling_net_for_signed_spikes_is_refused_with_one_line(capsys):
    from eventsnn.cli import main

    assert main(["demo", "--spikes", "signed", "--samples", "2"]) == 2  # the demo CNN max-pools
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "signed spikes need a network without max-pooling" in error
