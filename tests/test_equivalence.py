"""The event engine against the dense reference simulator: identical spike trains on exact (dyadic) weights."""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventsnn.engine import simulate
from eventsnn.ir import Add, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU
from eventsnn.reference import simulate_reference
from eventsnn.snn import GATE, SimulationConfig, build
from eventsnn.testing import assert_same_spikes
from eventsnn.testing import strategies as es


def assert_identical(a, b, snn=None):
    assert_same_spikes(a, b, snn, labels=("engine", "reference"))
    np.testing.assert_array_equal(a.spikes, b.spikes)
    np.testing.assert_array_equal(a.synops, b.synops)
    np.testing.assert_array_equal(a.first_spike, b.first_spike)
    np.testing.assert_array_equal(a.spike_amounts, b.spike_amounts)
    np.testing.assert_array_equal(a.synops_per_step, b.synops_per_step)
    np.testing.assert_array_equal(a.input_synops, b.input_synops)
    np.testing.assert_array_equal(a.synops_per_step.sum(axis=2), a.synops)
    np.testing.assert_array_equal(a.neuron_counts, b.neuron_counts)
    np.testing.assert_array_equal(a.neuron_counts, a.raster.sum(axis=1, dtype=np.int32))
    np.testing.assert_array_equal(a.membrane_updates, b.membrane_updates)


def engine_and_reference(snn, x, steps: int, seed: int = 0):
    """Both simulators' results, recorded and counted (the engine in batches of 2, so chunks and threads differ)."""
    event = simulate(snn, x, steps, seed=seed, record=True, batch_size=2, count_neurons=True)
    return event, simulate_reference(snn, x, steps, seed=seed, record=True, count_neurons=True)


def assert_engine_equals_reference(snn, x, steps: int, seed: int):
    event, reference = engine_and_reference(snn, x, steps, seed)
    assert_identical(event, reference, snn)
    return event


@settings(max_examples=60, deadline=None)
@given(net_x=es.networks_and_inputs(residual=False), config=es.simulation_configs(),
       steps=st.sampled_from([8, 16, 32]), seed=st.integers(0, 999))
def test_engine_equals_reference(net_x, config, steps, seed):
    net, x = net_x
    assert_engine_equals_reference(build(net, config), x, steps, seed)


def test_random_networks_actually_spike():
    """Guard against a vacuous equivalence test: the generated networks do produce spikes."""
    total = 0
    for net, x in es.fixed_sample(es.networks_and_inputs(residual=False), 10):
        result = simulate(build(net), x, 16)
        total += int(result.spikes[:, :-1].sum())
    assert total > 100


def test_graded_events_actually_carry_several_spikes():
    """Guard against a vacuous graded test: events carrying k > 1 occur, in IF layers and in gates."""
    carried = {"IF": 0, "gate": 0}
    for net, x in es.fixed_sample(es.networks_and_inputs(residual=False), 24):
        snn = build(net, SimulationConfig(spikes="graded", max_spikes=4, levels=1))
        result = simulate(snn, x, 16, record=True)
        offsets = np.cumsum([0] + [s.size for s in snn.stages])
        for s, stage in enumerate(snn.stages[:-1]):
            key = "gate" if stage.kind == GATE else "IF"
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
@given(net_x=es.networks_and_inputs(residual=True), config=es.simulation_configs(), steps=st.sampled_from([8, 16]),
       seed=st.integers(0, 999))
def test_engine_equals_reference_on_residual_networks(net_x, config, steps, seed):
    net, x = net_x
    snn = build(net, config)
    assert len(snn.stages[2].projections) == 2  # conv2 and the skip meet in one population
    assert_engine_equals_reference(snn, x, steps, seed)


def test_residual_populations_actually_spike():
    """Guard against a vacuous test: the populations where branches meet do fire."""
    total = 0
    for net, x in es.fixed_sample(es.networks_and_inputs(residual=True), 10):
        total += int(simulate(build(net), x, 16).spikes[:, 2].sum())
    assert total > 50


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_a_max_pool_reading_a_max_pool(decay):
    """Two gates in a row keep their estimates apart (the second's inputs are the first's windows)."""
    rng = np.random.default_rng(7)
    conv = Conv2d(rng.integers(0, 65, (2, 1, 3, 3)) / 128, rng.integers(0, 17, 2) / 16, 1, 1, "conv")  # dyadic
    layers = (conv, ReLU("relu"), MaxPool2d(2, 1, "pool1"), MaxPool2d(2, 1, "pool2"), Flatten("flat"),
              Linear(rng.integers(-64, 65, (3, 2 * 4 * 4)) / 64, None, "out"))
    net = Network((1, 6, 6), layers)
    snn = build(net, SimulationConfig(maxpool_decay=decay, output="spikes"))
    event = assert_engine_equals_reference(snn, rng.integers(0, 17, (3, 1, 6, 6)) / 16, 24, 0)
    assert event.spikes[:, 2].sum() > 0


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(), config=es.simulation_configs(), steps=st.sampled_from([1, 2, 8]), data=st.data())
def test_engine_equals_reference_with_calibrated_initial_potentials(net_x, config, steps, data):
    """Per-neuron V(0) offsets (``--calibrate potential``), dyadic, some at or above the threshold
    so a population fires at step 1 without any input (T a power of two keeps the bias shift dyadic)."""
    net, x = net_x
    snn = data.draw(es.initial_potentials(build(net, config)))
    assert_same_spikes(simulate(snn, x, steps, record=True), simulate_reference(snn, x, steps, record=True))


def test_a_population_above_threshold_from_its_initial_potential_fires_without_input():
    """Nothing reaches the second hidden layer (the first stays silent, no biases), but its
    calibrated V(0) is above the threshold: it must fire at step 1 and, reset by subtraction, keep
    firing what it holds (the engine skips populations that receive nothing, unless they can fire)."""
    net = Network((4,), (Linear(np.ones((3, 4), np.float32), None, "hidden1"), ReLU("act1"),
                         Linear(np.ones((3, 3), np.float32), None, "hidden2"), ReLU("act2"),
                         Linear(np.ones((2, 3), np.float32), None, "out")))
    snn = build(net, SimulationConfig(spikes="binary"))
    hidden2 = dataclasses.replace(snn.stages[1], potential=np.float32([1.5, 0.0, 2.5]))  # V(0) = 2, 0.5, 3
    snn = dataclasses.replace(snn, stages=(snn.stages[0], hidden2, snn.stages[2]))
    x = np.zeros((1, 4), np.float32)
    event = simulate(snn, x, 4, record=True)
    assert_same_spikes(event, simulate_reference(snn, x, 4, record=True))
    np.testing.assert_array_equal(event.spikes[0, 0], [0, 0, 0, 0])  # the first hidden layer is silent
    np.testing.assert_array_equal(event.spikes[0, 1], [2, 2, 1, 0])  # 2 and 3 thresholds' worth, one per step


def _fold_affine_branch_weights(net: Network) -> Network:
    """The same net with the add's weight for each affine branch multiplied into that layer (by hand)."""
    add = next(i for i, layer in enumerate(net.layers) if isinstance(layer, Add))
    layers, kept = list(net.layers), []
    for j, w in zip(net.inputs[add], net.layers[add].input_weights(2)):
        if j >= 0 and isinstance(layers[j], Conv2d):
            w = np.asarray(w, np.float32)
            layers[j] = dataclasses.replace(layers[j], weight=layers[j].weight * (w.reshape(-1, 1, 1, 1) if w.ndim else w),
                                            bias=layers[j].bias * w)
            w = 1.0
        kept.append(w)
    layers[add] = Add(layers[add].name, tuple(kept))
    return net.replace_layers(layers)


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(residual=True), config=es.simulation_configs())
def test_an_adds_weights_count_on_every_branch(net_x, config):
    """An add's weights, one per branch or one per channel, on affine branches (folded into the
    layer's synapses when built) as on identity ones: the same spikes as the net folded by hand
    (dyadic, so exact). Both simulators once ignored the weight of an affine branch alike."""
    net, x = net_x
    by_hand = _fold_affine_branch_weights(net)
    assert_same_spikes(*(simulate(build(n, config), x, 8, record=True) for n in (net, by_hand)))


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(residual=False, pools=()), config=es.simulation_configs(), seed=st.integers(0, 99))
def test_a_global_pooling_head_is_read_out_the_same(net_x, config, seed):
    """SqueezeNet's head, conv - relu - global average pool - flatten with no linear layer after:
    the pooled population is the output."""
    from eventsnn.ir import AvgPool2d

    net, x = net_x
    convs = [i for i, layer in enumerate(net.layers) if isinstance(layer, Conv2d)]
    assume(convs)
    i = convs[-1]
    body = Network(net.input_shape, net.layers[:i + 2], net.inputs[:i + 2])  # up to the last conv's activation
    _, h, w = body.output_shape
    assume(min(h, w) in (1, 2, 4))  # a window of k x k divides by k^2: a power of two keeps dyadic weights exact
    head = Network(net.input_shape, body.layers + (AvgPool2d(min(h, w), max(h, w), "global"), Flatten("out")))  # 1x1
    snn = build(head, config)
    assert snn.stages[-1].name == "global" and snn.stages[-1].kind == 2  # OUTPUT
    assert_engine_equals_reference(snn, x, 8, seed)
