"""Energy: hand counts on a tiny net under every model and graded-event convention, the zero-skipping
ANN, and energy as a property of the network (the same for every delivery path)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn import simulate
from eventsnn.analysis import analyze
from eventsnn.ir import Linear, Network, ReLU
from eventsnn.model import ConvertedModel
from eventsnn.snn import SimulationConfig
from tests.test_analysis import assert_close

W1 = np.array([[0.5, -0.25, 0.75], [-1.0, 0.5, 0.25]], np.float32)
W2 = np.array([[1.0, -0.5], [0.25, 0.5]], np.float32)


def tiny_model(spikes: str) -> ConvertedModel:
    net = Network((3,), (Linear(W1, None, "hidden"), ReLU("relu"), Linear(W2, None, "out")))
    return ConvertedModel(net, (1.0, None, 1.0), None, SimulationConfig(spikes=spikes, output="membrane"))


@pytest.mark.parametrize("spikes", ["graded", "binary"])
def test_energy_matches_a_hand_count_on_a_tiny_net(spikes):
    """Counted here from the spike raster and the weights alone: 3 inputs -> 2 hidden -> 2 outputs."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (30, 3)).astype(np.float32)
    x[x < 0.3] = 0  # zero pixels: no input operations, and the zero-skipping ANN skips them
    model, steps = tiny_model(spikes), 6
    report = analyze(model, x, np.zeros(30, np.int64), steps)
    raster = simulate(model.build(), x, steps, record=True).raster[:, :, :2].astype(np.int64)  # the hidden layer
    input_ops = np.count_nonzero(x) * 2 / 30  # each non-zero pixel reaches both hidden neurons
    events = np.count_nonzero(raster) * 2 / 30  # each hidden event reaches both outputs
    carried = raster.sum() * 2 / 30  # the spikes those events carry
    bits = model.config.spike_limit.bit_length() if spikes == "graded" else 1
    assert report["energy"]["payload_bits"] == bits
    hidden = np.maximum(x @ W1.T, 0)
    dense, skipping = 6 + 4, (np.count_nonzero(x) * 2 + np.count_nonzero(hidden) * 2) / 30
    for name, add, mult, operand in (("fp32", 0.9, 3.7, 24), ("int8", 0.1, 0.2, 8)):
        m = report["energy"]["models"][name]
        event = add + (mult * bits / operand if bits > 1 else 0.0)
        assert m["snn_uj_per_sample_per_step"][-1] * 1e6 == pytest.approx(input_ops * (add + mult) + events * event)
        conventions = {k: v * 1e6 for k, v in m["graded_conventions_uj"].items()}
        assert conventions["accumulates"] == pytest.approx(input_ops * (add + mult) + carried * add)
        assert conventions["mac"] == pytest.approx((input_ops + (events if bits > 1 else 0)) * (add + mult)
                                                   + (0 if bits > 1 else events * add))
        assert m["ann_uj_per_sample"]["dense"] * 1e6 == pytest.approx(dense * (add + mult))
        assert m["ann_uj_per_sample"]["zero_skipping"] * 1e6 == pytest.approx(skipping * (add + mult))
    if spikes == "binary":  # one add per spike whichever convention
        assert len(set(np.round(list(report["energy"]["models"]["fp32"]["graded_conventions_uj"].values()), 12))) == 1
    memory = report["energy"]["models"]["fp32+memory"]
    assert memory["snn_uj_per_sample_per_step"][-1] > report["energy"]["models"]["fp32"]["snn_uj_per_sample_per_step"][-1]
    assert report["neurobench"]["synaptic_operations"]["dense"] == dense * steps
    assert report["neurobench"]["synaptic_operations"]["effective_macs"] == pytest.approx(
        input_ops * steps + (events if spikes == "graded" else 0))
    # membrane updates that happened: a hidden membrane changes every step its constant input current
    # is not zero, an output membrane in the steps the hidden events it receives do not cancel
    hidden_updates = steps * np.count_nonzero(x @ W1.T)
    output_updates = np.count_nonzero(raster @ W2.T.astype(np.float64))
    assert 0 < output_updates < raster.shape[0] * steps * 2
    assert report["neurobench"]["membrane_updates"] == pytest.approx((hidden_updates + output_updates) / 30)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 100), spikes=st.sampled_from(["graded", "binary"]), steps=st.integers(1, 6))
def test_energy_is_the_same_for_every_delivery_path(demo, seed, spikes, steps):
    """Energy prices the network and its events, not the engine's arrays: csr, direct and auto agree."""
    x = demo.x[seed % 40:seed % 40 + 8]
    reports = [analyze(demo.model, x, demo.y[seed % 40:seed % 40 + 8], steps, path=path, spikes=spikes)["energy"]
               for path in ("csr", "direct", "auto")]
    for other in reports[1:]:
        assert_close(reports[0], other)


def test_the_zero_skipping_ann_counts_only_non_zero_inputs(demo):
    """On the demo net (MNIST: most pixels are zero) the zero-skipping ANN does fewer MACs than the
    dense one, and an input without zeros gives it the dense count of the first layer."""
    report = analyze(demo.model, demo.x[:10], demo.y[:10], 2)
    ann_uj = report["energy"]["models"]["fp32"]["ann_uj_per_sample"]
    assert 0 < ann_uj["zero_skipping"] < ann_uj["dense"]
    net = Network((3,), (Linear(W1, None, "hidden"), ReLU("relu"), Linear(W2, None, "out")))
    model = ConvertedModel(net, (1.0, None, 1.0), None, SimulationConfig(output="membrane"))
    x = np.array([[1.0, 1.0, 0.0]], np.float32)  # hidden = relu(0.25, -0.5) = (0.25, 0): one of two non-zero
    ann_uj = analyze(model, x, np.zeros(1, np.int64), 1)["energy"]["models"]["fp32"]["ann_uj_per_sample"]
    assert ann_uj["zero_skipping"] * 1e6 == pytest.approx((2 * 2 + 1 * 2) * 4.6)
