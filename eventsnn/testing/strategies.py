"""Hypothesis strategies for IR networks, their specs and checkpoints, inputs and simulation settings.

Every network drawn here builds and simulates. Sizes are bounded by the parameters, and the draws
are structural (the number of blocks, each layer's size, each weight), so a failing example
shrinks to a small net with few non-zero weights. With ``dyadic=True`` (the default) weights are
multiples of 1/64, biases of 1/16, inputs of 1/16 and thresholds powers of two: every sum the
simulators form is exact in float32, so spike trains of two correct simulators are equal and
can be compared with ``==`` (``eventsnn.testing.assert_same_spikes``).

    from hypothesis import given
    from eventsnn.testing import strategies as es

    @given(es.networks_and_inputs(), es.simulation_configs())
    def test_my_simulator(net_x, config): ...
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

try:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("eventsnn.testing.strategies needs hypothesis: pip install hypothesis (or, in the eventsnn "
                      "checkout, pip install -e '.[testing]')") from err

from ..ir import QCFS, Add, AvgPool2d, Channels, ClipReLU, Concat, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, Softmax
from ..snn import AVG_POOLS, IF, INPUTS, OUTPUTS, RESETS, SHIFTS, SimulationConfig, SpikingNetwork

__all__ = ["fixed_sample", "weights", "networks", "chain_networks", "residual_networks", "concat_networks",
           "shuffle_networks", "signed_networks", "inputs", "networks_and_inputs",
           "simulation_configs", "initial_potentials", "batchnorm_networks", "specs_and_state_dicts", "ACTIVATION_KINDS", "POOL_KINDS"]

ACTIVATION_KINDS = ("relu", "clip_relu", "qcfs")
POOL_KINDS = ("maxpool", "avgpool")
WEIGHT_DENOMINATOR, BIAS_DENOMINATOR, INPUT_DENOMINATOR = 64, 16, 16


def weights(shape: tuple[int, ...], dyadic: bool = True, denominator: int = WEIGHT_DENOMINATOR,
            limit: int = 64) -> st.SearchStrategy[np.ndarray]:
    """float32 arrays of ``shape``: k / denominator with |k| <= limit (dyadic), else floats in
    [-limit/denominator, limit/denominator]. Both shrink towards zero."""
    if dyadic:
        return arrays(np.int16, shape, elements=st.integers(-limit, limit)).map(
            lambda k: k.astype(np.float32) / np.float32(denominator))
    bound = limit / denominator
    return arrays(np.float32, shape, elements=st.floats(-bound, bound, width=32, allow_subnormal=False))


def _bias(n: int, dyadic: bool) -> st.SearchStrategy[np.ndarray]:
    return weights((n,), dyadic, BIAS_DENOMINATOR, 16)


@st.composite
def _activation(draw, kinds: Sequence[str], name: str, dyadic: bool):
    kind = draw(st.sampled_from(kinds))
    if kind == "relu":
        return ReLU(name)
    threshold = draw(st.sampled_from([1.0, 0.5, 2.0]) if dyadic else st.floats(0.25, 4.0))
    if kind == "clip_relu":
        return ClipReLU(threshold, name)
    return QCFS(draw(st.sampled_from([1, 2, 4, 8])), threshold, name)


def _check_kinds(activations: Sequence[str], pools: Sequence[str]) -> None:
    if not activations or set(activations) - set(ACTIVATION_KINDS):
        raise ValueError(f"activations must be a non-empty subset of {ACTIVATION_KINDS}, not {activations!r}")
    if set(pools) - set(POOL_KINDS):
        raise ValueError(f"pools must be a subset of {POOL_KINDS}, not {pools!r}")


@st.composite
def _pool(draw, kind: str, shape: tuple[int, int, int], name: str, options: bool = True) -> MaxPool2d | AvgPool2d:
    """A pooling layer with PyTorch's options (padding, ceil mode; dilation for max, whether the
    padding counts for avg) that fits ``shape``; without ``options`` a plain 2x2 one of stride 2
    (max: 1 or 2). Average pools keep 2x2 windows, so that every divisor (1, 2 or 4) is a power of
    two and dyadic weights stay exact."""
    if not options:
        return MaxPool2d(2, draw(st.integers(1, 2)), name) if kind == "maxpool" else AvgPool2d(2, 2, name)
    k = 2 if kind == "avgpool" else draw(st.integers(2, 3))
    options = dict(stride=draw(st.integers(1, k)), padding=draw(st.integers(0, k // 2)), ceil_mode=draw(st.booleans()))
    if kind == "maxpool":
        options["dilation"] = draw(st.integers(1, 2))
    else:
        options["count_include_pad"] = draw(st.booleans())
    layer = (MaxPool2d if kind == "maxpool" else AvgPool2d)(k, name=name, **options)
    try:
        layer.output_shape(shape)
        return layer
    except ValueError:  # the window does not fit this map: a plain 2x2 one does
        return (MaxPool2d if kind == "maxpool" else AvgPool2d)(2, 2, name)


@st.composite
def chain_networks(draw, max_conv: int = 2, max_dense: int = 1, max_channels: int = 3, min_size: int = 4,
                   max_size: int = 8, max_outputs: int = 5, activations: Sequence[str] = ("relu",),
                   pools: Sequence[str] = POOL_KINDS, softmax: bool | None = None, dyadic: bool = True,
                   pool_options: bool = True) -> Network:
    """A chain: [conv - activation - [pool]] x 0..max_conv - flatten - [linear - activation] x
    0..max_dense - linear [- softmax]. Images are (1..max_channels, min_size..max_size, ...);
    without conv blocks the input may also be a vector. Convs may be grouped or depthwise; pools
    have PyTorch's options unless ``pool_options=False``. ``softmax=None`` draws whether the net
    ends in a softmax."""
    _check_kinds(activations, pools)
    n_conv = draw(st.integers(0, max_conv))
    image = n_conv > 0 or draw(st.booleans())
    c = draw(st.integers(1, max_channels))
    if image:
        shape: tuple[int, ...] = (c, draw(st.integers(min_size, max_size)), draw(st.integers(min_size, max_size)))
    else:
        shape = (draw(st.integers(1, max_size)),)
    input_shape, layers = shape, []
    for block in range(n_conv):
        k = draw(st.integers(1, 3))
        stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        if (min(shape[1:]) + 2 * padding - k) // stride + 1 < 2:
            stride, padding = 1, 1
        out_c = draw(st.integers(1, max_channels) | st.just(shape[0]))
        groups = draw(st.sampled_from([g for g in range(1, shape[0] + 1) if shape[0] % g == 0 and out_c % g == 0]))
        conv = Conv2d(draw(weights((out_c, shape[0] // groups, k, k), dyadic)), draw(_bias(out_c, dyadic)), stride,
                      padding, f"conv{block}", groups)
        layers += [conv, draw(_activation(activations, f"act{block}", dyadic))]
        shape = conv.output_shape(shape)
        pool = draw(st.sampled_from((None,) + tuple(pools))) if min(shape[1:]) >= 2 else None
        if pool is not None:
            layer = draw(_pool(pool, shape, f"pool{block}", pool_options))
            layers.append(layer)
            shape = layer.output_shape(shape)
    if len(shape) == 3:
        layers.append(Flatten("flatten"))
    features = int(np.prod(shape))
    for i in range(draw(st.integers(0, max_dense))):
        hidden = draw(st.integers(1, 8))
        layers += [Linear(draw(weights((hidden, features), dyadic)), draw(_bias(hidden, dyadic)), f"fc{i}"),
                   draw(_activation(activations, f"fc_act{i}", dyadic))]
        features = hidden
    n_out = draw(st.integers(2, max_outputs))
    layers.append(Linear(draw(weights((n_out, features), dyadic)), draw(_bias(n_out, dyadic)), "out"))
    if softmax if softmax is not None else draw(st.booleans()):
        layers.append(Softmax("softmax"))
    return Network(input_shape, tuple(layers))


@st.composite
def residual_networks(draw, max_channels: int = 3, min_size: int = 4, max_size: int = 6, max_outputs: int = 4,
                      activations: Sequence[str] = ("relu",), pools: Sequence[str] = POOL_KINDS,
                      dyadic: bool = True, pool_options: bool = True) -> Network:
    """conv - act - conv - act - conv - add(skip) - act [- pool] - flatten - linear, the skip
    being the first activation (identity), a 1x1 conv of it (projection shortcut) or the network
    input; the add's branch weights are 1, or multiples of 1/4: one per branch or one per channel."""
    _check_kinds(activations, pools)
    skip = draw(st.sampled_from(("identity", "conv", "input")))
    c = draw(st.integers(1, max_channels))
    h, w = draw(st.integers(min_size, max_size)), draw(st.integers(min_size, max_size))
    width = c if skip == "input" else draw(st.integers(1, max_channels))

    def conv(name: str, c_in: int, k: int = 3) -> Conv2d:
        return Conv2d(draw(weights((width, c_in, k, k), dyadic, limit=32)),
                      draw(_bias(width, dyadic)), 1, k // 2, name)

    def act(name: str):
        return draw(_activation(activations, name, dyadic))

    layers = [conv("conv0", c), act("act0"), conv("conv1", width), act("act1"), conv("conv2", width)]
    inputs = [(-1,), (0,), (1,), (2,), (3,)]
    if skip == "conv":
        layers.append(conv("shortcut", width, 1))
        inputs.append((1,))
    skip_from = {"identity": 1, "conv": 5, "input": -1}[skip]
    quarters = st.integers(1, 8).map(lambda k: k / 4)
    branch_weight = quarters | st.tuples(*[quarters] * width)  # one, or one per channel
    branch_weights = draw(st.none() | st.tuples(branch_weight, branch_weight))
    layers += [Add("add", branch_weights), act("act2")]
    inputs += [(4, skip_from), (len(layers) - 2,)]
    shape: tuple[int, ...] = (width, h, w)
    pool = draw(st.sampled_from((None,) + tuple(pools)))
    if pool is not None:
        layer = draw(_pool(pool, shape, "pool", pool_options))
        layers.append(layer)
        inputs.append((len(layers) - 2,))
        shape = layer.output_shape(shape)
    n_out = draw(st.integers(2, max_outputs))
    layers += [Flatten("flatten"), Linear(draw(weights((n_out, int(np.prod(shape))), dyadic)),
                                          draw(_bias(n_out, dyadic)), "fc")]
    inputs += [(len(layers) - 3,), (len(layers) - 2,)]
    return Network((c, h, w), tuple(layers), tuple(inputs))


class _Graph:
    """Layers and the layers each reads, added in order (for strategies that draw branching graphs)."""

    def __init__(self):
        self.layers, self.inputs = [], []

    def add(self, layer, *sources: int) -> int:
        self.layers.append(layer)
        self.inputs.append(sources)
        return len(self.layers) - 1

    def network(self, input_shape: tuple[int, ...]) -> Network:
        return Network(input_shape, tuple(self.layers), tuple(self.inputs))


@st.composite
def concat_networks(draw, max_channels: int = 3, min_size: int = 4, max_size: int = 6, max_outputs: int = 4,
                    activations: Sequence[str] = ("relu",), dyadic: bool = True) -> Network:
    """An Inception-style block: conv - act, then 2-3 branches (conv - act, or a padded 3x3 max-pool
    of stride 1 then conv - act) joined by a channel concat, then [pool] - conv - act - flatten -
    linear, or flatten - linear. ``rewrite.resolve_concats`` turns it into a network the SNN
    builder takes."""
    c = draw(st.integers(1, max_channels))
    h, w = draw(st.integers(min_size, max_size)), draw(st.integers(min_size, max_size))
    graph = _Graph()
    add = graph.add

    def conv_act(name: str, c_in: int, source: int) -> tuple[int, int]:
        width, k = draw(st.integers(1, max_channels)), draw(st.sampled_from([1, 3]))
        conv = Conv2d(draw(weights((width, c_in, k, k), dyadic)), draw(_bias(width, dyadic)), 1, k // 2, name)
        return add(draw(_activation(activations, f"{name}.act", dyadic)), add(conv, source)), width

    stem, width = conv_act("stem", c, -1)
    branches, widths = [], []
    for b in range(draw(st.integers(2, 3))):
        source = stem
        if b == 0 and draw(st.booleans()):  # the pooling branch (one gate per population)
            source = add(MaxPool2d(3, 1, f"branch{b}.pool", padding=1), stem)
        out, branch_width = conv_act(f"branch{b}", width, source)
        branches.append(out)
        widths.append(branch_width)
    x = add(Concat("concat"), *branches)
    shape: tuple[int, ...] = (sum(widths), h, w)
    if draw(st.booleans()):
        pool = draw(_pool(draw(st.sampled_from(POOL_KINDS)), shape, "pool"))
        x, shape = add(pool, x), pool.output_shape(shape)
    if draw(st.booleans()):
        x, out_c = conv_act("head", shape[0], x)
        shape = (out_c,) + shape[1:]
    x = add(Flatten("flatten"), x)
    n_out = draw(st.integers(2, max_outputs))
    add(Linear(draw(weights((n_out, int(np.prod(shape))), dyadic)), draw(_bias(n_out, dyadic)), "fc"), x)
    return graph.network((c, h, w))


@st.composite
def shuffle_networks(draw, max_channels: int = 4, min_size: int = 4, max_size: int = 6, max_outputs: int = 4,
                     activations: Sequence[str] = ("relu",), dyadic: bool = True) -> Network:
    """A ShuffleNet-style unit: conv - act, its channels split in two (``Channels``: any two
    disjoint subsets, in any order), one part through conv - act (and optionally the other through
    a depthwise conv without activation then conv - act), the parts concatenated and shuffled (a
    random permutation), then one of: conv - act, depthwise conv - act, max-pool, or nothing;
    flatten - linear. ``rewrite.resolve_concats`` turns it into a network the SNN builder takes."""
    c = draw(st.integers(1, max_channels))
    h, w = draw(st.integers(min_size, max_size)), draw(st.integers(min_size, max_size))
    graph = _Graph()
    add = graph.add

    def conv_act(name: str, c_in: int, source: int, groups: int = 1, act: bool = True,
                 out: int | None = None) -> tuple[int, int]:
        width = out or (c_in * draw(st.integers(1, 2)) if groups > 1 else draw(st.integers(1, max_channels)))
        k = 3 if groups > 1 else draw(st.sampled_from([1, 3]))
        conv = add(Conv2d(draw(weights((width, c_in // groups, k, k), dyadic)), draw(_bias(width, dyadic)), 1, k // 2,
                          name, groups), source)
        return (add(draw(_activation(activations, f"{name}.act", dyadic)), conv) if act else conv), width

    stem, width = conv_act("stem", c, -1)
    if width < 2:  # a split needs two channels
        stem, width = conv_act("widen", width, stem, out=2)
    order = draw(st.permutations(range(width)))
    cut = draw(st.integers(1, width - 1))
    first, first_width = add(Channels(np.array(order[:cut]), "split0"), stem), cut
    second = add(Channels(np.array(order[cut:]), "split1"), stem)
    if draw(st.booleans()):  # ShuffleNet's other branch: a depthwise conv without activation, then conv - act
        first, first_width = conv_act("branch0.dw", first_width, first, groups=first_width, act=False)
        first, first_width = conv_act("branch0", first_width, first)
    branch, branch_width = conv_act("branch1", width - cut, second)
    total = first_width + branch_width
    x = add(Channels(np.array(draw(st.permutations(range(total)))), "shuffle"), add(Concat("concat"), first, branch))
    shape: tuple[int, ...] = (total, h, w)
    head = draw(st.sampled_from(["conv", "depthwise", "maxpool", "none"]))
    if head == "conv":
        x, out_c = conv_act("head", total, x)
        shape = (out_c, h, w)
    elif head == "depthwise":
        x, out_c = conv_act("head", total, x, groups=total)
        shape = (out_c, h, w)
    elif head == "maxpool":
        pool = MaxPool2d(2, 2, "pool")
        x, shape = add(pool, x), pool.output_shape(shape)
    x = add(Flatten("flatten"), x)
    n_out = draw(st.integers(2, max_outputs))
    add(Linear(draw(weights((n_out, int(np.prod(shape))), dyadic)), draw(_bias(n_out, dyadic)), "fc"), x)
    return graph.network((c, h, w))


@st.composite
def signed_networks(draw, max_channels: int = 3, min_size: int = 4, max_size: int = 6, max_outputs: int = 4,
                    dyadic: bool = True) -> Network:
    """Layers without an activation of their own, as MobileNetV2 has them: conv - relu, then a conv
    with no activation (the linear bottleneck) that an add sums with the relu's output (the add too
    without activation, or with a relu), then conv - relu or conv -> conv, [average pool], flatten,
    linear [- linear, a linear layer without activation before the output]. ``rewrite.split_signed``
    turns it into a network the SNN builder takes."""
    c = draw(st.integers(1, max_channels))
    h, w = draw(st.integers(min_size, max_size)), draw(st.integers(min_size, max_size))
    graph = _Graph()
    add = graph.add

    def conv(name: str, c_in: int, c_out: int, source: int) -> int:
        k = draw(st.sampled_from([1, 3]))
        return add(Conv2d(draw(weights((c_out, c_in, k, k), dyadic)), draw(_bias(c_out, dyadic)), 1, k // 2, name),
                   source)

    width = draw(st.integers(1, max_channels))
    stem = add(ReLU("stem.act"), conv("stem", c, width, -1))
    x = add(Add("residual"), conv("bottleneck", width, width, stem), stem)
    if draw(st.booleans()):
        x = add(ReLU("residual.act"), x)
    out_c = draw(st.integers(1, max_channels))
    x = conv("head", width, out_c, x)
    if draw(st.booleans()):
        x = add(ReLU("head.act"), x)
    shape: tuple[int, ...] = (out_c, h, w)
    if draw(st.booleans()):
        x, shape = add(AvgPool2d(2, 2, "pool"), x), (out_c, h // 2, w // 2)
    x = add(Flatten("flatten"), x)
    features = int(np.prod(shape))
    if draw(st.booleans()):
        hidden = draw(st.integers(1, 6))
        x = add(Linear(draw(weights((hidden, features), dyadic)), draw(_bias(hidden, dyadic)), "fc0"), x)
        features = hidden
    n_out = draw(st.integers(2, max_outputs))
    add(Linear(draw(weights((n_out, features), dyadic)), draw(_bias(n_out, dyadic)), "fc"), x)
    return graph.network((c, h, w))


def networks(residual: bool | None = None, dyadic: bool = True, activations: Sequence[str] = ("relu",),
             pools: Sequence[str] = POOL_KINDS, pool_options: bool = True) -> st.SearchStrategy[Network]:
    """Chains (``residual=False``), residual graphs (``True``) or either (``None``)."""
    chains = chain_networks(activations=activations, pools=pools, dyadic=dyadic, pool_options=pool_options)
    graphs = residual_networks(activations=activations, pools=pools, dyadic=dyadic, pool_options=pool_options)
    return chains if residual is False else graphs if residual else chains | graphs


def inputs(net: Network, min_samples: int = 1, max_samples: int = 4, dyadic: bool = True,
           zeros: float = 0.3) -> st.SearchStrategy[np.ndarray]:
    """(N, *input_shape) float32 intensities in [0, 1]: j/16 (dyadic) or any float; entries are
    zero with probability ``zeros`` (as in images with a background)."""
    if not 0 <= zeros < 1:
        raise ValueError(f"zeros is a probability in [0, 1), not {zeros}")

    @st.composite
    def draw_inputs(draw):
        n = draw(st.integers(min_samples, max_samples))
        shape = (n,) + net.input_shape
        if dyadic:
            x = draw(arrays(np.int8, shape, elements=st.integers(0, INPUT_DENOMINATOR))).astype(np.float32)
            x /= np.float32(INPUT_DENOMINATOR)
        else:
            x = draw(arrays(np.float32, shape, elements=st.floats(0, 1, width=32)))
        keep = draw(arrays(np.float32, shape, elements=st.floats(0, 1, width=32))) >= zeros
        return np.where(keep, x, np.float32(0))

    return draw_inputs()


@st.composite
def networks_and_inputs(draw, residual: bool | None = None, dyadic: bool = True,
                        activations: Sequence[str] = ("relu",), pools: Sequence[str] = POOL_KINDS,
                        min_samples: int = 1, max_samples: int = 4, pool_options: bool = True) -> tuple[Network, np.ndarray]:
    """A network and a batch of inputs that fit it."""
    net = draw(networks(residual, dyadic, activations, pools, pool_options))
    return net, draw(inputs(net, min_samples, max_samples, dyadic))


@st.composite
def simulation_configs(draw, spikes: Sequence[str] = ("binary", "graded"), resets: Sequence[str] = RESETS,
                       input_modes: Sequence[str] = INPUTS, outputs: Sequence[str] = OUTPUTS,
                       shifts: Sequence[str] = SHIFTS, max_spikes: int = 5,
                       avg_pools: Sequence[str] = AVG_POOLS, arithmetics: Sequence[str] = ("float32",),
                       corrections: Sequence[str] = ("none",)) -> SimulationConfig:
    """Valid simulation settings drawn from the given choices (graded spikes get levels <= max_spikes).
    int32 arithmetic (``fixed_point``) makes every sum exact on any weights, not only dyadic ones."""
    mode = draw(st.sampled_from(spikes))
    levels = draw(st.sampled_from([v for v in (1, 2, 4) if v <= max_spikes])) if mode == "graded" else 1
    return SimulationConfig(
        reset=draw(st.sampled_from(resets)), input=draw(st.sampled_from(input_modes)),
        output=draw(st.sampled_from(outputs)), shift=draw(st.sampled_from(shifts)),
        maxpool_decay=draw(st.sampled_from([1.0, 0.75, 0.5])), softmax_rate=0.75, spikes=mode,
        max_spikes=draw(st.integers(levels, max_spikes)), levels=levels, avg_pool=draw(st.sampled_from(avg_pools)),
        arithmetic=draw(st.sampled_from(arithmetics)), correction=draw(st.sampled_from(corrections)))


@st.composite
def initial_potentials(draw, snn: SpikingNetwork, dyadic: bool = True) -> SpikingNetwork:
    """``snn`` with a calibrated V(0) offset on some of its IF populations (what
    ``convert --calibrate potential`` gives), between -1.5 and 2.25 thresholds; with offsets of
    2.25 a population starts above its threshold and fires before any input arrives. Dyadic:
    multiples of a quarter threshold."""
    stages = []
    for stage in snn.stages:
        if stage.kind != IF or not draw(st.booleans()):
            stages.append(stage)
            continue
        values = st.sampled_from([-1.5, -0.25, 0.0, 0.5, 1.0, 2.25]) if dyadic else \
            st.floats(-1.5, 2.25, width=32)
        offsets = draw(st.lists(values, min_size=stage.size, max_size=stage.size))
        stages.append(dataclasses.replace(stage, potential=np.float32(snn.config.threshold) * np.float32(offsets)))
    return dataclasses.replace(snn, stages=tuple(stages))


@st.composite
def batchnorm_networks(draw, residual: bool | None = None, activations: Sequence[str] = ("relu",),
                       pools: Sequence[str] = POOL_KINDS) -> Network:
    """Networks (float weights) with a batch-norm of random statistics between every affine layer
    and its activation, as trained nets come: for testing folding and loaders."""
    from ..ir import ACTIVATIONS, BatchNorm

    net = draw(networks(residual, dyadic=False, activations=activations, pools=pools))
    layers, inputs, moved = [], [], {}  # moved: old index -> new index of what consumers read
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        inputs.append(tuple(moved.get(j, j) for j in sources))
        layers.append(layer)
        moved[i] = len(layers) - 1
        readers = net.consumers(i)
        if isinstance(layer, (Conv2d, Linear)) and len(readers) == 1 and isinstance(net.layers[readers[0]], ACTIVATIONS):
            n = layer.weight.shape[0]
            positive, centred = st.floats(0.25, 2.0, width=32), st.floats(-1, 1, width=32)
            gamma, beta, mean, var = (draw(arrays(np.float32, n, elements=e)) for e in (positive, centred, centred,
                                                                                          positive))
            layers.append(BatchNorm(gamma, beta, mean, var, 1e-5, f"{layer.name}_bn"))
            inputs.append((len(layers) - 2,))
            moved[i] = len(layers) - 1
    return Network(net.input_shape, tuple(layers), tuple(inputs))


@st.composite
def specs_and_state_dicts(draw, residual: bool | None = None, batchnorm: bool = True,
                          activations: Sequence[str] = ACTIVATION_KINDS) -> tuple[dict, dict[str, np.ndarray]]:
    """An architecture spec (as ``eventsnn convert --arch`` reads) and the state_dict that
    matches it (name -> float32 array, as a PyTorch checkpoint holds), with batch-norm layers
    (``batchnorm=True``) or without: for testing a loader end to end."""
    from ..spec import network_to_spec

    if batchnorm:
        return network_to_spec(draw(batchnorm_networks(residual, activations)))
    return network_to_spec(draw(networks(residual, dyadic=False, activations=activations)))


def fixed_sample(strategy: st.SearchStrategy, n: int) -> list:
    """n draws of ``strategy``, the same on every run (derandomized, no example database): for
    scripts and for guards that look at a spread of draws rather than at one counterexample."""
    drawn: list = []

    @settings(max_examples=n, database=None, derandomize=True, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value):
        drawn.append(value)

    collect()
    return drawn
