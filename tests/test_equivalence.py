"""The event engine against the dense reference simulator: identical spike trains on exact weights."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.engine import simulate
from eventsnn.ir import Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU
from eventsnn.reference import simulate_reference
from eventsnn.snn import INPUTS, OUTPUTS, RESETS, SHIFTS, SPIKES, SimulationConfig, build

from .conftest import dyadic, random_inputs, random_network, random_residual_network, seeds


def assert_identical(a, b):
    np.testing.assert_array_equal(a.raster, b.raster)
    np.testing.assert_array_equal(a.membrane, b.membrane)
    np.testing.assert_array_equal(a.spikes, b.spikes)
    np.testing.assert_array_equal(a.synops, b.synops)
    np.testing.assert_array_equal(a.decisions, b.decisions)
    np.testing.assert_array_equal(a.first_spike, b.first_spike)
    np.testing.assert_array_equal(a.output_counts, b.output_counts)
    np.testing.assert_array_equal(a.spike_amounts, b.spike_amounts)
    np.testing.assert_array_equal(a.synops_per_step, b.synops_per_step)
    np.testing.assert_array_equal(a.input_synops, b.input_synops)
    np.testing.assert_array_equal(a.synops_per_step.sum(axis=2), a.synops)
    np.testing.assert_array_equal(a.neuron_counts, b.neuron_counts)
    np.testing.assert_array_equal(a.neuron_counts, a.raster.sum(axis=1, dtype=np.int32))


def assert_engine_equals_reference(snn, x, steps: int, seed: int):
    event = simulate(snn, x, steps, seed=seed, record=True, batch_size=2, count_neurons=True)
    assert_identical(event, simulate_reference(snn, x, steps, seed=seed, record=True, count_neurons=True))
    return event


@settings(max_examples=60, deadline=None)
@given(seed=seeds, reset=st.sampled_from(RESETS), input_mode=st.sampled_from(INPUTS),
       output=st.sampled_from(OUTPUTS), shift=st.sampled_from(SHIFTS),
       decay=st.sampled_from([1.0, 0.75, 0.5]), steps=st.sampled_from([8, 16, 32]), spikes=st.sampled_from(SPIKES),
       max_spikes=st.integers(1, 5), levels=st.sampled_from([1, 2, 4]))
def test_engine_equals_reference(seed, reset, input_mode, output, shift, decay, steps, spikes, max_spikes, levels):
    rng = np.random.default_rng(seed)
    net = random_network(rng)
    levels = levels if spikes == "graded" else 1
    config = SimulationConfig(reset=reset, input=input_mode, output=output, shift=shift, maxpool_decay=decay,
                              softmax_rate=0.75, spikes=spikes, max_spikes=max(max_spikes, levels), levels=levels)
    assert_engine_equals_reference(build(net, config), random_inputs(rng, net, 3), steps, seed % 1000)


def test_random_networks_actually_spike():
    """Guard against a vacuous equivalence test: the generated networks do produce spikes."""
    rng = np.random.default_rng(0)
    total = 0
    for _ in range(10):
        net = random_network(rng)
        result = simulate(build(net), random_inputs(rng, net, 2), 16)
        total += int(result.spikes[:, :-1].sum())
    assert total > 100


def test_graded_events_actually_carry_several_spikes():
    """Guard against a vacuous graded test: events carrying k > 1 occur, in IF layers and in gates."""
    rng = np.random.default_rng(2)
    carried = {"IF": 0, "gate": 0}
    for _ in range(12):
        net = random_network(rng)
        snn = build(net, SimulationConfig(spikes="graded", max_spikes=4, levels=1))
        result = simulate(snn, random_inputs(rng, net, 2), 16, record=True)
        offsets = np.cumsum([0] + [s.size for s in snn.stages])
        for s, stage in enumerate(snn.stages[:-1]):
            key = "gate" if stage.kind == 1 else "IF"
            carried[key] += int((result.raster[:, :, offsets[s]:offsets[s + 1]] > 1).sum())
        assert np.all(result.spike_amounts >= result.spikes.sum(axis=2))
    assert carried["IF"] > 20 and carried["gate"] > 0, carried


def test_results_do_not_depend_on_threads_or_batch(demo):
    snn = demo.model.build(input="poisson")
    x = demo.x[:8]
    one = simulate(snn, x, 20, seed=3, threads=1, batch_size=8)
    two = simulate(snn, x, 20, seed=3, threads=numba.config.NUMBA_NUM_THREADS, batch_size=3)
    split = simulate(snn, x[5:], 20, seed=3, first_sample=5)
    for field in ("decisions", "spikes", "synops", "output_counts", "output_membrane", "first_spike"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))
        np.testing.assert_array_equal(getattr(one, field)[5:], getattr(split, field))
    other_seed = simulate(snn, x, 20, seed=4)
    assert not np.array_equal(one.spikes, other_seed.spikes)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, reset=st.sampled_from(RESETS), input_mode=st.sampled_from(INPUTS),
       output=st.sampled_from(OUTPUTS), shift=st.sampled_from(SHIFTS), steps=st.sampled_from([8, 16]),
       spikes=st.sampled_from(SPIKES))
def test_engine_equals_reference_on_residual_networks(seed, reset, input_mode, output, shift, steps, spikes):
    rng = np.random.default_rng(seed)
    net = random_residual_network(rng)
    config = SimulationConfig(reset=reset, input=input_mode, output=output, shift=shift, softmax_rate=0.75,
                              spikes=spikes, max_spikes=3, levels=2)
    snn = build(net, config)
    assert len(snn.stages[2].projections) == 2  # conv2 and the skip meet in one population
    assert_engine_equals_reference(snn, random_inputs(rng, net, 3), steps, seed % 1000)


def test_residual_populations_actually_spike():
    """Guard against a vacuous test: the populations where branches meet do fire."""
    rng = np.random.default_rng(1)
    total = 0
    for _ in range(10):
        net = random_residual_network(rng)
        total += int(simulate(build(net), random_inputs(rng, net, 2), 16).spikes[:, 2].sum())
    assert total > 50


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_a_max_pool_reading_a_max_pool(decay):
    """Two gates in a row keep their estimates apart (the second's inputs are the first's windows)."""
    rng = np.random.default_rng(7)
    conv = Conv2d(np.abs(dyadic(rng, (2, 1, 3, 3))) / 2, np.abs(dyadic(rng, 2, 16)), 1, 1, "conv")
    layers = (conv, ReLU("relu"), MaxPool2d(2, 1, "pool1"), MaxPool2d(2, 1, "pool2"), Flatten("flat"),
              Linear(dyadic(rng, (3, 2 * 4 * 4)), None, "out"))
    net = Network((1, 6, 6), layers)
    snn = build(net, SimulationConfig(maxpool_decay=decay, output="spikes"))
    event = assert_engine_equals_reference(snn, random_inputs(rng, net, 3), 24, 0)
    assert event.spikes[:, 2].sum() > 0
