"""The first layer's rate approximation (Rueckauer et al. eq. 6) and the max-pool gate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eventsnn.engine import simulate
from eventsnn import ann
from eventsnn.ir import QCFS, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU
from eventsnn.model import convert
from eventsnn.spec import network_from_spec, network_to_spec
from eventsnn.snn import SimulationConfig, build



def identity_first_layer(n: int) -> Network:
    """Hidden layer z = x (identity weights, no bias), then a readout."""
    return Network((n,), (Linear(np.eye(n), None, "hidden"), ReLU(), Linear(np.ones((2, n)), None, "out")))


@settings(max_examples=40, deadline=None)
@given(a=arrays(np.float32, st.integers(1, 12), elements=st.floats(0, 1, width=32)), steps=st.integers(1, 300))
def test_first_layer_rate_with_reset_by_subtraction(a, steps):
    """Constant input z = a: V(T) = T*z - N(T)*tau and |N(T)/T - a| <= 1/T."""
    snn = build(identity_first_layer(a.size), SimulationConfig(reset="subtract", input="analog", spikes="binary", shift="none"))
    result = simulate(snn, a[None], steps, record=True)
    n_spikes = result.raster[0, :, :a.size].sum(axis=0).astype(np.float64)
    v = result.membrane[0, :a.size].astype(np.float64)
    z = a.astype(np.float64)
    np.testing.assert_allclose(v, steps * z - n_spikes * 1.0, atol=2e-6 * steps + 1e-6)
    assert np.all(np.abs(n_spikes / steps - z) <= 1.0 / steps + 1e-6)


def test_reset_to_zero_loses_the_residual():
    """Reset to zero discards the overshoot (eq. 5): z = 0.4 fires every 3rd step, rate 1/3 < 0.4."""
    snn = build(identity_first_layer(1), SimulationConfig(reset="zero", spikes="binary", shift="none"))
    result = simulate(snn, np.array([[0.4]], np.float32), 300, record=True)
    assert result.raster[0, :, 0].sum() == 100


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), decay=st.sampled_from([1.0, 0.9, 0.5]), stride=st.sampled_from([1, 2]))
def test_maxpool_gate_tracks_the_highest_rate_input(seed, decay, stride):
    """A window spikes when an input spiking now has a rate estimate above the window's own; with
    spike counts (decay 1) its output count equals the largest input count at every step."""
    rng = np.random.default_rng(seed)
    channels, size = 2, 6
    conv = Conv2d(rng.integers(0, 65, (channels, 1, 3, 3)) / 256, rng.integers(0, 9, channels) / 64, 1, 1, "conv")
    pool = MaxPool2d(2, stride, "pool")
    out = pool.output_shape((channels, size, size))[1]
    net = Network((1, size, size), (conv, ReLU(), pool, Flatten(), Linear(rng.integers(-64, 65, (3, channels * out ** 2)) / 64, None, "out")))
    snn = build(net, SimulationConfig(maxpool_decay=decay, spikes="binary"))
    x = rng.random((2, 1, size, size)).astype(np.float32)
    steps = 40
    result = simulate(snn, x, steps, record=True)
    n_conv = snn.stages[0].size
    conv_spikes = result.raster[:, :, :n_conv].reshape(2, steps, channels, size, size).astype(np.float64)
    pool_spikes = result.raster[:, :, n_conv:n_conv + snn.stages[1].size].reshape(2, steps, channels, out, out)
    est_in, est_out = np.zeros((2, channels, size, size)), np.zeros((2, channels, out, out))
    for t in range(steps):
        est_in = est_in * decay + conv_spikes[:, t]
        est_out *= decay
        for oy in range(out):
            for ox in range(out):
                window = np.s_[:, :, oy * stride:oy * stride + 2, ox * stride:ox * stride + 2]
                spiking_above = (conv_spikes[:, t][window] > 0) & (est_in[window] > est_out[:, :, oy, ox, None, None])
                np.testing.assert_array_equal(pool_spikes[:, t, :, oy, ox], spiking_above.any(axis=(2, 3)))
                if decay == 1.0:  # counts: the window has passed exactly the largest input count
                    np.testing.assert_array_equal(pool_spikes[:, :t + 1, :, oy, ox].sum(axis=1),
                                                  conv_spikes[:, :t + 1].sum(axis=1)[window].max(axis=(2, 3)))
        est_out += pool_spikes[:, t]
    assert pool_spikes.sum() > 0


@settings(max_examples=60, deadline=None)
@given(a=arrays(np.float32, st.integers(1, 12), elements=st.floats(0, 2, width=32)), levels=st.sampled_from([1, 2, 4, 8]),
       extra=st.integers(0, 3), steps=st.integers(1, 40))
def test_graded_first_layer_resolves_one_over_levels_per_step(a, levels, extra, steps):
    """Graded spikes, reset by subtraction, V(0) = threshold/2, scale / levels: after T steps a constant
    input z gives N(T) = min(floor(T z L + 1/2), T K) spikes, each worth 1/L: the rate is z
    rounded to the nearest 1/(T L), clipped at K/L (T = 1, K = L: the QCFS quantizer)."""
    max_spikes = levels + extra
    config = SimulationConfig(spikes="graded", max_spikes=max_spikes, levels=levels, shift="membrane")
    result = simulate(build(identity_first_layer(a.size), config), a[None], steps, record=True)
    n_spikes = result.raster[0, :, :a.size].sum(axis=0).astype(np.int64)
    drive = (a * np.float32(levels)).astype(np.float64)  # exact: levels is a power of two
    expected = np.minimum(np.floor(steps * drive + 0.5), steps * max_spikes)
    # float32 accumulation may round at an exact .5 boundary: allow one spike there, nowhere else
    boundary = np.isclose((steps * drive + 0.5) % 1, 0, atol=1e-4) | np.isclose((steps * drive + 0.5) % 1, 1, atol=1e-4)
    assert np.all((n_spikes == expected) | (boundary & (np.abs(n_spikes - expected) <= 1))), (n_spikes, expected)
    assert np.all(result.raster[0, :, :a.size] <= max_spikes)


def test_levels_need_graded_spikes_that_can_carry_them():
    assert SimulationConfig(spikes="binary", levels=4).spike_levels == 1  # levels only apply to graded spikes
    with pytest.raises(ValueError, match="max_spikes >= levels"):
        SimulationConfig(spikes="graded", max_spikes=2, levels=4)
    with pytest.raises(ValueError, match="max_spikes"):
        SimulationConfig(spikes="graded", max_spikes=0)


@pytest.mark.filterwarnings("ignore:layer 'out' had no positive activation")
@settings(max_examples=60, deadline=None)
@given(data=st.data(), levels=st.sampled_from([1, 2, 4, 8, 16]), threshold=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
       graded=st.booleans())
def test_a_qcfs_layer_converts_exactly(data, levels, threshold, graded):
    """Bu et al.: a QCFS layer (L levels, threshold lambda) converted with scale lambda and V(0) =
    threshold/2 emits, for a constant input, exactly L h(x) / lambda spikes: over T = L steps with
    binary spikes, or in one step with graded spikes and L levels."""
    n = data.draw(st.integers(1, 10))
    x = np.array(data.draw(st.lists(st.integers(0, int(3 * threshold * 64)), min_size=n, max_size=n)),
                 np.float32)[None] / 64  # dyadic: exact in float32
    net = Network((n,), (Linear(np.eye(n), None, "hidden"), QCFS(levels, threshold, "q"),
                         Linear(np.ones((2, n)), None, "out")))
    model = convert(net, x, 99.9)
    assert model.scales[0] == threshold  # the trained threshold is the scale
    config = (dict(spikes="graded", levels=levels, max_spikes=levels) if graded else dict(spikes="binary"))
    steps = 1 if graded else levels
    result = simulate(model.build(shift="membrane", **config), x, steps, record=True)
    spikes = result.raster[0, :, :n].sum(axis=0)
    quantized = ann.layer_forward(QCFS(levels, threshold), x)[0]
    np.testing.assert_array_equal(spikes, np.round(quantized * levels / threshold))
    np.testing.assert_array_equal(spikes, np.clip(np.floor(x[0] * levels / threshold + 0.5), 0, levels))


def test_qcfs_spec_round_trip_and_refusals():
    net = Network((4,), (Linear(np.eye(4), None, "fc"), QCFS(8, 1.5, "q"), Linear(np.ones((2, 4)), None, "out")))
    spec, params = network_to_spec(net)
    assert spec["layers"][1] == {"type": "qcfs", "name": "q", "levels": 8, "threshold": 1.5}
    assert network_from_spec(spec, params).layers[1] == QCFS(8, 1.5, "q")
    with pytest.raises(ValueError, match="levels"):
        QCFS(0, 1.0)
    with pytest.raises(ValueError, match="threshold"):
        QCFS(4, -1.0)
