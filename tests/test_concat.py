"""Channel concatenation (Inception, SqueezeNet): resolved into per-part populations before building."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn import ann
from eventsnn.convert import spiking_roles
from eventsnn.rewrite import resolve_concats, split_signed
from eventsnn.ir import Channels, Concat, Conv2d, Flatten, Linear, Network, ReLU, Softmax
from eventsnn.model import convert
from eventsnn.snn import build
from eventsnn.spec import network_from_spec, network_to_spec
from eventsnn.testing import strategies as es

from .test_equivalence import assert_engine_equals_reference


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_resolving_concats_keeps_the_function(data):
    net = data.draw(es.concat_networks(dyadic=False))
    x = data.draw(es.inputs(net, 1, 4, dyadic=False))
    resolved = resolve_concats(net)
    assert not any(isinstance(layer, Concat) for layer in resolved.layers)
    assert_rewrite_keeps_the_function(net, resolved, x)


def assert_rewrite_keeps_the_function(original: Network, rewritten: Network, x: np.ndarray) -> None:
    """The rewritten net is buildable and computes the original's function (float32 rounding of the
    split sums allowed)."""
    spiking_roles(rewritten)
    expected = ann.forward(original, x).astype(np.float64)
    np.testing.assert_allclose(ann.forward(rewritten, x), expected, rtol=1e-4,
                               atol=1e-4 * (np.abs(expected).max() + 1e-6))


@settings(max_examples=40, deadline=None)
@given(net=es.concat_networks(), config=es.simulation_configs(), steps=st.sampled_from([8, 16]),
       seed=st.integers(0, 99), data=st.data())
def test_engine_equals_reference_on_concatenated_branches(net, config, steps, seed, data):
    x = data.draw(es.inputs(net))
    assert_engine_equals_reference(build(resolve_concats(net), config), x, steps, seed)


def test_each_part_keeps_its_own_scale():
    """Concatenated parts need no shared scale (unlike the branches of an add): each branch is
    normalized by its own activations."""
    for net in es.fixed_sample(es.concat_networks(dyadic=False), 30):
        x = np.random.default_rng(0).random((64,) + net.input_shape, dtype=np.float32)
        model = convert(net, x, 100.0)
        branch_scales = [s for layer, s in zip(model.ann.layers, model.scales)
                         if s is not None and layer.name.startswith("branch")]
        if len(set(branch_scales)) > 1:
            break
    else:
        pytest.fail("no drawn net had branches of different scales")
    np.testing.assert_allclose(ann.forward(model.ann, x), ann.forward(net, x), rtol=1e-5, atol=1e-5)


def test_spec_round_trip_and_refusals():
    rng = np.random.default_rng(0)
    conv = [Conv2d(rng.normal(size=(2, 1, 1, 1)).astype(np.float32), None, 1, 0, f"c{k}") for k in range(2)]
    net = Network((1, 3, 3), (conv[0], ReLU("r0"), conv[1], ReLU("r1"), Concat("cat"), Flatten("f"),
                              Linear(rng.normal(size=(2, 36)).astype(np.float32), None, "fc")),
                  ((-1,), (0,), (-1,), (2,), (1, 3), (4,), (5,)))
    spec, params = network_to_spec(net)
    assert spec["layers"][4] == {"type": "concat", "name": "cat", "inputs": ["r0", "r1"]}
    back = network_from_spec(spec, params)
    x = rng.random((3, 1, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(ann.forward(back, x), ann.forward(net, x))
    with pytest.raises(ValueError, match="concat 'cat' must be resolved first"):
        build(net)
    ends_in_concat = Network((1, 3, 3), net.layers[:5], net.inputs[:5])
    with pytest.raises(ValueError, match="output is a concatenation"):
        resolve_concats(ends_in_concat)
    vectors = Network((1, 3, 3), net.layers[:2] + (Flatten("f0"),) + net.layers[2:4] + (Flatten("f1"), Concat("cat"),
                                                                                         Softmax("s")),
                      ((-1,), (0,), (1,), (-1,), (3,), (4,), (2, 5), (6,)))
    with pytest.raises(ValueError, match="Softmax 's' reads concatenated or rearranged channels"):
        resolve_concats(vectors)


def test_pre_activation_batchnorm_after_a_concat_becomes_a_depthwise_layer():
    """DenseNet: concat -> batch-norm -> relu -> conv. The batch-norm reads no conv it could fold
    into; it becomes a depthwise 1x1 conv per concatenated part (a population of its own)."""
    from eventsnn import simulate
    from eventsnn.ir import BatchNorm, MaxPool2d

    rng = np.random.default_rng(0)

    def bn(name, c):
        return BatchNorm(rng.uniform(0.5, 2, c), rng.normal(size=c), rng.normal(size=c), rng.uniform(0.5, 2, c), 1e-5,
                         name)

    def conv(name, c_in, c_out):
        return Conv2d(rng.normal(size=(c_out, c_in, 3, 3)).astype(np.float32), rng.normal(size=c_out), 1, 1, name)

    layers = [conv("stem", 1, 3), ReLU("r0"), MaxPool2d(2, 2, "pool"),           # 0-2
              bn("norm1", 3), ReLU("r1"), conv("conv1", 3, 2),                    # 3-5: pre-activation after a pool
              Concat("cat"), bn("norm2", 5), ReLU("r2"), conv("conv2", 5, 4),     # 6-9: after a concat
              ReLU("r3"), Flatten("flat"), Linear(rng.normal(size=(3, 4 * 4 * 4)), None, "out")]
    inputs = [(-1,), (0,), (1,), (2,), (3,), (4,), (2, 5), (6,), (7,), (8,), (9,), (10,), (11,)]
    net = Network((1, 8, 8), tuple(layers), tuple(inputs))
    x = rng.random((16, 1, 8, 8), dtype=np.float32)
    model = convert(net, x)
    assert not any(isinstance(layer, BatchNorm) for layer in model.ann.layers)
    depthwise = [layer for layer in model.ann.layers if isinstance(layer, Conv2d) and layer.groups > 1]
    assert {layer.name.split(".")[0] for layer in depthwise} == {"norm1", "norm2"}
    assert_rewrite_keeps_the_function(net, model.ann, x)
    result = simulate(model.build(), x, 8)
    assert np.mean(result.predictions() == ann.forward(net, x).argmax(axis=1)) >= 0.75


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_resolving_splits_and_shuffles_keeps_the_function(data):
    """ShuffleNet's channel split and shuffle (``Channels``) routed into the parts' synapses."""
    net = data.draw(es.shuffle_networks(dyadic=False))
    x = data.draw(es.inputs(net, 1, 4, dyadic=False))
    resolved = resolve_concats(net)
    assert not any(isinstance(layer, (Concat, Channels)) for layer in resolved.layers)
    assert_rewrite_keeps_the_function(net, split_signed(resolved), x)


@settings(max_examples=25, deadline=None)
@given(net=es.shuffle_networks(), config=es.simulation_configs(), steps=st.sampled_from([8, 16]),
       seed=st.integers(0, 99), data=st.data())
def test_engine_equals_reference_on_split_and_shuffled_channels(net, config, steps, seed, data):
    x = data.draw(es.inputs(net))
    assert_engine_equals_reference(build(split_signed(resolve_concats(net)), config), x, steps, seed)


def test_channels_spec_round_trip_and_refusals():
    net = es.fixed_sample(es.shuffle_networks(dyadic=False), 1)[0]
    spec, params = network_to_spec(net)
    shuffle = next(entry for entry in spec["layers"] if entry["name"] == "shuffle")
    assert sorted(shuffle["index"]) == list(range(len(shuffle["index"])))
    back = network_from_spec(spec, params)
    x = np.random.default_rng(0).random((3,) + net.input_shape, dtype=np.float32)
    np.testing.assert_array_equal(ann.forward(back, x), ann.forward(net, x))
    with pytest.raises(ValueError, match="selects channels up to 5 of a"):
        Channels(np.array([5]), "too_far").output_shape((2, 3, 3))
    with pytest.raises(ValueError, match="non-negative integers"):
        Channels(np.array([-1]), "negative")
    with pytest.raises(Exception, match="'index' must list"):
        network_from_spec({**spec, "layers": [dict(e, index="all") if e["name"] == "shuffle" else e
                                              for e in spec["layers"]]}, params)
