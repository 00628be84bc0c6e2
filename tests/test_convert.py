"""Conversion passes: batch-norm folding, streaming percentiles, data-based normalization."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eventsnn import ann
from eventsnn.convert import NEGLIGIBLE, StreamingPercentile, compute_scales, fold_batchnorm, normalize, spiking_roles
from eventsnn.ir import Add, BatchNorm, ClipReLU, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, Softmax
from eventsnn.testing import strategies as es


@settings(max_examples=40, deadline=None)
@given(net=es.batchnorm_networks(), x=st.integers(0, 2**32 - 1).map(np.random.default_rng))
def test_folding_batchnorm_preserves_outputs(net, x):
    folded = fold_batchnorm(net)
    assert not any(isinstance(layer, BatchNorm) for layer in folded.layers)
    x = x.random((8,) + net.input_shape).astype(np.float32)
    expected = ann.forward(net, x).astype(np.float64)
    got = ann.forward(folded, x)
    scale = np.abs(expected).max() + 1e-6  # float32 rounding of the folded weights: a few 1e-5 where sums cancel
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=40, deadline=None)
@given(data=st.data(), percentile=st.sampled_from([50.0, 99.0, 99.9, 100.0]))
def test_normalization_scales_outputs_by_the_last_lambda(data, percentile):
    net = data.draw(es.chain_networks(softmax=False, dyadic=False))
    x = data.draw(es.inputs(net, 32, 32, dyadic=False, zeros=0))
    scales = compute_scales(net, x, percentile, batch_size=7)
    normalized = normalize(net, scales)
    last = [s for s in scales if s is not None][-1]
    expected = ann.forward(net, x).astype(np.float64)
    np.testing.assert_allclose(ann.forward(normalized, x) * last, expected, rtol=1e-4,
                               atol=1e-4 * (np.abs(expected).max() + 1e-6))


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_normalized_hidden_activations_are_at_most_one_under_max_norm(data):
    """Max-norm (percentile 100): on the calibration data every hidden layer peaks at exactly 1
    (or stays at 0 where it never activates)."""
    net = data.draw(es.chain_networks(softmax=False, dyadic=False, max_dense=2))
    x = data.draw(es.inputs(net, 16, 16, dyadic=False, zeros=0))
    normalized = normalize(net, compute_scales(net, x, 100.0))
    original = dict(ann.activations(net, x))
    magnitudes = dict(ann.activations(_absolute(normalized), np.abs(x)))  # float32 rounding grows with these
    for i, out in ann.activations(normalized, x):
        if isinstance(normalized.layers[i], ReLU):
            if original[i].max() >= NEGLIGIBLE:  # active: max-norm divides by exactly this peak
                tolerance = 1e-5 + 1e-5 * float(magnitudes[i].max())
                np.testing.assert_allclose(out.max(), 1, atol=tolerance, err_msg=normalized.layers[i].name)
            else:  # (next to) never active on these images: scale 1 (warned), and it stays (next to) silent
                assert out.max() < NEGLIGIBLE, normalized.layers[i].name


@settings(max_examples=60, deadline=None)
@given(values=arrays(np.float32, st.integers(1, 400), elements=st.floats(-2, 10, width=32)),
       percentile=st.floats(0.5, 100), chunk=st.integers(1, 50))
def test_streaming_percentile_equals_numpy(values, percentile, chunk):
    stream = StreamingPercentile(percentile, values.size)
    for start in range(0, values.size, chunk):
        stream.add(values[start:start + chunk])
    positive = values[values > 0]
    if positive.size == 0:
        assert stream.value() is None
    else:
        assert stream.value() == pytest.approx(float(np.percentile(positive.astype(np.float64), percentile)), rel=1e-6)
        assert stream.kept.size <= stream.capacity


def test_streaming_percentile_keeps_only_the_tail():
    rng = np.random.default_rng(0)
    stream = StreamingPercentile(99.9, 1_000_000)
    for _ in range(10):
        stream.add(rng.random(100_000).astype(np.float32))
    assert stream.kept.size <= 1001
    assert stream.value() == pytest.approx(0.999, abs=1e-3)


def test_clip_relu_layers_use_their_threshold_or_the_data_below_it():
    """clip='threshold': the threshold is the scale (Deng & Gu). clip='data' (the default): the
    percentile of the clipped output, which is the threshold where the data reach it and below it
    where they do not (ReLU6 in a MobileNet)."""
    rng = np.random.default_rng(0)
    net = Network((4,), (Linear(rng.normal(size=(6, 4)), None, "a"), ClipReLU(2.5), Linear(rng.normal(size=(3, 6)), None, "b"), Softmax()))
    x = rng.random((10, 4))
    scales = compute_scales(net, x, 99.9, clip="threshold")
    assert scales[0] == 2.5
    assert isinstance(normalize(net, scales).layers[1], ClipReLU) and normalize(net, scales).layers[1].threshold == 1.0
    below = compute_scales(net, x, 100.0)[0]
    assert below == pytest.approx(min(2.5, float(ann.forward(Network((4,), net.layers[:2]), x).max())))
    assert below < 2.5  # these data never reach the threshold
    reaching = compute_scales(net, x * 100, 100.0)[0]
    assert reaching == 2.5


@pytest.mark.parametrize("layers, message", [
    ((Linear(np.ones((2, 4)), name="a"), Linear(np.ones((2, 2)), name="b")), "has no activation of its own"),
    ((MaxPool2d(2), Flatten(), Linear(np.ones((2, 4)), name="a")), None),
    ((ReLU(), Flatten(), Linear(np.ones((2, 16)), name="a")), "must directly follow"),
])
def test_unconvertible_networks_are_refused(layers, message):
    net = Network((1, 4, 4) if not isinstance(layers[0], Linear) else (4,), layers)
    if message is None:
        spiking_roles(net)  # a network that starts with a pool is a valid ANN; the SNN builder refuses it
        from eventsnn.snn import build

        with pytest.raises(ValueError, match="must start with"):
            build(net)
    else:
        with pytest.raises(ValueError, match=message):
            spiking_roles(net)


def test_batchnorm_after_relu_cannot_be_folded():
    net = Network((3,), (Linear(np.ones((2, 3)), name="a"), ReLU(), BatchNorm(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))))
    with pytest.raises(ValueError, match="cannot be folded"):
        fold_batchnorm(net)


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(residual=True, dyadic=False, min_samples=16, max_samples=16),
       percentile=st.sampled_from([99.0, 100.0]))
def test_residual_normalization_scales_outputs_by_the_last_lambda(net_x, percentile):
    """Branches meeting at an add share one scale; the identity branch is reweighted."""
    net, x = net_x
    scales = compute_scales(net, x, percentile)
    add = [layer.name for layer in net.layers].index("add")
    branches = net.inputs[add]
    for j in branches:
        if j >= 0 and isinstance(net.layers[j], Conv2d):
            assert scales[j] == scales[add]
    normalized = normalize(net, scales)
    expected = ann.forward(net, x).astype(np.float64)
    np.testing.assert_allclose(ann.forward(normalized, x) * scales[-1], expected, rtol=1e-4,
                               atol=1e-4 * (np.abs(expected).max() + 1e-6))


def _residual(*extra_layers, inputs) -> Network:
    layers = (Linear(np.eye(3), None, "a"), ReLU("ra"), Linear(np.eye(3), None, "b")) + extra_layers
    return Network((3,), layers, inputs)


@pytest.mark.parametrize("net, message", [
    (lambda: _residual(Add("add"), Linear(np.ones((2, 3)), None, "out"), inputs=((-1,), (0,), (1,), (2, 1), (3,))),
     "add 'add' must be read only by a relu"),
    (lambda: _residual(Add("add"), ReLU("r"), Linear(np.ones((2, 3)), None, "out"),
                       inputs=((-1,), (0,), (1,), (2, 0), (3,), (4,))), "'a' has no activation of its own"),
])
def test_unconvertible_residual_networks_are_refused(net, message):
    with pytest.raises(ValueError, match=message):
        spiking_roles(net())


@pytest.mark.parametrize("inputs, message", [
    (((-1,), (0,), (1,), (2, 1), (3,), (2,)), "only an add may have several inputs|feed nothing"),
    (((-1,), (0,), (1,), (2, 5), (3,), (4,)), "must be distinct earlier layers"),
    (((-1,), (0,), (1,), (2,), (3,), (4,)), "needs at least two inputs"),
])
def test_malformed_graphs_are_refused(inputs, message):
    with pytest.raises(ValueError, match=message):
        _residual(Add("add"), ReLU("r"), Linear(np.ones((2, 3)), None, "out"), inputs=inputs)


def test_batchnorm_shared_by_two_readers_cannot_be_folded():
    bn = BatchNorm(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), name="bn")
    net = Network((3,), (Linear(np.eye(3), None, "a"), ReLU("r"), bn, Add("add"), ReLU("r2"),
                         Linear(np.ones((2, 3)), None, "out")), ((-1,), (0,), (1,), (1, 2), (3,), (4,)))
    with pytest.raises(ValueError, match="batch-norm 'bn' after 'r' cannot be folded"):
        fold_batchnorm(net)


@pytest.mark.parametrize("weight, message", [(np.ones((2, 3)) * (1 + 1j), "real numbers"),
                                             (np.full((2, 3), 1e40), "beyond float32's range"),
                                             (np.zeros((0, 3)), "empty"),
                                             (np.array([["a", "b", "c"]] * 2), "real numbers")])
def test_weights_that_float32_cannot_hold_are_refused(weight, message):
    """Regression: complex weights lost their imaginary part, huge ones became inf, empty layers passed."""
    with pytest.raises(ValueError, match=message):
        Linear(weight)


def test_thresholds_beyond_float32_are_refused():
    from eventsnn.snn import SimulationConfig

    for make in (lambda t: ClipReLU(t), lambda t: SimulationConfig(threshold=t)):
        with pytest.raises(ValueError, match="float32"):
            make(1e39)
        with pytest.raises(ValueError, match="float32"):
            make(float("nan"))


def test_a_scale_that_overflows_is_an_error_not_a_nan_model():
    """Regression: `convert` wrote a model with a NaN scale and exited 0."""
    net = Network((3,), (Linear(np.full((4, 3), 3e38, np.float32), None, "big"), ReLU(), Linear(np.ones((2, 4)), None, "out")))
    with pytest.raises(ValueError, match="'big'.*scale"):
        compute_scales(net, np.ones((4, 3), np.float32))


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_channel_wise_scales_keep_the_function_and_peak_at_one_per_channel(data):
    """per='channel': every hidden channel's activation peaks at 1 under max-norm (or stays 0), and
    the normalized net computes the original function divided by the output's single lambda (chains and
    residual nets; a channel whose activations are negligible keeps scale 1)."""
    net = data.draw(es.chain_networks(softmax=False, dyadic=False, max_dense=2)
                    | es.residual_networks(dyadic=False, pools=("avgpool",)))
    x = data.draw(es.inputs(net, 16, 16, dyadic=False, zeros=0))
    scales = compute_scales(net, x, 100.0, per="channel")
    normalized = normalize(net, scales)
    expected = ann.forward(net, x).astype(np.float64)
    np.testing.assert_allclose(ann.forward(normalized, x) * scales[-1], expected, rtol=1e-4,
                               atol=1e-4 * (np.abs(expected).max() + 1e-6))
    # a channel's float32 sum may cancel terms much larger than its result (hypothesis found 386 - 406 + 20.9
    # peaking at 0.99996): allow rounding in proportion to the sum of the terms' magnitudes
    magnitudes = dict(ann.activations(_absolute(normalized), np.abs(x)))
    for i, out in ann.activations(normalized, x):
        if isinstance(normalized.layers[i], ReLU):
            peaks = out.reshape(len(out), out.shape[1], -1).max(axis=(0, 2))
            terms = magnitudes[i].reshape(len(out), out.shape[1], -1).max(axis=(0, 2))
            tolerance = 1e-5 + 1e-5 * terms
            assert np.all((np.abs(peaks - 1) <= tolerance) | (peaks < NEGLIGIBLE)), normalized.layers[i].name


def _absolute(net: Network) -> Network:
    """The net with every weight, bias and add weight replaced by its magnitude."""
    from eventsnn.convert import with_params

    layers = [with_params(layer, np.abs(layer.weight), None if layer.bias is None else np.abs(layer.bias))
              if isinstance(layer, (Conv2d, Linear))
              else Add(layer.name, tuple(np.abs(w) for w in layer.weights)) if isinstance(layer, Add) and layer.weights
              else layer for layer in net.layers]
    return net.replace_layers(layers)


def test_channel_wise_scales_round_trip(tmp_path, demo):
    """A chain and a residual net with channel-wise scales: saved and loaded, the same normalized
    weights (the residual net's identity branches get one add weight per channel)."""
    from eventsnn.loaders import load_network
    from eventsnn.model import convert, load, save
    from tests.test_residual_mnist import MODELS

    residual = load_network(MODELS / "mnist_resnet.pt", MODELS / "mnist_resnet.json")
    for net in (demo.net, residual):
        model = convert(net, demo.x_calib[:200], scale_per="channel")
        assert np.ndim(model.scales[0]) == 1 and np.ndim(model.scales[-1]) == 0  # hidden per channel, output one
        save(model, tmp_path / "m.npz")
        again = load(tmp_path / "m.npz")
        for a, b in zip(model.normalized().layers, again.normalized().layers):
            if hasattr(a, "weight"):
                np.testing.assert_array_equal(a.weight, b.weight)
            if isinstance(a, Add):
                assert a.weights == b.weights
    adds = [layer for layer in model.normalized().layers if isinstance(layer, Add)]
    assert any(np.ndim(w) == 1 for add in adds for w in add.weights)  # the identity shortcut's


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=30, deadline=None)
@given(data=st.data(), levels=st.sampled_from([1, 2, 4, 8]))
def test_a_model_normalizes_once_into_spike_units(data, levels):
    """ConvertedModel.build normalizes once with the levels folded into the scales; that equals
    normalizing to layer units and building with the levels (two passes), bit for bit, calibrated
    bias shifts included (they are in layer units and scale with the levels too)."""
    from eventsnn.engine import simulate
    from eventsnn.model import convert
    from eventsnn.snn import SimulationConfig, build

    net, x = data.draw(es.networks_and_inputs(dyadic=False))
    model = convert(net, x, 99.0, SimulationConfig(spikes="graded", levels=levels, max_spikes=levels))
    layer = next(layer for layer in model.ann.layers if isinstance(layer, (Conv2d, Linear)))
    channels = layer.weight.shape[0]
    shift = data.draw(arrays(np.float32, channels, elements=st.floats(-0.5, 0.5, width=32)))
    model = model.__class__(model.ann, model.scales, model.percentile, model.config, {layer.name: shift})
    once, twice = model.build(), build(model.normalized(), model.config)
    a, b = (simulate(snn, x, 3, record=True) for snn in (once, twice))
    np.testing.assert_array_equal(a.raster, b.raster)
    np.testing.assert_array_equal(a.membrane, b.membrane)
