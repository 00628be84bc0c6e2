"""eventsnn.testing: its strategies draw only valid networks and shrink well, and each of its
checks passes on correct simulations and fails, with a readable message, on a planted bug."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from eventsnn import ann
from eventsnn.engine import simulate
from eventsnn.ir import Conv2d, Linear
from eventsnn.model import convert
from eventsnn.reference import simulate_reference
from eventsnn.snn import SimulationConfig, build
from eventsnn.spec import network_from_spec
from eventsnn.testing import (assert_conversion_bounds, assert_matches_ann, assert_same_spikes,
                              compare_with_nir_simulator, spike_trains)
from eventsnn.testing import checks
from eventsnn.testing import strategies as es

BINARY = SimulationConfig(spikes="binary", shift="none")


def with_settings(snn, **changes):
    """The same populations simulated with other settings: how the planted bugs below are made."""
    return dataclasses.replace(snn, config=dataclasses.replace(snn.config, **changes))


@settings(max_examples=40, deadline=None)
@given(net_x=es.networks_and_inputs(activations=es.ACTIVATION_KINDS), config=es.simulation_configs())
def test_every_drawn_network_builds_converts_and_simulates(net_x, config):
    net, x = net_x
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and x.shape[1:] == net.input_shape
    model = convert(net, x, percentile=100.0, config=config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # layers that never activate on a tiny batch
        result = simulate(model.build(), x, 4)
    assert result.decisions.shape == (len(x), 4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec_params=es.specs_and_state_dicts())
def test_specs_and_state_dicts_describe_the_same_network(spec_params, tmp_path_factory):
    """What a user's loader sees: the spec and an npz state_dict load back to a network that
    computes what the drawn one does."""
    from eventsnn.loaders import load_network

    spec, params = spec_params
    path = tmp_path_factory.mktemp("ckpt") / "net.npz"
    np.savez(path, **params)
    arch = path.with_suffix(".json")
    arch.write_text(json.dumps(spec))
    loaded, direct = load_network(path, arch), network_from_spec(spec, params)
    x = np.random.default_rng(0).random((3,) + direct.input_shape).astype(np.float32)
    np.testing.assert_array_equal(ann.forward(loaded, x), ann.forward(direct, x))


@pytest.mark.parametrize("residual", [False, None])
def test_a_failing_example_shrinks_to_a_small_readable_net(residual):
    """A planted bug (reset to zero where subtraction was meant) is found and shrunk to a
    readable counterexample: one input sample, at most two non-zero parameters, and among chains
    a net of one hidden and one output layer."""
    def differs(net_x):
        net, x = net_x
        snn = build(net, BINARY)
        return not np.array_equal(simulate(snn, x, 8, record=True).raster,
                                  simulate(with_settings(snn, reset="zero"), x, 8, record=True).raster)

    net, x = find(es.networks_and_inputs(residual=residual), differs,
                  settings=settings(max_examples=500, deadline=None, database=None, derandomize=True))
    affine = [layer for layer in net.layers if isinstance(layer, (Conv2d, Linear))]
    assert x.shape[0] == 1
    assert sum(np.count_nonzero(layer.weight) + np.count_nonzero(layer.bias) for layer in affine) <= 2
    if residual is False:
        assert len(affine) <= 2


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(), config=es.simulation_configs())
def test_assert_same_spikes_passes_on_engine_and_reference(net_x, config):
    net, x = net_x
    snn = build(net, config)
    assert_same_spikes(simulate(snn, x, 8, record=True, seed=3), simulate_reference(snn, x, 8, record=True, seed=3), snn)


def test_assert_same_spikes_names_the_first_difference():
    rng = np.random.default_rng(0)
    net = build(network_with_a_hidden_layer(rng), BINARY)
    x = rng.random((2, 6)).astype(np.float32)
    good = simulate(net, x, 12, record=True)
    bad = simulate(with_settings(net, reset="zero"), x, 12, record=True)
    with pytest.raises(AssertionError) as caught:
        assert_same_spikes(good, bad, net, labels=("subtract", "zero"))
    message = str(caught.value)
    step = int(re.search(r"step (\d+)", message).group(1))
    trains_good, trains_bad = spike_trains(good, net), spike_trains(bad, net)
    first = min(np.argwhere(trains_good[name] != trains_bad[name])[:, 1].min(initial=99)
                for name in trains_good)
    assert step == first + 1 and "layer 'hidden'" in message and "subtract" in message


def test_assert_same_spikes_compares_readouts_too():
    rng = np.random.default_rng(1)
    net = build(network_with_a_hidden_layer(rng), BINARY)
    x = rng.random((2, 6)).astype(np.float32)
    a, b = simulate(net, x, 6, record=True), simulate(net, x, 6, record=True)
    b.membrane[0, 0] += 0.25
    with pytest.raises(AssertionError, match="final membrane potentials differ"):
        assert_same_spikes(a, b)
    assert_same_spikes(a, b, membrane=False)
    with pytest.raises(ValueError, match="record=True"):
        assert_same_spikes(simulate(net, x, 6), b)


def network_with_a_hidden_layer(rng):
    from eventsnn.ir import Network, ReLU

    return Network((6,), (Linear(rng.uniform(-0.2, 0.6, (5, 6)), rng.uniform(0, 0.2, 5), "hidden"), ReLU(),
                          Linear(rng.uniform(-1, 1, (3, 5)), None, "out")))


@settings(max_examples=40, deadline=None)
@given(net_x=es.networks_and_inputs(), config=es.simulation_configs(resets=["subtract"], input_modes=["analog"]),
       steps=st.sampled_from([1, 2, 8, 16]))  # powers of two: the bias shift tau/2T is exact too
def test_conversion_bounds_hold_exactly_on_dyadic_networks(net_x, config, steps):
    net, x = net_x
    assert_conversion_bounds(build(net, config), x, steps, atol=0)


@settings(max_examples=20, deadline=None)
@given(net_x=es.networks_and_inputs(dyadic=False), config=es.simulation_configs(resets=["subtract"],
                                                                                   input_modes=["analog"]))
def test_conversion_bounds_hold_within_rounding_on_any_floats(net_x, config):
    net, x = net_x
    assert_conversion_bounds(build(net, config), x, 16)


def test_conversion_bounds_catch_a_simulator_that_resets_to_zero(monkeypatch):
    rng = np.random.default_rng(2)
    snn = build(network_with_a_hidden_layer(rng), BINARY)
    x = rng.random((3, 6)).astype(np.float32)
    assert_conversion_bounds(snn, x, 20)
    monkeypatch.setattr(checks, "simulate", lambda net, *a, **k: simulate(with_settings(net, reset="zero"), *a, **k))
    with pytest.raises(AssertionError, match=r"layer 'hidden' breaks V\(T\)"):
        assert_conversion_bounds(snn, x, 20)
    with pytest.raises(ValueError, match="reset='subtract'"):
        assert_conversion_bounds(with_settings(snn, reset="zero"), x, 20)


def test_assert_matches_ann_on_the_demo_model_and_a_planted_bug(demo, monkeypatch):
    x = demo.x[:40]
    errors = assert_matches_ann(demo.model, x, 16, tolerance=0.01)
    assert set(errors) == {s.name for s in demo.model.build().stages[:-1]}
    with pytest.raises(AssertionError, match="mean \\|rate - ANN activation\\|"):
        assert_matches_ann(demo.model, x, 16, tolerance=0.01, threshold=2.0)  # a mis-set threshold halves the rates
    monkeypatch.setattr(checks, "simulate", lambda net, *a, **k: simulate(with_settings(net, shift="none"), *a, **k))
    with pytest.raises(AssertionError, match="layer '"):
        assert_matches_ann(demo.model, x, 4, tolerance=0.01)


def test_differential_testing_through_nir():
    """A second simulator that reads the graph's metadata agrees; one that runs plain NIR (reset
    to zero) is caught, and the message says which setting NIR cannot express."""
    pytest.importorskip("nir")
    from eventsnn.loaders.nir_graph import from_nir

    rng = np.random.default_rng(3)
    snn = build(network_with_a_hidden_layer(rng), SimulationConfig(spikes="binary"))
    x = rng.random((2, 6)).astype(np.float32)

    def faithful(graph, x, steps, **changes):
        other = from_nir(graph).build(**changes)  # its layers are named after their synapse nodes
        trains = spike_trains(simulate(other, x, steps, record=True), other)
        return {"hidden": trains["hidden.synapse0"]}

    ours = compare_with_nir_simulator(snn, x, 12, faithful, name="from_nir")
    assert set(ours) == {"hidden", "out"}
    with pytest.raises(AssertionError, match="reset='subtract'"):
        compare_with_nir_simulator(snn, x, 12, lambda g, x, t: faithful(g, x, t, reset="zero"), name="plain")
    with pytest.raises(ValueError, match="IF nodes"):
        compare_with_nir_simulator(snn, x, 12, lambda g, x, t: {"nonsense": np.zeros(1)})


def test_the_worked_example_in_the_docs_finds_its_planted_bug():
    """docs/testing.md: the test fails on the planted bug with a small counterexample and passes
    once the bug is fixed."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "testing.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    buggy = {}
    exec(compile(code, "docs/testing.md", "exec"), buggy)
    with pytest.raises(AssertionError) as caught:
        buggy["test_normalization_only_rescales_the_output"]()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert re.search("Falsifying example|Failing test case", notes) and "Network(" in notes
    fixed_code = code.replace("weight=net.layers[i].weight / peak", "weight=net.layers[i].weight * previous / peak")
    assert fixed_code != code
    fixed = {}
    exec(compile(fixed_code, "docs/testing.md", "exec"), fixed)
    fixed["test_normalization_only_rescales_the_output"]()


def test_nir_export_works_with_nir_releases_whose_if_node_has_no_v_reset():
    """nir < 1.0.5 (what sinabs 3.1 installs) has IF(r, v_threshold) only and always resets to 0."""
    pytest.importorskip("nir")
    from types import SimpleNamespace

    from eventsnn.loaders.nir_graph import _if_node

    class OldIF:
        def __init__(self, r, v_threshold):
            self.r, self.v_threshold = r, v_threshold

    node = _if_node(SimpleNamespace(IF=OldIF), np.ones(3, np.float32), np.float32(0.5))
    np.testing.assert_array_equal(node.v_threshold, [0.5, 0.5, 0.5])
    assert set(vars(node)) == {"r", "v_threshold"}
