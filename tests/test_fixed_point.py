"""int32 arithmetic (``fixed_point``): exact sums, so the engine equals the reference on any
weights, and no delivery path, thread count or event order changes a spike."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventsnn import ann, fixed_point
from eventsnn.engine import build, simulate
from eventsnn.engine.packing import pack
from eventsnn.ir import QCFS, AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from eventsnn.convert import spiking_roles
from eventsnn.model import convert
from eventsnn.reference import simulate_reference
from eventsnn.rewrite import fold_avgpools
from eventsnn.snn import SimulationConfig
from eventsnn.testing import strategies as es

from .test_equivalence import assert_identical, engine_and_reference


def refused_by_int32(err: ValueError) -> bool:
    """An average pooling int32 cannot divide exactly, or a degenerate drawn net (e.g. all
    activations 0) whose normalized weights or input currents are out of int32's range."""
    return any(reason in str(err) for reason in ("power-of-two", "int32 arithmetic represents",
                                                 "reads the analog input", "could drive the first layer"))


@contextmanager
def int32_refusals_skipped():
    try:
        yield
    except ValueError as err:
        assume(not refused_by_int32(err))
        raise


def assert_int32_engine_equals_reference(net, config, x, steps: int) -> None:
    """Built in int32 (a drawn net int32 refuses is skipped): every spike, count and membrane equal."""
    with int32_refusals_skipped():
        snn = build(net, config)
        event, reference = engine_and_reference(snn, x, steps)
    assert_identical(event, reference, snn)
    np.testing.assert_array_equal(event.membrane, reference.membrane)


@settings(max_examples=60, deadline=None)
@given(net_x=es.networks_and_inputs(dyadic=False), config=es.simulation_configs(arithmetics=("int32",)),
       steps=st.sampled_from([1, 4, 16]), seed=st.integers(0, 999), data=st.data())
def test_int32_engine_equals_reference_on_any_weights(net_x, config, steps, seed, data):
    """Weights, biases, inputs and initial potentials that are not dyadic (float32 sums would round
    differently in the two simulators): in int32 every spike, membrane and count is equal."""
    net, x = net_x
    with int32_refusals_skipped():
        snn = data.draw(es.initial_potentials(build(net, config), dyadic=False))
    with int32_refusals_skipped():
        event = simulate(snn, x, steps, seed=seed, record=True, batch_size=2, count_neurons=True)
    assert_identical(event, simulate_reference(snn, x, steps, seed=seed, record=True, count_neurons=True), snn)
    np.testing.assert_array_equal(event.membrane, simulate_reference(snn, x, steps, seed=seed, record=True).membrane)


@settings(max_examples=25, deadline=None)
@given(net_x=es.networks_and_inputs(dyadic=False, pools=("maxpool",)),
       config=es.simulation_configs(arithmetics=("int32",), outputs=("membrane", "spikes")))
def test_int32_does_not_depend_on_the_delivery_path_or_threads(net_x, config):
    """CSR rows and kernel-direct scatter add each target's inputs in different orders."""
    net, x = net_x
    runs = [simulate(build(net, config, path=path), x, 8, record=True, threads=threads)
            for path, threads in (("csr", 1), ("direct", 1), ("direct", 2))]
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0].raster, other.raster)
        np.testing.assert_array_equal(runs[0].membrane, other.membrane)


def test_float32_does_depend_on_the_order_where_int32_does_not():
    """Guard against a vacuous order test: on one wide layer of non-dyadic weights float32 sums
    differ between two delivery orders, int32 sums do not."""
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.1, (1, 2000)).astype(np.float32)
    s = (rng.random(2000) < 0.5).astype(np.float32)
    forward, backward = np.float32(0), np.float32(0)
    for a, b in zip(w[0] * s, (w[0] * s)[::-1]):
        forward, backward = np.float32(forward + a), np.float32(backward + b)
    assert forward != backward
    steps = fixed_point.steps_of(fixed_point.on_grid(w[0] * s))
    assert np.int32(np.sum(steps, dtype=np.int32)) == np.int32(np.sum(steps[::-1], dtype=np.int32))


def test_int32_membranes_saturate_instead_of_wrapping():
    """A neuron driven far below zero for a long run stops at -MEMBRANE_LIMIT steps (it would
    otherwise wrap to a large positive value and fire); the output layer (a coarser grid, so a
    larger range) saturates as well."""
    net = Network((1,), (Linear(np.array([[1.0]], np.float32), np.array([-15.0], np.float32), "hidden"), ReLU(),
                         Linear(np.array([[1.0], [-1.0]], np.float32), np.array([200.0, -200.0], np.float32), "out")))
    snn = build(net, SimulationConfig(arithmetic="int32", spikes="binary", shift="none", input="poisson"))
    result = simulate(snn, np.zeros((1, 1), np.float32), 100, record=True)  # 1,500 and 20,000 thresholds
    hidden, output = (fixed_point.MEMBRANE_LIMIT / 2.0 ** bits for bits in (fixed_point.FRACTION_BITS,
                                                                                fixed_point.OUTPUT_FRACTION_BITS))
    assert result.raster[0, :, 0].sum() == 0  # the hidden neuron never fires
    np.testing.assert_array_equal(result.membrane[0], [-hidden, output, -output])
    reference = simulate_reference(snn, np.zeros((1, 1), np.float32), 100, record=True)
    np.testing.assert_array_equal(result.membrane, reference.membrane)


def test_int32_values_are_grid_values_of_the_float_network():
    """The engine's integers are the network's (rounded) values counted in steps of their
    population's grid: the network reads 255 x, so the weights that read the input are the
    trained ones / 255 on the finer grid of the populations the input feeds."""
    rng = np.random.default_rng(2)
    net = Network((1, 4, 4), (Conv2d(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), None, 1, 1, "conv"), ReLU(),
                              Flatten(), Linear(rng.normal(size=(3, 32)).astype(np.float32), None, "out")))
    snn = build(net, SimulationConfig(arithmetic="int32", spikes="binary", shift="none"), path="csr")
    arrays = pack(snn)
    first = snn.stages[0].projections[0].synapses.weights
    fine = fixed_point.FRACTION_BITS
    np.testing.assert_array_equal(arrays.syn_w[:first.size], first * 2.0 ** fine)
    read = snn.stages[0].projections[0].layer.weight  # binary spikes, unit scales: the trained weights / 255
    np.testing.assert_allclose(read * 255, net.layers[0].weight, rtol=0, atol=255 * 2.0 ** -fine)
    assert set(np.unique(first)) <= set(np.unique(read))
    assert arrays.syn_w.dtype == np.int32 and arrays.v_init.dtype == np.int32
    np.testing.assert_array_equal(arrays.threshold, [2 ** fine, 2 ** fixed_point.OUTPUT_FRACTION_BITS])
    x = rng.integers(0, 256, (3, 1, 4, 4)).astype(np.float32) / 255  # 8-bit pixels: read exactly
    np.testing.assert_array_equal(fixed_point.quantized_input(x), np.round(x * 255))
    assert np.all(fixed_point.quantized_input(x) == (x * 255).round())


def test_int32_refusals():
    with pytest.raises(ValueError, match="int32 arithmetic needs a threshold"):
        SimulationConfig(arithmetic="int32", threshold=1e-6)
    with pytest.raises(ValueError, match="arithmetic must be one of"):
        SimulationConfig(arithmetic="int8")
    big = Network((2,), (Linear(np.array([[5000.0, 0.0], [0.0, 1.0]], np.float32), None, "fc"), ReLU(),
                         Linear(np.full((2, 2), 300.0, np.float32), None, "out")))
    with pytest.raises(ValueError, match="layer 'fc' has a value of 5000 .* weights that read the input "
                                         "magnitudes below 4080"):
        build(big, SimulationConfig(arithmetic="int32", spikes="binary"))
    with pytest.raises(ValueError, match="layer 'fc' has a value of 5000 .* int32 arithmetic represents magnitudes "
                                         "below 16"):  # Poisson spikes are not scaled
        build(big, SimulationConfig(arithmetic="int32", spikes="binary", input="poisson"))
    strong = Network((2,), (Linear(np.full((2, 2), 500.0, np.float32), None, "fc"), ReLU(),
                            Linear(np.ones((2, 2), np.float32), None, "out")))
    snn = build(strong, SimulationConfig(arithmetic="int32", spikes="binary"))
    simulate(snn, np.ones((1, 2), np.float32), 2)  # 1,000 thresholds fit in 2,048
    with pytest.raises(ValueError, match="could drive the first layer to 3000 thresholds"):
        simulate(snn, np.full((1, 2), 3.0, np.float32), 2)
    with pytest.raises(ValueError, match="could drive the first layer"):
        simulate_reference(snn, np.full((1, 2), 3.0, np.float32), 2)
    pooled = Network((1, 6, 6), (AvgPool2d(3, 3, name="pool"), Flatten(), Linear(np.ones((2, 4), np.float32), None, "out")))
    with pytest.raises(ValueError, match="divides by \\[9\\]"):
        build(pooled, SimulationConfig(arithmetic="int32", avg_pool="neurons"))
    halved = Network((1, 4, 4), (AvgPool2d(2, 2, name="pool"), Flatten(), Linear(np.ones((2, 4), np.float32), None, "out")))
    with pytest.raises(ValueError, match="'pool' reads the analog input"):
        build(halved, SimulationConfig(arithmetic="int32", avg_pool="neurons"))
    build(halved, SimulationConfig(arithmetic="int32", avg_pool="neurons", input="poisson"))  # 1/4 is exact


def one_step_against_the_exact_quantized_ann(net, x) -> int | None:
    """Asserts that a QCFS net's one int32 step decides as its quantized ANN computed exactly on
    the same grid (float64); returns the spikes emitted (None: the net's QCFS layers have several
    L, an average pooling stays a population, or int32 refuses it)."""
    if len({layer.levels for layer in net.layers if isinstance(layer, QCFS)}) != 1:
        return None
    model = convert(net, x, 99.9)
    config = model.config.updated(arithmetic="int32")
    try:
        result = simulate(model.build(path="direct", **config.__dict__), x, 1)
    except ValueError as err:
        if refused_by_int32(err):
            return None
        raise
    folded, _ = fold_avgpools(model.normalized(config.spike_levels))
    if any(isinstance(layer, AvgPool2d) for layer in folded.layers):
        return None  # a pooling the next layer cannot absorb keeps its own neurons, which quantize it again
    grid = fixed_point.quantized(folded, True, spiking_roles(folded))
    exact = ann.forward(grid, fixed_point.quantized_input(x), dtype=np.float64)
    assert exact.dtype == np.float64
    np.testing.assert_array_equal(result.predictions(), exact.argmax(axis=1))
    return int(result.spikes.sum())


QCFS_NETS = es.networks_and_inputs(dyadic=False, activations=("qcfs",), min_samples=2)


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=40, deadline=None)
@given(net_x=QCFS_NETS)
def test_a_qcfs_net_in_one_int32_step_decides_as_its_quantized_ann(net_x):
    """Bu et al.'s claim made exact: a QCFS net (any weights, max- and average pooling the next layer
    absorbs, residual adds) converted with its defaults (graded, levels = max_spikes = L, V(0) = threshold/2) decides
    in one int32 step as its quantized ANN does."""
    assume(one_step_against_the_exact_quantized_ann(*net_x) is not None)


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
def test_the_qcfs_nets_of_that_test_do_spike():
    """Guard against a vacuous test: in one step the drawn QCFS nets emit spikes."""
    total = sum(one_step_against_the_exact_quantized_ann(net, x) or 0 for net, x in es.fixed_sample(QCFS_NETS, 12))
    assert total > 20
