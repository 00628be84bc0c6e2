"""Average pooling absorbed into the next layer's synapses: the same function, no re-quantization."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventsnn import ann, simulate
from eventsnn.convert import output_layer
from eventsnn.ir import QCFS, AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from eventsnn.model import convert
from eventsnn.rewrite import fold_avgpools
from eventsnn.snn import IF, SimulationConfig, build
from eventsnn.testing import strategies as es

from .test_concat import assert_rewrite_keeps_the_function


@settings(max_examples=60, deadline=None)
@given(net=es.networks(dyadic=False, pools=("avgpool", "maxpool")), data=st.data())
def test_folding_average_pools_keeps_the_function(net, data):
    x = data.draw(es.inputs(net, 1, 4, dyadic=False))
    folded, absorbed = fold_avgpools(net)
    kept = {layer.name for layer in folded.layers if isinstance(layer, AvgPool2d)}
    assert kept.isdisjoint(absorbed.values())
    assert len(kept) + len(absorbed) >= sum(isinstance(layer, AvgPool2d) for layer in net.layers) - 1  # one head
    assert_rewrite_keeps_the_function(net, folded, x)


def _conv(name: str, c_in: int, c_out: int, padding: int = 1) -> Conv2d:
    rng = np.random.default_rng(len(name))
    return Conv2d(rng.normal(size=(c_out, c_in, 3, 3)).astype(np.float32), np.zeros(c_out, np.float32), 1, padding,
                  name)


def _vgg_block(pool: AvgPool2d, size: int = 8, padding: int = 1) -> Network:
    conv2 = _conv("conv2", 4, 5, padding)
    shape = conv2.output_shape(pool.output_shape((4, size, size)))
    fc = Linear(np.ones((3, int(np.prod(shape))), np.float32), None, "fc")
    return Network((2, size, size), (_conv("conv1", 2, 4), ReLU("r1"), pool, conv2, ReLU("r2"), Flatten("f"), fc))


def test_a_vgg_pooling_becomes_a_strided_conv_of_the_pooled_kernel():
    net = _vgg_block(AvgPool2d(2, 2, "pool"))
    folded, absorbed = fold_avgpools(net)
    assert absorbed == {"conv2": "pool"}
    conv = folded.layers[2]
    assert conv.weight.shape[2:] == (6, 6) and (conv.stride, conv.padding) == (2, 2)
    # each tap of the 3x3 kernel spreads over a 2x2 block at a quarter of its weight
    np.testing.assert_allclose(conv.weight[:, :, ::2, ::2], net.layers[3].weight / 4, rtol=1e-6)
    np.testing.assert_allclose(conv.weight[:, :, 1::2, 1::2], net.layers[3].weight / 4, rtol=1e-6)


@pytest.mark.parametrize("pool, size, why", [
    (AvgPool2d(3, 2, "pool"), 9, "overlapping windows would reach the conv's padding"),
    (AvgPool2d(2, 2, "pool"), 9, "the last input row is in no window but under the padding"),
    (AvgPool2d(2, 2, "pool", padding=1, count_include_pad=False), 8, "divisors differ at the edges"),
])
def test_poolings_that_cannot_be_absorbed_exactly_stay(pool, size, why):
    net = _vgg_block(pool, size)
    folded, absorbed = fold_avgpools(net)
    assert "conv2" not in absorbed, why
    assert any(isinstance(layer, AvgPool2d) for layer in folded.layers)
    x = np.random.default_rng(0).random((3,) + net.input_shape, dtype=np.float32)
    assert_rewrite_keeps_the_function(net, folded, x)
    unpadded, absorbed = fold_avgpools(_vgg_block(pool, size, padding=0))  # without the conv's padding it is exact
    assert absorbed == {"conv2": "pool"} or pool.padding, why
    assert_rewrite_keeps_the_function(_vgg_block(pool, size, padding=0), unpadded, x)


def test_folded_poolings_leave_no_population_and_keep_the_anns_macs():
    net = _vgg_block(AvgPool2d(2, 2, "pool"))
    folded_snn, own_snn = build(net), build(net, SimulationConfig(avg_pool="neurons"))
    assert [s.name for s in own_snn.stages] == ["conv1", "pool", "conv2", "fc"]
    assert [s.name for s in folded_snn.stages] == ["conv1", "conv2", "fc"]
    assert sum(s.macs for s in folded_snn.stages) == sum(s.macs for s in own_snn.stages) == sum(ann.macs(net))


def _single_level(net: Network, levels: int) -> Network:
    """The net with every QCFS layer at ``levels`` levels."""
    return net.replace_layers([dataclasses.replace(layer, levels=levels) if isinstance(layer, QCFS) else layer
                               for layer in net.layers])


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
@settings(max_examples=60, deadline=None)
@given(net=es.networks(activations=("qcfs",), pool_options=False), levels=st.sampled_from([1, 2, 4, 8]),
       data=st.data())
def test_a_qcfs_net_in_one_graded_step_is_its_quantized_ann(net, levels, data):
    """Bu et al.: with its thresholds as scales, V(0) = threshold/2 and graded events of up to L
    spikes worth 1/L of the scale, one step reproduces every QCFS layer of the ANN exactly, average
    poolings, max-pools and residual adds included (dyadic weights: exact arithmetic)."""
    net = _single_level(net, levels)
    assume(any(isinstance(layer, QCFS) for layer in net.layers))
    assume(all(isinstance(layer, AvgPool2d) is False for layer in fold_avgpools(net)[0].layers))  # all absorbed
    x = data.draw(es.inputs(net, 1, 4))
    model = convert(net, x, 100.0)
    out = output_layer(model.ann)
    scales = model.scales[:out] + (1.0,) + model.scales[out + 1:]
    model = dataclasses.replace(model, scales=scales)  # dyadic output weights: exact membranes
    assert (model.config.spikes, model.config.levels, model.config.max_spikes) == ("graded", levels, levels)
    snn = model.build()
    result = simulate(snn, x, 1, count_neurons=True)
    offsets = np.concatenate([[0], np.cumsum([s.size for s in snn.stages])])
    quantized = dict(ann.activations(model.ann, x))
    layers = [layer.name for layer in model.ann.layers]
    checked = 0
    for s, stage in enumerate(snn.stages):
        i = layers.index(stage.name)
        if stage.kind != IF or isinstance(model.ann.layers[i], AvgPool2d):
            continue
        activation = model.ann.consumers(i)[0]
        expected = quantized[activation].reshape(len(x), -1) * levels / model.ann.layers[activation].threshold
        np.testing.assert_array_equal(result.neuron_counts[:, offsets[s]:offsets[s + 1]], expected)
        checked += 1
    assert checked == sum(isinstance(layer, QCFS) for layer in model.ann.layers)
    # the output layer integrates the same currents as the ANN's last layer (V(0) = threshold / 2)
    normalized = model.normalized(levels)
    logits = dict(ann.activations(normalized, x))[out].reshape(len(x), -1)
    np.testing.assert_array_equal(result.output_membrane - np.float32(snn.config.threshold / 2), logits)
