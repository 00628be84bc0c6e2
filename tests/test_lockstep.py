"""The stage-by-stage schedule (``schedule='layer'``, ``engine.lockstep``): a batch run one stage at a
time, each projection delivered as a matrix product or as events, gives the spikes of the dense reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventsnn import convert
from eventsnn.engine import lockstep, simulate
from eventsnn.loaders import load_network
from eventsnn.ir import Add, AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from eventsnn.reference import simulate_reference
from eventsnn.rewrite import fold_avgpools
from eventsnn.snn import GATE, SimulationConfig, build
from eventsnn.testing import strategies as es

from .test_fixed_point import int32_refusals_skipped

LAYER = dict(outputs=("membrane",), spikes=("binary", "graded"))
DELIVERIES = ("dense", "events", "auto")


def assert_layer_equals_reference(snn, x, steps: int, seed: int, delivery: str) -> None:
    layer = simulate(snn, x, steps, seed=seed, schedule="layer", delivery=delivery, batch_size=3)
    reference = simulate_reference(snn, x, steps, seed=seed)
    for field in ("decisions", "spikes", "synops", "synops_per_step", "spike_amounts", "input_synops",
                  "first_spike", "output_membrane"):
        np.testing.assert_array_equal(getattr(layer, field), getattr(reference, field), err_msg=field)


@settings(max_examples=50, deadline=None)
@given(net_x=es.networks_and_inputs(), config=es.simulation_configs(**LAYER),
       steps=st.sampled_from([1, 3, 8]), seed=st.integers(0, 999), delivery=st.sampled_from(DELIVERIES),
       data=st.data())
def test_layer_schedule_equals_reference(net_x, config, steps, seed, delivery, data):
    """Chains and residual graphs (grouped convs, CSR, kernel-direct and dense paths, max-pool
    gates), binary and graded spikes, analog and Poisson input, both resets, calibrated V(0),
    dyadic weights: every count, SynOp, decision and output membrane equal, whichever way each
    projection delivers."""
    net, x = net_x
    snn = data.draw(es.initial_potentials(build(net, config)))
    assert_layer_equals_reference(snn, x, steps, seed, delivery)


@settings(max_examples=40, deadline=None)
@given(net_x=es.networks_and_inputs(pools=("maxpool",)), config=es.simulation_configs(**LAYER),
       steps=st.sampled_from([5, 12]), seed=st.integers(0, 999))
def test_max_pool_gates_over_many_steps_equal_reference(net_x, config, steps, seed):
    """The gates' window-by-window pass gives the reference's event-by-event gate: ties between a
    window's count and an input's, decaying estimates, overlapping and padded windows."""
    net, x = net_x
    snn = build(net, config)
    assume(any(stage.kind == GATE for stage in snn.stages))
    assert_layer_equals_reference(snn, x, steps, seed, "auto")


@settings(max_examples=40, deadline=None)
@given(net_x=es.networks_and_inputs(dyadic=False),
       config=es.simulation_configs(arithmetics=("int32",), **LAYER), steps=st.sampled_from([1, 4]),
       seed=st.integers(0, 999), delivery=st.sampled_from(DELIVERIES))
def test_layer_schedule_in_int32_equals_reference_on_any_weights(net_x, config, steps, seed, delivery):
    """int32: the float64 matrix products are exact, so on any weights every delivery gives the
    step-major engine's and the reference's spikes."""
    net, x = net_x
    with int32_refusals_skipped():
        snn = build(net, config)
        step = simulate(snn, x, steps, seed=seed, schedule="step")
    assert_layer_equals_reference(snn, x, steps, seed, delivery)
    np.testing.assert_array_equal(simulate(snn, x, steps, seed=seed, schedule="layer", delivery=delivery).spikes,
                                  step.spikes)


def _pooled_net(rng: np.random.Generator) -> Network:
    """conv -> 2x2 average pooling -> conv -> flatten -> linear, on dyadic weights."""
    def w(*shape):
        return (rng.integers(-8, 9, shape) / 16).astype(np.float32)
    return Network((2, 8, 8), (Conv2d(w(4, 2, 3, 3), w(4), 1, 1, "c1"), ReLU("r1"), AvgPool2d(2, 2, "pool"),
                               Conv2d(w(5, 4, 3, 3), None, 1, 1, "c2"), ReLU("r2"), Flatten("flat"),
                               Linear(w(3, 80), None, "out")))


def test_an_absorbed_average_pooling_runs_as_a_sum_pooling_and_a_smaller_conv():
    """The conv that absorbed the pooling (6x6, stride 2) is found to be a 2x2 sum pooling and a
    3x3 conv (4 times fewer products), and delivers the same currents as its events do."""
    net, _ = fold_avgpools(_pooled_net(np.random.default_rng(0)))
    conv = next(layer for layer in net.layers if getattr(layer, "name", "") == "c2")
    assert conv.weight.shape[2:] == (6, 6) and conv.stride == 2
    assert lockstep._pooling_factor(conv.weight, conv.stride, conv.padding, (4, 8, 8)) == 2
    snn = build(net, SimulationConfig(spikes="graded", max_spikes=4, levels=4))
    x = np.random.default_rng(1).integers(0, 5, (6, 2, 8, 8)).astype(np.float32) / 4
    for delivery in ("dense", "events"):
        assert_layer_equals_reference(snn, x, 4, 0, delivery)
    perturbed = conv.weight.copy()
    perturbed[0, 0, 0, 0] += 1  # no longer constant over a 2x2 block
    assert lockstep._pooling_factor(perturbed, conv.stride, conv.padding, (4, 8, 8)) == 1


def test_a_residual_identity_with_a_weight_per_channel_is_multiplied_elementwise_as_its_events_add():
    """The shortcut (one synapse per neuron) delivers densely as its diagonal: per channel, in the
    engine's channel-last order; float32 and int32 give the reference's spikes."""
    rng = np.random.default_rng(8)

    def w(*shape):
        return (rng.integers(-8, 9, shape) / 16).astype(np.float32)
    net = Network((3, 6, 6), (Conv2d(w(3, 3, 3, 3), w(3), 1, 1, "c1"), ReLU("r1"),
                              Conv2d(w(3, 3, 3, 3), None, 1, 1, "c2"), Add("add", (1.0, (0.5, 1.25, 2.0))),
                              ReLU("r2"), Flatten("flat"), Linear(w(4, 108), None, "out")),
                  inputs=((-1,), (0,), (1,), (2, 1), (3,), (4,), (5,)))
    x = rng.integers(0, 5, (6, 3, 6, 6)).astype(np.float32) / 4
    for arithmetic in ("float32", "int32"):
        snn = build(net, SimulationConfig(spikes="graded", max_spikes=4, levels=4, arithmetic=arithmetic))
        identity = next(p for stage in snn.stages for p in stage.projections if p.layer is None)
        assert lockstep._Diagonal.applies(identity) and len(np.unique(identity.synapses.weights)) == 3
        assert_layer_equals_reference(snn, x, 3, 0, "dense")


def test_sub_batches_and_window_blocks_do_not_change_the_result(monkeypatch):
    """A stage's samples split into sub-batches of one, a convolution's windows built a row at a time."""
    snn = build(_pooled_net(np.random.default_rng(2)), SimulationConfig(spikes="graded", max_spikes=4, levels=4))
    x = np.random.default_rng(3).random((5, 2, 8, 8)).astype(np.float32)
    whole = simulate(snn, x, 3, schedule="layer", delivery="dense")
    monkeypatch.setattr(lockstep, "STAGE_BYTES", 1)
    monkeypatch.setattr(lockstep, "WINDOW_BYTES", 1)
    monkeypatch.setattr(lockstep, "THREAD_WINDOW_BYTES", 1)
    split = simulate(snn, x, 3, schedule="layer", delivery="dense")
    np.testing.assert_array_equal(split.spikes, whole.spikes)
    np.testing.assert_array_equal(split.output_membrane, whole.output_membrane)


def test_auto_delivery_times_each_projection_once_and_reuses_the_plan():
    snn = build(_pooled_net(np.random.default_rng(4)), SimulationConfig())
    x = np.random.default_rng(5).random((4, 2, 8, 8)).astype(np.float32)
    simulate(snn, x, 4, schedule="layer")
    plan = lockstep.plan_for(snn, "auto")
    assert set(plan.costs) == {0, 1, 2}  # the input's conv, the pooled conv, the linear layer
    assert all(per_row > 0 and per_event > 0 for per_row, per_event in plan.costs.values())
    simulate(snn, x, 4, schedule="layer")
    assert lockstep.plan_for(snn, "auto") is plan


@pytest.mark.parametrize("what, options, build_config", [
    ("record", dict(record=True), {}),
    ("count_neurons", dict(count_neurons=True), {}),
    ("early exit", dict(stable_steps=2), {}),
    ("the softmax readout", {}, dict(output="softmax")),
    ("signed spikes", {}, dict(spikes="signed")),
])
def test_what_the_layer_schedule_does_not_cover_is_refused_by_name(what, options, build_config):
    snn = build(_pooled_net(np.random.default_rng(6)), SimulationConfig(**build_config))
    x = np.zeros((1, 2, 8, 8), np.float32)
    with pytest.raises(ValueError, match=f"does not cover {what}"):
        simulate(snn, x, 2, schedule="layer", **options)
    simulate(snn, x, 2, schedule="step", **options)


def test_the_demo_cnn_with_max_pooling_runs_stage_by_stage_as_step_by_step(demo):
    """Max-pool gates in the layer schedule; in int32 the whole run is exact, so the spikes are equal."""
    snn = demo.model.build(arithmetic="int32")
    x = demo.x[:20]
    step, layer = simulate(snn, x, 4), simulate(snn, x, 4, schedule="layer")
    for field in ("decisions", "spikes", "synops_per_step", "spike_amounts", "output_membrane"):
        np.testing.assert_array_equal(getattr(layer, field), getattr(step, field), err_msg=field)
    assert layer.spikes[:, [s.kind == GATE for s in snn.stages]].sum() > 0


def test_bad_settings_are_named(demo):
    snn, x = demo.model.build(), demo.x
    with pytest.raises(ValueError, match="schedule must be one of"):
        simulate(snn, x[:1], 2, schedule="lockstep")
    with pytest.raises(ValueError, match="delivery must be one of"):
        simulate(snn, x[:1], 2, delivery="gemm")
    with pytest.raises(ValueError, match="with schedule='layer'"):
        simulate(snn, x[:1], 2, delivery="dense")


def test_an_int32_product_whose_sums_could_leave_float64s_exact_range_delivers_as_events():
    snn = build(_pooled_net(np.random.default_rng(8)), SimulationConfig(arithmetic="int32"))
    product = lockstep.plan_for(snn, "auto").products[1][0]  # the pooled conv, in grid steps
    column = float(np.abs(product.matrix).sum(axis=0).max())
    assert product.exact_for(2.0 ** 53 / column * 0.99) and not product.exact_for(2.0 ** 53 / column * 1.01)
    assert all(p is not None for stage in lockstep.plan_for(snn, "auto").products for p in stage)


@pytest.mark.parametrize("family", ["inception", "mobilenet_v2"])
def test_concat_and_depthwise_nets_run_stage_by_stage_exactly_in_int32(family):
    """The shipped family nets (Inception's concatenations, MobileNetV2's depthwise convs and
    residual adds): in int32 the layer schedule gives the step-by-step spikes."""
    models = Path(__file__).resolve().parents[1] / "examples" / "models"
    with np.load(models / "cifar10_sample.npz") as f:
        x = f["x"][:14].astype(np.float32) / 255
    model = convert(load_network(models / f"family_{family}.pt", models / f"family_{family}.json"), x[:8])
    snn = model.build(arithmetic="int32")
    step, layer = simulate(snn, x[8:], 2), simulate(snn, x[8:], 2, schedule="layer")
    for field in ("decisions", "spikes", "synops_per_step", "spike_amounts", "output_membrane"):
        np.testing.assert_array_equal(getattr(layer, field), getattr(step, field), err_msg=field)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_memory_estimate_bounds_what_a_run_stage_by_stage_allocates(monkeypatch, threads):
    """simulation_bytes(schedule='layer') is checked before the run; it must not undercount (each
    thread's Winograd scratch included)."""
    import tracemalloc

    from eventsnn.engine import simulation_bytes

    rng = np.random.default_rng(7)
    net = Network((3, 16, 16), (Conv2d(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), None, 1, 1, "c1"),
                                ReLU("r1"), Conv2d(rng.normal(0, 0.2, (16, 16, 3, 3)).astype(np.float32), None, 1, 1,
                                                   "c2"), ReLU("r2"), Flatten("flat"),
                                Linear(rng.normal(0, 0.05, (10, 4096)).astype(np.float32), None, "out")))
    snn = build(net, SimulationConfig(spikes="graded", max_spikes=4, levels=4))
    x = rng.random((64, 3, 16, 16)).astype(np.float32)
    monkeypatch.setattr(lockstep, "STAGE_BYTES", 4 << 20)  # several sub-batches
    monkeypatch.setattr(lockstep, "WINDOW_BYTES", 1 << 20)
    monkeypatch.setattr(lockstep, "THREAD_WINDOW_BYTES", 1 << 18)
    simulate(snn, x[:2], 8, schedule="layer")  # the plan (weights as matrices) is made once per network
    tracemalloc.start()
    result = simulate(snn, x, 8, schedule="layer", batch_size=64, threads=threads)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.spikes.sum() > 0
    assert simulation_bytes(snn, len(x), 8) < peak <= simulation_bytes(snn, len(x), 8, threads=threads,
                                                                        schedule="layer")


def test_synop_tallies_stay_exact_where_int32_sums_of_fan_outs_would_overflow():
    """SynOps are summed in int32 a part of the inputs at a time: fan-outs near 2^30 take parts of one."""
    rng = np.random.default_rng(0)
    src = (rng.integers(0, 3, (3, 50)) * (rng.random((3, 50)) < 0.7)).astype(np.int16)
    for fan_out in (rng.integers(0, 2 ** 30, 50), rng.integers(0, 600, 50)):
        synops = np.full(3, 5, np.int64)
        lockstep._count_synops(0, 3, src, fan_out, synops)
        np.testing.assert_array_equal(synops, 5 + ((src != 0) * fan_out).sum(axis=1))
