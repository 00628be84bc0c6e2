"""Layers without an activation of their own (MobileNetV2's linear bottleneck, an add no ReLU
follows, conv -> conv): split into positive and negative populations before building."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn import ann
from eventsnn.convert import spiking_roles
from eventsnn.rewrite import split_signed
from eventsnn.ir import Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU
from eventsnn.model import convert
from eventsnn.snn import build
from eventsnn.testing import strategies as es

from .test_concat import assert_rewrite_keeps_the_function
from .test_equivalence import assert_engine_equals_reference


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_splitting_signed_layers_keeps_the_function(data):
    net = data.draw(es.signed_networks(dyadic=False))
    x = data.draw(es.inputs(net, 1, 4, dyadic=False))
    split = split_signed(net)
    assert_rewrite_keeps_the_function(net, split, x)
    try:
        spiking_roles(net)
        signed = False
    except ValueError:  # a layer without an activation: only the split net is buildable
        signed = True
    assert signed == any(layer.name.endswith(".neg") for layer in split.layers)


@settings(max_examples=40, deadline=None)
@given(net=es.signed_networks(), config=es.simulation_configs(), seed=st.integers(0, 99), data=st.data())
def test_engine_equals_reference_on_signed_parts(net, config, seed, data):
    assert_engine_equals_reference(build(split_signed(net), config), data.draw(es.inputs(net)), 8, seed)


def test_the_converted_net_follows_its_ann():
    """With max-norm scales and enough steps the SNN of a net with signed layers decides as its ANN."""
    agree = []
    for net in es.fixed_sample(es.signed_networks(dyadic=False), 10):
        x = np.random.default_rng(0).random((32,) + net.input_shape, dtype=np.float32)
        model = convert(net, x, 100.0)
        from eventsnn import simulate

        decisions = simulate(model.build(), x, 64).decisions[:, -1]
        agree.append(np.mean(decisions == ann.forward(net, x).argmax(axis=1)))
    assert np.mean(agree) >= 0.8, agree


def test_a_max_pool_of_a_signed_value_is_refused():
    rng = np.random.default_rng(0)
    net = Network((1, 4, 4), (Conv2d(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), None, 1, 1, "c0"), ReLU("r"),
                              Conv2d(rng.normal(size=(2, 2, 1, 1)).astype(np.float32), None, 1, 0, "c1"),
                              MaxPool2d(2, 2, "pool"), Flatten("f"), Linear(np.ones((2, 8), np.float32), None, "fc")))
    with pytest.raises(ValueError, match="MaxPool2d 'pool' reads 'c1', which has no activation of its own"):
        split_signed(net)
