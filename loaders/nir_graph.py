"""NIR (Neuromorphic Intermediate Representation) export and import (needs the ``nir`` extra).

Export: each stage of a converted network becomes an ``IF`` node (threshold ``v_threshold``,
``r = 1``, ``v_reset = 0``) fed by one synapse node per projection: ``Conv2d`` or ``Affine``
(weights and biases already normalized; the bias is the constant current per step),
``AvgPool2d``, or ``Scale`` for the identity branch of a residual add; ``Flatten`` where a
dense layer reads a map. The output layer is an ``I`` (integrator) node unless the readout is
'spikes'. Several edges into one node add up, as in NIR.

What NIR cannot say is written into the graph metadata and read back by ``from_nir``:
``reset`` ('subtract' or 'zero'), ``input`` ('analog' current or 'poisson' spikes), ``output``
(readout), ``shift``, ``softmax_rate`` and ``maxpool_decay``. Reset by subtraction is the
explicit case: NIR's IF resets *to* ``v_reset``, so another simulator that ignores the metadata
runs the net with reset to zero (less accurate, Rueckauer et al. 2.2); ``to_nir`` warns when it
writes such a graph. Max-pool gates have no NIR node: ``to_nir`` refuses them.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path

import numpy as np

from eventsnn.ir import Add, AvgPool2d, Conv2d, Flatten, Layer, Linear, Network, ReLU, Shape
from eventsnn.model import ConvertedModel
from eventsnn.snn import GATE, INPUT, OUTPUT, SimulationConfig, SpikingNetwork
from eventsnn.convert import unit_scales

from .optional import require

METADATA_KEYS = ("reset", "input", "output", "shift", "softmax_rate", "maxpool_decay")
NIR_MEANING = {"reset": "zero", "shift": "none", "spikes": "binary"}  # an IF node as NIR defines it


class NirError(ValueError):
    """A NIR graph uses what eventsnn cannot run, or a network cannot be expressed in NIR."""


def _nir():
    return require("nir", "nir", "NIR export and import")


def _node_name(stage_name: str) -> str:
    return stage_name.replace("/", ".")


def to_nir(snn: SpikingNetwork):
    """The spiking network as a ``nir.NIRGraph`` (see the module docstring for the mapping)."""
    nir = _nir()
    cfg = snn.config
    if any(stage.kind == GATE for stage in snn.stages):
        raise NirError("NIR has no rate-gated max-pool node; only networks without max-pooling can be exported")
    if cfg.spikes != "binary":
        raise NirError(f"NIR's IF node emits binary spikes; a network with {cfg.spikes} spikes cannot be exported "
                       "(convert or run it with --spikes binary)")
    if cfg.arithmetic == "int32":  # its first layer reads 255 x, and its values are rounded to a grid
        raise NirError("NIR holds the network's float weights; build it with arithmetic='float32' to export it "
                       "(int32 is a way of simulating the same network)")
    if cfg.correction != "none":
        raise NirError("NIR's graph runs step by step; offset correction runs each population twice, layer by layer "
                       "(build it with correction='none' to export)")
    calibrated = [stage.name for stage in snn.stages if stage.potential is not None]
    if calibrated:
        raise NirError(f"NIR's IF node has no initial membrane potential; {', '.join(calibrated)} start from calibrated "
                       "potentials (convert with --calibrate none or bias to export)")
    if cfg.reset == "subtract":
        warnings.warn("NIR's IF node resets to v_reset: reset by subtraction is recorded only in the graph metadata "
                      "(from_nir honours it; other simulators may reset to zero)", stacklevel=2)
    nodes = {"input": nir.Input(input_type={"input": np.array(snn.input_shape)})}
    edges = []
    population = {INPUT: "input"}  # stage index -> name of the node that emits its spikes
    for s, stage in enumerate(snn.stages):
        neuron = _node_name(stage.name)
        ones = np.ones(stage.out_shape, np.float32)
        if stage.kind == OUTPUT and cfg.output != "spikes":
            nodes[neuron] = nir.I(r=ones)
        else:
            nodes[neuron] = _if_node(nir, ones, np.float32(cfg.threshold))
        for k, projection in enumerate(stage.projections):
            source = population[projection.source]
            if projection.in_shape != projection.source_shape:
                flat = f"{neuron}.flatten{k}"
                nodes[flat] = nir.Flatten(input_type={"input": np.array(projection.source_shape)}, start_dim=0, end_dim=-1)
                edges.append((source, flat))
                source = flat
            synapse = f"{neuron}.synapse{k}"
            nodes[synapse] = _synapse_node(nir, projection.layer, projection.weight, projection.in_shape)
            edges += [(source, synapse), (synapse, neuron)]
        population[s] = neuron
    nodes["output"] = nir.Output(output_type={"output": np.array(snn.stages[-1].out_shape)})
    edges.append((population[len(snn.stages) - 1], "output"))
    metadata = {key: getattr(cfg, key) for key in METADATA_KEYS} | {"threshold": cfg.threshold, "producer": "eventsnn"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _if_node(nir, ones: np.ndarray, threshold: np.float32):
    """An IF node resetting to 0 (NIR before 1.0.5 has no ``v_reset``: its IF always resets to 0)."""
    if "v_reset" in inspect.signature(nir.IF).parameters:
        return nir.IF(r=ones, v_threshold=ones * threshold, v_reset=0 * ones)
    return nir.IF(r=ones, v_threshold=ones * threshold)


def _synapse_node(nir, layer: Layer | None, weight: float | np.ndarray, in_shape: Shape):
    if layer is None:  # identity branch of a residual add: its weight per neuron
        return nir.Scale(scale=np.asarray(weight, np.float32).reshape(in_shape).copy())
    if isinstance(layer, Conv2d):
        if layer.groups > 1:  # NIR 1.0 infers a conv's input channels from its weight alone
            raise NirError(f"grouped conv '{layer.name}' cannot be exported: NIR takes the weight's input channels "
                           "as the input's")
        return nir.Conv2d(input_shape=np.array(in_shape[1:]), weight=layer.weight.copy(), stride=layer.stride,
                          padding=layer.padding, dilation=1, groups=1, bias=layer.bias.copy())
    if isinstance(layer, Linear):
        return nir.Affine(weight=layer.weight.copy(), bias=layer.bias.copy())
    if isinstance(layer, AvgPool2d):
        if layer.padding or layer.ceil_mode:  # NIR does not say which windows or divisors padding gives
            raise NirError(f"average pooling '{layer.name}' with padding or ceil_mode has no NIR node")
        return nir.AvgPool2d(kernel_size=np.array([layer.kernel_size] * 2), stride=np.array([layer.stride] * 2),
                             padding=np.array([0, 0]))
    raise NirError(f"no NIR node for {type(layer).__name__} '{layer.name}'")


def save_nir(snn: SpikingNetwork, path: str | os.PathLike) -> None:
    """Write the spiking network to a NIR file (HDF5), through a temporary file in the same folder
    renamed over ``path`` when complete: a failed or interrupted write leaves an old file whole."""
    import tempfile

    from eventsnn.atomic import check_writable, final_mode

    check_writable(path)
    graph = to_nir(snn)
    target = os.path.realpath(path)
    handle, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    os.close(handle)
    try:
        _nir().write(tmp, graph)
        os.chmod(tmp, final_mode(target))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# import

def _metadata(graph) -> dict:
    raw = getattr(graph, "metadata", None) or {}
    out = {}
    for key, value in raw.items():
        value = value.decode() if isinstance(value, bytes) else value
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if isinstance(value, np.ndarray):  # every setting eventsnn writes is one number or word
            raise NirError(f"metadata '{key}' must be a single value, not an array of shape {value.shape}")
        out[key] = value.item() if isinstance(value, np.generic) else value
    return out


def _incoming(nodes: dict, edges: list) -> dict[str, list[str]]:
    """Each node's sources, in the order of the edges (one pass over the edges)."""
    incoming: dict[str, list[str]] = {name: [] for name in nodes}
    for a, b in edges:
        if b in incoming:
            incoming[b].append(a)
    return incoming


def _order(nodes: dict, edges: list) -> list[str]:
    """Node names in topological order (inputs first; Kahn's algorithm, in the nodes' order where free)."""
    incoming = _incoming(nodes, edges)
    readers: dict[str, list[str]] = {name: [] for name in nodes}
    for b, sources in incoming.items():
        for a in sources:
            if a in readers:
                readers[a].append(b)
    waiting = {name: sum(a in nodes for a in sources) for name, sources in incoming.items()}
    position = {name: k for k, name in enumerate(nodes)}
    ready = [name for name in nodes if waiting[name] == 0]
    done: list[str] = []
    while ready:
        ready.sort(key=position.__getitem__, reverse=True)
        name = ready.pop()
        done.append(name)
        for b in readers[name]:
            waiting[b] -= 1
            if waiting[b] == 0:
                ready.append(b)
    if len(done) != len(nodes):
        pending = [n for n in nodes if n not in set(done)]
        raise NirError(f"the graph has a cycle through {pending}; recurrent NIR graphs are not supported")
    return done


def _uniform(values: np.ndarray, what: str, name: str) -> float:
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0 or np.any(values != values[0]):
        raise NirError(f"node '{name}': {what} must be the same for every neuron")
    return float(values[0])


def _channel_scale(values: np.ndarray, name: str) -> float | tuple[float, ...]:
    """A Scale node's weight as an add takes it: one number, or one per channel (axis 0)."""
    values = np.asarray(values, np.float64)
    if values.size and np.all(values == values.flat[0]):
        return float(values.flat[0])
    per_channel = values.reshape(len(values), -1) if values.ndim else values.reshape(1, 1)
    if per_channel.size == 0 or np.any(per_channel != per_channel[:, :1]):
        raise NirError(f"node '{name}': the scale must be the same for every neuron, or for every neuron of a channel")
    return tuple(float(c) for c in per_channel[:, 0])


def from_nir(graph) -> ConvertedModel:
    """A NIR graph of the node types ``to_nir`` writes, as a converted model (scales 1: the graph's
    weights are used as they are), with simulation settings from its metadata."""
    nir = _nir()
    nodes, edges = graph.nodes, list(graph.edges)
    incoming = _incoming(nodes, edges)
    inputs = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NirError(f"the graph needs exactly one Input node, found {inputs}")
    input_shape = tuple(int(d) for d in np.asarray(nodes[inputs[0]].input_type["input"]).ravel())
    meta = _metadata(graph)
    layers: list[Layer] = []
    sources: list[tuple[int, ...]] = []
    index = {inputs[0]: -1}  # NIR node -> IR index of its output
    add_weight: dict[str, float | tuple] = {}  # Scale node -> its weight, used by the add it feeds
    thresholds = set()

    def emit(name: str, layer: Layer, srcs: tuple[int, ...]) -> None:
        layers.append(layer)
        sources.append(srcs)
        index[name] = len(layers) - 1

    def single(name: str) -> int:
        if len(incoming[name]) != 1:
            raise NirError(f"node '{name}' must have one input, found {incoming[name]}")
        return index[incoming[name][0]]

    for name in _order(nodes, edges):
        node = nodes[name]
        try:
            if isinstance(node, nir.Input):
                continue
            if isinstance(node, nir.Output):
                continue
            if isinstance(node, nir.Conv2d):
                if node.groups != 1 or any(np.ravel(node.dilation) != 1) or isinstance(node.padding, str):
                    raise NirError("groups, dilation and string padding are not supported")
                stride, padding = np.ravel(node.stride), np.ravel(node.padding)
                if stride[0] != stride[-1] or padding[0] != padding[-1]:
                    raise NirError("stride and padding must be the same in both dimensions")
                emit(name, Conv2d(node.weight, node.bias, int(stride[0]), int(padding[0]), name), (single(name),))
            elif isinstance(node, (nir.Affine, nir.Linear)):
                emit(name, Linear(node.weight, getattr(node, "bias", None), name), (single(name),))
            elif isinstance(node, nir.AvgPool2d):
                kernel, stride = np.ravel(node.kernel_size), np.ravel(node.stride)
                if np.any(np.ravel(node.padding)) or kernel[0] != kernel[-1] or stride[0] != stride[-1]:
                    raise NirError("only square, unpadded average pooling is supported")
                emit(name, AvgPool2d(int(kernel[0]), int(stride[0]), name), (single(name),))
            elif isinstance(node, nir.Flatten):
                src = single(name)
                if len(np.ravel(node.output_type["output"])) != 1:
                    raise NirError("only a flatten of the whole sample is supported")
                emit(name, Flatten(name), (src,))
            elif isinstance(node, nir.Scale):
                add_weight[name] = _channel_scale(node.scale, name)
                index[name] = single(name)  # resolved by the IF node it feeds
            elif isinstance(node, (nir.IF, nir.I)):
                _population(nir, name, node, incoming[name], index, add_weight, layers, emit, thresholds)
            else:
                raise NirError(f"unsupported node type {type(node).__name__}")
        except (NirError, ValueError) as err:
            raise NirError(f"node '{name}': {err}") from None
    if len(thresholds) > 1:
        raise NirError(f"all IF nodes must share one threshold, found {sorted(thresholds)}")
    settings = {k: meta[k] for k in METADATA_KEYS if k in meta}
    for key, value in NIR_MEANING.items():  # what NIR's IF means without our metadata
        settings.setdefault(key, value)
    threshold = thresholds.pop() if thresholds else float(meta.get("threshold", 1.0))
    net = Network(input_shape, tuple(layers), tuple(sources))
    return ConvertedModel(net, tuple(unit_scales(net)), None, SimulationConfig(threshold=threshold, **settings))


def _population(nir, name, node, feeds, index, add_weight, layers, emit, thresholds) -> None:
    """An IF (or output I) node: the synapse layers feeding it become an add if several, then a relu."""
    if isinstance(node, nir.IF):
        thresholds.add(_uniform(node.v_threshold, "v_threshold", name))
        if np.any(np.asarray(getattr(node, "v_reset", 0)) != 0) or np.any(np.asarray(node.r) != 1):
            raise NirError("IF nodes need r = 1 and v_reset = 0")
    elif np.any(np.asarray(node.r) != 1):
        raise NirError("I nodes need r = 1")
    if not feeds:
        raise NirError("a neuron node needs at least one input")
    if len(feeds) == 1 and feeds[0] not in add_weight:
        src = index[feeds[0]]
        if src < 0 or not isinstance(layers[src], (Conv2d, Linear, AvgPool2d)):
            raise NirError("a neuron node must be fed by Conv2d, Affine, Linear or AvgPool2d nodes")
        if isinstance(node, nir.IF) and not isinstance(layers[src], AvgPool2d):
            emit(name, ReLU(name), (src,))
        else:
            index[name] = src  # avg-pool populations and the output layer carry no activation in the IR
        return
    weights = tuple(add_weight.get(f, 1.0) for f in feeds)
    emit(f"{name}.add", Add(f"{name}.add", weights), tuple(index[f] for f in feeds))
    emit(name, ReLU(name), (len(layers) - 1,))


def _check_declared_sizes(path: str | os.PathLike) -> None:
    """Refuse a file whose HDF5 datasets declare more than the memory limit (a dataset can be declared
    huge and never written: reading it would materialize its fill value)."""
    from eventsnn import memory

    try:
        import h5py

        sizes = []
        with h5py.File(os.fspath(path), "r") as f:
            f.visititems(lambda name, item: sizes.append(item.size * item.dtype.itemsize)
                         if isinstance(item, h5py.Dataset) and item.shape is not None else None)
    except Exception as err:  # h5py raises many kinds on a damaged file, as nir.read below
        raise _unreadable(path, err) from None
    memory.check(sum(sizes), f"reading the NIR file {path} (its datasets' declared sizes)")


def _unreadable(path, err: Exception) -> NirError:
    """One line, however long the reader's message (nir's type errors print whole arrays)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return NirError(f"{path}: cannot read NIR file ({text[:300]}{' ...' if len(text) > 300 else ''})")


def load_nir(path: str | os.PathLike) -> ConvertedModel:
    """Read a NIR file (HDF5) as a converted model (see ``from_nir``)."""
    nir = _nir()
    _check_declared_sizes(path)
    try:
        graph = nir.read(os.fspath(path))
    except Exception as err:  # h5py and nir raise many kinds; report any unreadable file the same way
        raise _unreadable(path, err) from None
    try:
        return from_nir(graph)
    except NirError as err:
        raise NirError(f"{path}: {err}") from None
