"""Conv connectivity paths, early exit, and statistics of the event engine."""

from __future__ import annotations

import dataclasses
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventsnn.connectivity import conv_csr, conv_fan_out
from eventsnn.engine import simulate
from eventsnn.ann import synaptic_input
from eventsnn.ir import Conv2d, Linear
from eventsnn.snn import GATE, INPUT, INPUTS, SimulationConfig, build
from eventsnn.testing import strategies as es


@settings(max_examples=40, deadline=None)
@given(net_x=es.networks_and_inputs(residual=False), input_mode=st.sampled_from(INPUTS))
def test_csr_and_kernel_direct_paths_give_identical_spike_trains(net_x, input_mode):
    net, x = net_x
    config = SimulationConfig(input=input_mode)
    csr = simulate(build(net, config, path="csr"), x, 16, seed=1, record=True)
    direct = simulate(build(net, config, path="direct"), x, 16, seed=1, record=True)
    np.testing.assert_array_equal(csr.raster, direct.raster)
    np.testing.assert_array_equal(csr.membrane, direct.membrane)
    np.testing.assert_array_equal(csr.synops, direct.synops)


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 3), o=st.integers(1, 3), size=st.integers(3, 9), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2))
def test_conv_fan_out_counts_the_unrolled_synapses(c, o, size, k, stride, padding):
    if (size + 2 * padding - k) // stride + 1 < 1 or k > size + 2 * padding:
        return
    layer = Conv2d(np.ones((o, c, k, k)), None, stride, padding, "conv")
    np.testing.assert_array_equal(conv_fan_out(layer, (c, size, size)), np.diff(conv_csr(layer, (c, size, size)).indptr))


def test_early_exit_saves_synops_and_keeps_the_decision(demo):
    snn = demo.model.build()
    x = demo.x[:40]
    full = simulate(snn, x, 100)
    early = simulate(snn, x, 100, stable_steps=20)
    stopped = early.exit_step > 0
    assert stopped.any() and np.all(early.exit_step[stopped] < 100)
    assert early.synops.sum() < full.synops.sum()
    # up to its exit step a sample computes exactly what the full run does
    for b in np.flatnonzero(stopped):
        t = early.exit_step[b]
        np.testing.assert_array_equal(early.decisions[b, :t], full.decisions[b, :t])
        assert np.all(early.decisions[b, t:] == early.decisions[b, t - 1])
        assert np.all(early.spikes[b, :, t:] == 0)
    assert np.all(full.exit_step == -1)


def test_margin_exit_stops_when_the_lead_is_large(demo):
    snn = demo.model.build(output="spikes")
    result = simulate(snn, demo.x[:10], 100, exit_margin=5)
    stopped = result.exit_step > 0
    assert stopped.any()
    lead = np.sort(result.output_counts, axis=1)
    assert np.all(lead[stopped, -1] - lead[stopped, -2] >= 5)


@pytest.mark.parametrize("spikes", ["binary", "graded"])
def test_statistics_are_consistent(demo, spikes):
    """Events, weighted spikes and SynOps recounted from the raster (a graded event counts once per synapse)."""
    snn = demo.model.build(spikes=spikes)
    result = simulate(snn, demo.x[:5], 30, record=True)
    offsets = np.cumsum([0] + [s.size for s in snn.stages])
    events = result.raster != 0
    for s, stage in enumerate(snn.stages):
        np.testing.assert_array_equal(events[:, :, offsets[s]:offsets[s + 1]].sum(axis=2), result.spikes[:, s])
        np.testing.assert_array_equal(result.raster[:, :, offsets[s]:offsets[s + 1]].sum(axis=(1, 2), dtype=np.int64),
                                      result.spike_amounts[:, s])
        if s > 0:  # SynOps = events received x fan-out of the sender
            (projection,) = stage.projections
            source = projection.source
            received = events[:, :, offsets[source]:offsets[source + 1]].sum(axis=1).astype(np.int64)
            np.testing.assert_array_equal(received @ projection.fan_out, result.synops[:, s])
    first = np.argmax(result.spikes[:, -1] > 0, axis=1) + 1
    np.testing.assert_array_equal(np.where(result.spikes[:, -1].any(axis=1), first, -1), result.first_spike)


def test_invalid_early_exit_and_threads_are_refused(demo):
    snn = demo.model.build()
    with pytest.raises(ValueError, match="stable_steps"):
        simulate(snn, demo.x[:1], 5, stable_steps=-1)
    with pytest.raises(ValueError, match="threads"):
        simulate(snn, demo.x[:1], 5, threads=0)


def test_paths_agree_bit_for_bit_on_real_weights(demo):
    """Not only on dyadic weights: both paths add the same floats in the same order."""
    x = demo.x[:4]
    csr = simulate(demo.model.build(path="csr"), x, 30, record=True)
    direct = simulate(demo.model.build(path="direct"), x, 30, record=True)
    np.testing.assert_array_equal(csr.raster, direct.raster)
    np.testing.assert_array_equal(csr.membrane, direct.membrane)


def test_inner_loops_vectorize():
    """The dense-row, kernel-direct and fire loops compile to packed (SIMD) instructions, float32
    and int32 (``fixed_point``) alike."""
    import re

    from numba import njit

    from eventsnn.engine.delivery import _deliver_dense, _deliver_direct
    from eventsnn.engine.neurons import _fire

    v, w = np.zeros(64, np.float32), np.ones(256, np.float32)
    queue, none = np.array([1, 2], np.int32), np.zeros(0, np.float32)
    table_ptr, table = np.array([0, 1, 2, 3], np.int64), np.array([0, 0, 32] * 3, np.int32)
    cases = [(_deliver_dense, (queue, 0, 2, none, 32, w, 0, v, 0)),
             (_deliver_direct, (queue, 0, 2, none, 1, 32, table_ptr, 0, table, 0, w, 0, v, 0)),
             (_fire, (v, w[:64], np.zeros(64, np.uint8), np.float32(1), True, np.float32(-np.inf), np.float32(np.inf)))]
    vi, wi, amounts = np.zeros(64, np.int32), np.ones(256, np.int32), np.ones(4, np.int32)
    whole = (np.int32(-2**30), np.int32(2**30))
    integer = [(_deliver_dense, (queue, 0, 2, amounts, 32, wi, 0, vi, 0)),
               (_deliver_direct, (queue, 0, 2, amounts, 1, 32, table_ptr, 0, table, 0, wi, 0, vi, 0)),
               (_fire, (vi, wi[:64], np.zeros(64, np.uint8), np.int32(1), True) + whole)]
    for (kernel, args), packed in [(case, r"\bv?(addps|subps|cmpps|cmpleps|blendvps)\b") for case in cases] + \
            [(case, r"\bv?(paddd|paddq|psubq|pcmpgtd|pcmpgtq|addpd|cmppd|subpd)\b") for case in integer]:
        fresh = njit(error_model="numpy")(kernel.py_func)  # cached kernels cannot be inspected
        fresh(*args)
        asm = fresh.inspect_asm(fresh.signatures[0])
        assert re.search(packed, asm), kernel.__name__


def real_fan_out(projection) -> np.ndarray:
    """Synapses per presynaptic neuron, found by pushing one-hot inputs through the layer with all
    weights set to one (independent of the engine's tables): edges, strides and padding included."""
    n_in, layer = projection.n_in, projection.layer
    if layer is None:  # identity branch of a residual add
        return np.ones(n_in, np.int64)
    if isinstance(layer, (Conv2d, Linear)):  # stride, padding and groups kept
        layer = dataclasses.replace(layer, weight=np.ones_like(layer.weight), bias=None)
    one_hot = np.eye(n_in, dtype=np.float32).reshape((n_in,) + projection.in_shape)
    return (synaptic_input(layer, one_hot, with_bias=False).reshape(n_in, -1) != 0).sum(axis=1)


@settings(max_examples=30, deadline=None)
@given(net_x=es.networks_and_inputs(), spikes=st.sampled_from(["binary", "graded"]))
def test_synops_recounted_from_the_raster_and_the_connectivity(net_x, spikes):
    """SynOps of every stage = events received (from the recorded raster; the analog input once)
    times the real fan-out of the sender; a graded event counts once per synapse."""
    net, x = net_x
    snn = build(net, SimulationConfig(spikes=spikes, levels=2, max_spikes=3, input="analog"))
    result = simulate(snn, x, 10, record=True)
    offsets = np.cumsum([0] + [s.size for s in snn.stages])
    received = (result.raster != 0).sum(axis=1).astype(np.int64)  # (N, neurons) events over the run
    for s, stage in enumerate(snn.stages):
        if stage.kind == GATE:
            continue
        expected = np.zeros(len(x), np.int64)
        for p in stage.projections:
            events = (x.reshape(len(x), -1) != 0) if p.source == INPUT else \
                received[:, offsets[p.source]:offsets[p.source + 1]]
            expected += events.astype(np.int64) @ real_fan_out(p)
        np.testing.assert_array_equal(result.synops[:, s], expected, err_msg=stage.name)


@settings(max_examples=60, deadline=None)
@given(flags=st.lists(st.integers(0, 255), min_size=0, max_size=70), offset_words=st.integers(0, 2))
def test_compaction_queues_exactly_the_non_zero_flags_in_order(flags, offset_words):
    """The branch-free compaction (mask -> lane table, 8 writes per word) against flatnonzero,
    for stages of any length (partial last word) starting at any word of the flag array."""
    from eventsnn.engine.neurons import _compact, lane_table

    n = len(flags)
    words = np.zeros(offset_words + (n + 7) // 8 + 1, np.uint64)
    words.view(np.uint8)[8 * offset_words:8 * offset_words + n] = flags
    queue = np.full(n + 5, -1, np.int32)
    count = _compact(n, queue, 5, words, offset_words, lane_table())
    expected = np.flatnonzero(np.array(flags, np.int64))
    assert count == expected.size
    np.testing.assert_array_equal(queue[5:5 + count], expected)
    assert np.all(queue[:5] == -1)  # nothing written before the stage's queue


def test_profile_charges_the_run_to_phases_without_changing_it(demo):
    from eventsnn.engine import PHASES

    snn, x = demo.model.build(spikes="binary"), demo.x
    plain = simulate(snn, x[:6], 12, threads=1, record=True)
    profiled = simulate(snn, x[:6], 12, threads=1, record=True, profile=True)
    np.testing.assert_array_equal(plain.raster, profiled.raster)
    assert plain.phase_seconds is None
    assert profiled.phase_seconds.shape == (6, len(snn.stages), len(PHASES))
    total = profiled.phase_seconds.sum()
    assert 0.5 * profiled.seconds < total <= 1.01 * profiled.seconds  # the phases cover the run, one thread
    delivery = profiled.phase_seconds[:, :, PHASES.index("delivery")].sum(axis=0)
    synaptic = [s for s, stage in enumerate(snn.stages) if stage.kind != GATE and s > 0]
    assert np.all(delivery[synaptic] > 0)  # every stage that receives events spent time delivering them
