"""NIR export and import: a round trip gives identical spike trains."""

from __future__ import annotations

import dataclasses

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")

from eventsnn.engine import simulate  # noqa: E402
from eventsnn.ir import MaxPool2d  # noqa: E402
from eventsnn.loaders.nir_graph import NirError, from_nir, load_nir, save_nir, to_nir  # noqa: E402
from eventsnn.snn import INPUTS, OUTPUTS, RESETS, SHIFTS, SimulationConfig, build  # noqa: E402

from eventsnn.testing import strategies as es  # noqa: E402


WITHOUT_MAXPOOL = dict(pools=("avgpool",), pool_options=False)  # NIR has no gated max-pool node, no padded avg-pool


def ungrouped(net_x) -> bool:
    """NIR 1.0 cannot type a grouped conv (export refuses it)."""
    return all(getattr(layer, "groups", 1) == 1 for layer in net_x[0].layers)


@settings(max_examples=25, deadline=None)
@given(net_x=es.networks_and_inputs(**WITHOUT_MAXPOOL).filter(ungrouped), reset=st.sampled_from(RESETS),
       input_mode=st.sampled_from(INPUTS), output=st.sampled_from(OUTPUTS), shift=st.sampled_from(SHIFTS))
def test_round_trip_gives_identical_spike_trains(tmp_path_factory, net_x, reset, input_mode, output, shift):
    net, x = net_x
    config = SimulationConfig(reset=reset, input=input_mode, output=output, shift=shift, threshold=0.75, spikes="binary")
    snn = build(net, config)
    path = tmp_path_factory.mktemp("nir") / "net.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save_nir(snn, path)
    back = load_nir(path)
    assert back.config == config
    original, again = simulate(snn, x, 12, seed=5, record=True), simulate(back.build(), x, 12, seed=5, record=True)
    np.testing.assert_array_equal(original.raster, again.raster)
    np.testing.assert_array_equal(original.decisions, again.decisions)
    np.testing.assert_array_equal(original.output_membrane, again.output_membrane)


def test_reset_by_subtraction_is_explicit():
    net, _ = es.fixed_sample(es.networks_and_inputs(residual=False, **WITHOUT_MAXPOOL).filter(ungrouped), 1)[0]
    with pytest.warns(UserWarning, match="reset by subtraction is recorded only in the graph metadata"):
        graph = to_nir(build(net, SimulationConfig(reset="subtract", spikes="binary", shift="none")))
    assert graph.metadata["reset"] == "subtract"
    graph.metadata = {}  # a graph from another tool: NIR's IF resets to v_reset
    assert from_nir(graph).config.reset == "zero"


def test_max_pool_gates_cannot_be_exported():
    net = next(net for net, _ in es.fixed_sample(es.networks_and_inputs(pools=("maxpool",)), 20)
               if any(isinstance(layer, MaxPool2d) for layer in net.layers))
    with pytest.raises(NirError, match="max-pool"):
        to_nir(build(net, SimulationConfig(reset="zero", spikes="binary")))


def test_graded_spikes_cannot_be_exported():
    net, _ = es.fixed_sample(es.networks_and_inputs(residual=False, **WITHOUT_MAXPOOL).filter(ungrouped), 1)[0]
    with pytest.raises(NirError, match="binary spikes"):
        to_nir(build(net, SimulationConfig(reset="zero", spikes="graded")))


def test_calibrated_initial_potentials_cannot_be_exported():
    net, _ = es.fixed_sample(es.networks_and_inputs(residual=False, **WITHOUT_MAXPOOL).filter(ungrouped), 1)[0]
    snn = build(net, SimulationConfig(reset="zero", spikes="binary"))
    first = dataclasses.replace(snn.stages[0], potential=np.full(snn.stages[0].size, 0.25, np.float32))
    with pytest.raises(NirError, match="initial membrane potential"):
        to_nir(dataclasses.replace(snn, stages=(first,) + snn.stages[1:]))


def test_offset_correction_cannot_be_exported():
    net, _ = es.fixed_sample(es.networks_and_inputs(residual=False, **WITHOUT_MAXPOOL).filter(ungrouped), 1)[0]
    with pytest.raises(NirError, match="offset correction"):
        to_nir(build(net, SimulationConfig(spikes="binary", correction="offset")))


def test_an_int32_network_exports_its_float_weights(tmp_path, capsys):
    """int32 is a way of simulating: its grid (and its first layer reading 255 x) never reaches a
    NIR file. to_nir refuses it; `export` of a model stored with int32 writes the float network."""
    from eventsnn.cli import main
    from eventsnn.model import convert, save

    net, x = es.fixed_sample(es.networks_and_inputs(residual=False, min_samples=4, **WITHOUT_MAXPOOL)
                             .filter(ungrouped), 1)[0]
    config = SimulationConfig(reset="zero", spikes="binary", arithmetic="int32")
    with pytest.raises(NirError, match="arithmetic='float32'"):
        to_nir(build(net, config))
    save(convert(net, x, config=config), tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.nir")]) == 0
    float_weight = build(net, config.updated(arithmetic="float32")).stages[0].projections[0].layer.weight
    np.testing.assert_array_equal(load_nir(tmp_path / "m.nir").ann.layers[0].weight, float_weight)
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "n.nir"), "--arithmetic", "int32"]) == 2
    assert "NIR holds the network's float weights" in capsys.readouterr().err


def test_unsupported_nodes_are_named():
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}),
               "fc": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
               "lif": nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])
    with pytest.raises(NirError, match="node 'lif': unsupported node type LIF"):
        from_nir(graph)


def test_garbage_file_is_refused(tmp_path):
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(NirError, match="bad.nir"):
        load_nir(tmp_path / "bad.nir")


def test_export_and_run_from_the_command_line(tmp_path, demo, capsys):
    from eventsnn.cli import main
    from eventsnn.model import convert, save

    net, x = es.fixed_sample(es.networks_and_inputs(residual=True, min_samples=10, max_samples=10, **WITHOUT_MAXPOOL)
                         .filter(ungrouped), 1)[0]
    save(convert(net, x), tmp_path / "m.npz")
    np.savez(tmp_path / "data.npz", x=x, y=np.zeros(10, np.int64))
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.nir"), "--reset", "zero"]) == 2
    assert "graded spikes cannot be exported" in capsys.readouterr().err  # the default neuron has no NIR node
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.nir"), "--reset", "zero",
                 "--spikes", "binary"]) == 0
    assert main(["run", str(tmp_path / "m.nir"), "--data", str(tmp_path / "data.npz"), "--steps", "10",
                 "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "exported" in out and "reset zero" in out and "SNN accuracy" in out


@pytest.mark.filterwarnings("ignore:layer .* had no positive activation")
def test_channel_wise_residual_net_round_trips(tmp_path):
    """A residual net with channel-wise scales: its identity shortcut carries one weight per
    channel, a NIR Scale node that varies by channel, read back as the same add."""
    from eventsnn.ir import Add
    from eventsnn.model import convert

    for net, x in es.fixed_sample(es.networks_and_inputs(residual=True, min_samples=8,
                                                         max_samples=8, dyadic=False, **WITHOUT_MAXPOOL), 40):
        model = convert(net, x, 100.0, SimulationConfig(spikes="binary"), scale_per="channel")
        weights = [w for layer in model.normalized().layers if isinstance(layer, Add) for w in layer.weights]
        if any(np.ndim(w) and len(set(w)) > 1 for w in weights):
            break
    else:
        pytest.fail("no drawn residual net has an identity shortcut with channel-varying weights")
    snn = model.build()
    save_nir(snn, tmp_path / "m.nir")
    original, again = (simulate(s, x, 8, record=True) for s in (snn, load_nir(tmp_path / "m.nir").build()))
    np.testing.assert_array_equal(original.raster, again.raster)
    np.testing.assert_array_equal(original.output_membrane, again.output_membrane)


def test_grouped_convs_and_padded_average_pools_are_refused_by_name():
    from eventsnn.ir import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU

    def net(conv_groups: int, pool: AvgPool2d) -> Network:
        features = int(np.prod(pool.output_shape((2, 4, 4))))
        return Network((2, 4, 4), (Conv2d(np.ones((2, 2 // conv_groups, 1, 1), np.float32), None, 1, 0, "c", conv_groups),
                                   ReLU("r"), pool, Flatten("f"), Linear(np.ones((2, features), np.float32), None, "o")))
    with pytest.raises(NirError, match="grouped conv 'c'"):
        to_nir(build(net(2, AvgPool2d(2, 2, "p")), SimulationConfig(spikes="binary")))
    padded = net(1, AvgPool2d(2, 1, "p", padding=1, ceil_mode=True))
    with pytest.raises(NirError, match="average pooling 'p' with padding"):  # as its own population
        to_nir(build(padded, SimulationConfig(spikes="binary", avg_pool="neurons")))
    graph = to_nir(build(padded, SimulationConfig(spikes="binary")))  # absorbed by the linear layer: exportable
    assert not any(type(node).__name__ == "AvgPool2d" for node in graph.nodes.values())
