"""Graph rewrites that keep the function exactly (up to float rounding), rebuilding the graph layer
by layer (``_Rebuilt``). Run by ``model.convert`` after batch-norm folding, to give every value a
spiking population: channel concatenations are resolved into their parts (``resolve_concats``),
and the signed values of layers without an activation of their own are split into positive and
negative parts (``split_signed``). Run by ``snn.build_spiking``, to spare populations that would
only lose precision: average poolings are absorbed by the layers that read them
(``fold_avgpools``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from .connectivity import avgpool_csr
from .convert import output_layer
from .ir import (ACTIVATIONS, AFFINE, QCFS, Add, AvgPool2d, BatchNorm, Channels, ClipReLU, Concat, Conv2d, Flatten, Linear,
                 MaxPool2d, Network, ReLU)


PER_CHANNEL = (ReLU, ClipReLU, QCFS, MaxPool2d, AvgPool2d, Flatten, BatchNorm)  # act on each channel alone


def resolve_concats(net: Network) -> Network:
    """The same function without channel concatenations and channel gathers (``Channels``: splits
    and shuffles), which no population can be. A value is tracked as segments: its channels ``at``
    are the channels ``of`` of a layer of the new graph. A layer that acts on each channel alone
    (activation, pooling, batch-norm, flatten) is applied to each part; a conv or linear layer
    becomes one layer per part (the columns of its weight that part feeds, zero elsewhere) summed by
    an add, which is one population with a projection per part (as a residual add's branches); a
    depthwise conv filters each part with the filters of its channels. So the parts keep their own
    populations and scales, and routing channels costs nothing at run time."""
    if not any(isinstance(layer, (Concat, Channels)) for layer in net.layers):
        return net
    graph = _Rebuilt(net.input_shape)
    values: dict[int, list[_Segment]] = {-1: graph.whole(-1)}  # old layer -> the segments holding its channels
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        inputs = [values[j] for j in sources]
        if isinstance(layer, Concat):
            values[i] = _concatenated(inputs, [(net.input_shape if j < 0 else net.shapes[j])[0] for j in sources])
        elif isinstance(layer, Channels):
            values[i] = _gathered(inputs[0], layer.index)
        elif all(graph.is_whole(value) for value in inputs):
            values[i] = graph.whole(graph.emit(layer, [value[0].part for value in inputs]))
        elif len(inputs) == 1 and isinstance(layer, PER_CHANNEL):
            values[i] = graph.per_part(layer, inputs[0])
        elif len(inputs) == 1 and isinstance(layer, AFFINE) and getattr(layer, "groups", 1) == 1:
            values[i] = graph.whole(graph.split_affine(layer, inputs[0]))
        elif len(inputs) == 1 and isinstance(layer, Conv2d) and layer.groups == net.input_shape_of(i)[0]:
            values[i] = graph.depthwise_per_part(layer, inputs[0])
        else:
            raise ValueError(f"{type(layer).__name__} '{layer.name}' reads concatenated or rearranged channels, which it "
                             "cannot be split over (supported: activations, pools, batch-norm, flatten, conv, depthwise "
                             "conv and linear layers)")
    if not graph.is_whole(values[len(net.layers) - 1]):
        raise ValueError("the network's output is a concatenation or a channel rearrangement: end it with a conv or "
                         "linear layer")
    return graph.network()


@dataclasses.dataclass(frozen=True)
class _Segment:
    """Channels ``at`` of a value are channels ``of`` of new layer ``part`` (features, for vectors)."""

    part: int
    at: np.ndarray
    of: np.ndarray


def _merged(segments: list[_Segment]) -> list[_Segment]:
    """One segment per part, in order of first appearance."""
    by_part: dict[int, list[_Segment]] = {}
    for seg in segments:
        by_part.setdefault(seg.part, []).append(seg)
    return [_Segment(part, np.concatenate([s.at for s in group]), np.concatenate([s.of for s in group]))
            for part, group in by_part.items()]


def _concatenated(inputs: list[list[_Segment]], widths: list[int]) -> list[_Segment]:
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]])
    return _merged([_Segment(seg.part, seg.at + offset, seg.of) for value, offset in zip(inputs, offsets)
                    for seg in value])


def _gathered(value: list[_Segment], index: np.ndarray) -> list[_Segment]:
    """Output channel c is the value's channel index[c]."""
    width = sum(len(seg.at) for seg in value)
    part, of = np.empty(width, np.int64), np.empty(width, np.int64)
    for seg in value:
        part[seg.at], of[seg.at] = seg.part, seg.of
    return _merged([_Segment(int(p), np.flatnonzero(part[index] == p), of[index][part[index] == p])
                    for p in dict.fromkeys(part[index].tolist())])


def _spread(channels: np.ndarray, per_channel: int) -> np.ndarray:
    """Channel indices to the indices of their ``per_channel`` consecutive units each."""
    return (channels[:, None] * per_channel + np.arange(per_channel)).ravel()


def split_signed(net: Network) -> Network:
    """The same function where every conv, linear or add layer without an activation of its own
    (MobileNetV2's linear bottleneck, an add that no ReLU follows, conv -> conv) carries its signed
    value z as two populations, relu(z) and relu(-z): z = relu(z) - relu(-z) exactly, and IF
    neurons only carry what is positive. A layer reading z reads the first with its weights and
    the second with them negated; an add reading z takes both as identity branches (weights w and
    -w); a ReLU of z is the first part itself. Average pooling and flatten apply to each part; a
    max-pool or a clipped activation of z is refused (max(z) is not max(relu(z)) - max(relu(-z)))."""
    output = output_layer(net)
    signed = {i for i, layer in enumerate(net.layers) if i != output and _without_activation(net, i)}
    if not signed:
        return net
    graph = _Rebuilt(net.input_shape)
    value: dict[int, list[tuple[int, float]]] = {-1: [(-1, 1.0)]}  # old layer -> terms (new layer, sign) summed
    pending: dict[int, list[_Term]] = {}  # affine branches of an add, built with the add
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        if isinstance(layer, AFFINE):
            terms = [_Term(layer, j, sign, k == 0) for k, (j, sign) in enumerate(value[sources[0]])]
            if i not in signed and [type(r) for r in map(net.layers.__getitem__, net.consumers(i))] == [Add]:
                pending[i] = terms
                continue
        elif isinstance(layer, Add):
            terms = []
            for source, weight in zip(sources, layer.input_weights(len(sources))):
                terms += [t.times(weight) for t in pending.pop(source)] if source in pending else \
                    [_Term(None, j, sign * np.asarray(weight, np.float64)) for j, sign in value[source]]
        else:
            value[i] = _signed_pass_through(graph, layer, value[sources[0]], net.layers[sources[0]].name)
            continue
        if i in signed:
            positive = graph.emit(ReLU(f"{layer.name}.pos"), [graph.population(terms, layer.name)])
            negative = graph.emit(ReLU(f"{layer.name}.neg"),
                                  [graph.population([t.times(-1.0) for t in terms], f"{layer.name}.negated")])
            value[i] = [(positive, 1.0), (negative, -1.0)]
        else:
            value[i] = [(graph.population(terms, layer.name), 1.0)]
    return graph.network()


def _without_activation(net: Network, i: int) -> bool:
    """Whether layer i is a conv, linear or add layer whose value is signed: not read by one
    activation alone, and (for conv or linear) not only a branch of an add."""
    layer, readers = net.layers[i], [net.layers[c] for c in net.consumers(i)]
    if not isinstance(layer, AFFINE + (Add,)):
        return False
    if len(readers) == 1 and isinstance(readers[0], ACTIVATIONS + ((Add,) if isinstance(layer, AFFINE) else ())):
        return False
    return True


def _signed_pass_through(graph: "_Rebuilt", layer, terms: list[tuple[int, float]], source: str) -> list[tuple[int, float]]:
    """A layer that is not a population, applied to a value made of signed parts."""
    if len(terms) == 1 and np.all(terms[0][1] == 1):
        return [(graph.emit(layer, [terms[0][0]]), 1.0)]
    if isinstance(layer, ReLU):  # relu(relu(z) - relu(-z)) = relu(z)
        return [(j, sign) for j, sign in terms if np.all(np.asarray(sign) > 0)]
    if isinstance(layer, (AvgPool2d, Flatten)):  # linear: apply to each part
        return [(graph.emit(dataclasses.replace(layer, name=f"{layer.name}.{k}"), [j]), sign)
                for k, (j, sign) in enumerate(terms)]
    raise ValueError(f"{type(layer).__name__} '{layer.name}' reads '{source}', which has no activation of its own; "
                     "eventsnn can carry such a signed value through linear layers, adds, average pooling and "
                     "flatten, not through this layer")


@dataclasses.dataclass(frozen=True)
class _Term:
    """sign * layer(x_source) (+ the layer's bias if ``bias``), or sign * x_source where layer is None."""

    layer: Conv2d | Linear | None
    source: int
    sign: float | np.ndarray  # a number, or one per output channel
    bias: bool = False

    def times(self, factor) -> "_Term":
        return dataclasses.replace(self, sign=self.sign * np.asarray(factor, np.float64))


class _Rebuilt:
    """A network built layer by layer, with shapes known as it grows (for ``resolve_concats``)."""

    def __init__(self, input_shape: tuple[int, ...]):
        self.input_shape, self.layers, self.inputs, self.shapes = input_shape, [], [], []

    def shape(self, index: int) -> tuple[int, ...]:
        return self.input_shape if index < 0 else self.shapes[index]

    def emit(self, layer, sources: list[int]) -> int:
        self.shapes.append(layer.output_shape(*(self.shape(j) for j in sources)))
        self.layers.append(layer)
        self.inputs.append(tuple(sources))
        return len(self.layers) - 1

    def whole(self, part: int) -> list[_Segment]:
        every = np.arange(self.shape(part)[0])
        return [_Segment(part, every, every)]

    def is_whole(self, value: list[_Segment]) -> bool:
        """Whether a value is one new layer's output, all of it in order."""
        if len(value) != 1:
            return False
        seg, width = value[0], self.shape(value[0].part)[0]
        return len(seg.at) == width and np.array_equal(seg.at, np.arange(width)) and np.array_equal(seg.of, seg.at)

    def per_part(self, layer, value: list[_Segment]) -> list[_Segment]:
        """``layer`` applied to each part on its own (batch-norm with that part's channels; flatten
        turns channels into their features)."""
        out = []
        for k, seg in enumerate(value):
            piece = dataclasses.replace(layer, name=f"{layer.name}.{k}")
            if isinstance(layer, BatchNorm):
                piece = _batchnorm_of_part(layer, seg, self.shape(seg.part)[0], piece.name)
            j = self.emit(piece, [seg.part])
            if isinstance(layer, Flatten):
                pixels = int(np.prod(self.shape(seg.part)[1:]))
                out.append(_Segment(j, _spread(seg.at, pixels), _spread(seg.of, pixels)))
            else:
                out.append(_Segment(j, seg.at, seg.of))
        return out

    def split_affine(self, layer: Conv2d | Linear, value: list[_Segment]) -> int:
        """One layer per part, with the weight columns that part feeds (zero for its channels the
        value does not hold; the bias on the first), and the add of them, under the layer's own name."""
        pieces = []
        for k, seg in enumerate(value):
            weight = np.zeros((layer.weight.shape[0], self.shape(seg.part)[0]) + layer.weight.shape[2:], np.float32)
            np.add.at(weight.swapaxes(0, 1), seg.of, layer.weight[:, seg.at].swapaxes(0, 1))
            bias = layer.bias if k == 0 else np.zeros_like(layer.bias)
            name = layer.name if len(value) == 1 else f"{layer.name}.in{k}"
            pieces.append(self.emit(dataclasses.replace(layer, weight=weight, bias=bias, name=name), [seg.part]))
        return pieces[0] if len(pieces) == 1 else self.emit(Add(layer.name), pieces)

    def depthwise_per_part(self, layer: Conv2d, value: list[_Segment]) -> list[_Segment]:
        """A depthwise conv (m filters per channel) as one per part, each channel of the part
        filtered by the filters of the value's channel it holds (zero for those it does not)."""
        m = layer.weight.shape[0] // layer.groups
        out = []
        for k, seg in enumerate(value):
            if len(np.unique(seg.of)) != len(seg.of):
                raise ValueError(f"depthwise conv '{layer.name}' reads one channel twice; eventsnn cannot split it")
            width = self.shape(seg.part)[0]
            weight = np.zeros((width * m,) + layer.weight.shape[1:], np.float32)
            weight[_spread(seg.of, m)] = layer.weight[_spread(seg.at, m)]
            bias = np.zeros(width * m, np.float32)
            if layer.bias is not None:
                bias[_spread(seg.of, m)] = layer.bias[_spread(seg.at, m)]
            piece = Conv2d(weight, bias, layer.stride, layer.padding, f"{layer.name}.{k}", width)
            out.append(_Segment(self.emit(piece, [seg.part]), _spread(seg.at, m), _spread(seg.of, m)))
        return out

    def population(self, terms: list[_Term], name: str) -> int:
        """One population summing ``terms``: a single affine term is that layer (its sign in its
        weights); several become an add of one affine layer per term and the identity terms."""
        affine = [t for t in terms if t.layer is not None]
        identity = [t for t in terms if t.layer is None]
        pieces = []
        for k, t in enumerate(affine):
            sign = np.asarray(t.sign, np.float64)
            out = sign.reshape((-1,) + (1,) * (t.layer.weight.ndim - 1)) if sign.ndim else sign
            bias = t.layer.bias * sign if t.bias else np.zeros_like(t.layer.bias)
            piece_name = name if len(terms) == 1 else f"{name}.in{k}"
            pieces.append(self.emit(dataclasses.replace(t.layer, weight=(t.layer.weight * out).astype(np.float32),
                                                        bias=bias.astype(np.float32), name=piece_name), [t.source]))
        if len(terms) == 1 and pieces:
            return pieces[0]
        if len(terms) < 2:
            raise ValueError(f"'{name}' would be an identity population of one input")
        weights = [1.0] * len(pieces) + [t.sign.tolist() if np.ndim(t.sign) else float(t.sign) for t in identity]
        return self.emit(Add(name, tuple(weights)), pieces + [t.source for t in identity])

    def network(self) -> Network:
        return Network(self.input_shape, tuple(self.layers), tuple(self.inputs))


def _batchnorm_of_part(layer: BatchNorm, seg: _Segment, width: int, name: str) -> BatchNorm:
    """A batch-norm over a part's ``width`` channels: the value's parameters where the part holds
    the value's channels, the identity elsewhere."""
    params = {"gamma": np.ones(width), "beta": np.zeros(width), "mean": np.zeros(width), "var": np.full(width, 1 - layer.eps)}
    for key, array in params.items():
        given = getattr(layer, key)[seg.at]
        array[seg.of] = given
        if not np.array_equal(array[seg.of], given):
            raise ValueError(f"batch-norm '{layer.name}' normalizes one channel twice with different statistics")
    return BatchNorm(*(params[k].astype(np.float32) for k in ("gamma", "beta", "mean", "var")), layer.eps, name)


def batchnorm_as_affine(net: Network) -> Network:
    """The same function where every batch-norm left after folding (one reading a ReLU, a pooling
    or a concatenated part, as in pre-activation nets like DenseNet) is a layer of its own: a
    depthwise 1x1 conv (a diagonal linear layer on vectors) computing gamma (x - mean) / sigma + beta.
    Its output then becomes a population like any other affine layer's (or two, if no activation
    follows it)."""
    if not any(isinstance(layer, BatchNorm) for layer in net.layers):
        return net
    layers = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, BatchNorm):
            scale = layer.gamma.astype(np.float64) / np.sqrt(layer.var.astype(np.float64) + layer.eps)
            bias = (layer.beta - layer.mean * scale).astype(np.float32)
            if len(net.input_shape_of(i)) == 3:
                layer = Conv2d(scale.reshape(-1, 1, 1, 1).astype(np.float32), bias, name=layer.name, groups=len(scale))
            else:
                layer = Linear(np.diag(scale).astype(np.float32), bias, layer.name)
        layers.append(layer)
    return net.replace_layers(layers)


FOLD_LINEAR_BYTES = 64 << 20  # a linear layer absorbs a pooling only while its widened weight stays this small


def fold_avgpools(net: Network) -> tuple[Network, dict[str, str]]:
    """The same function where every average pooling read only by conv layers, or by linear layers
    through a flatten, is absorbed into their synapses, so that the pooled value is not quantized
    again by a population of its own: the next layer integrates the pooled current exactly (Bu et
    al.'s QCFS, Li et al.'s calibration and Deng & Gu treat pooling as linear on spikes). A conv
    after a k x k pooling of stride s becomes one conv of kernel (K - 1) s + k and stride t s; a
    linear layer gets one column per pixel before the pooling. Poolings that cannot be absorbed
    exactly (padding, windows that overlap the conv's padding, a pooled output head) stay.
    Returns the network and, for each layer that absorbed a pooling, that pooling's name."""
    foldable = {i for i, layer in enumerate(net.layers) if isinstance(layer, AvgPool2d) and _absorbable(net, i)}
    if not foldable:
        return net, {}
    graph = _Rebuilt(net.input_shape)
    new, pooled, absorbed = {-1: -1}, {}, {}  # old -> new index; old flatten or pool -> the pool it passes on
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        source = sources[0]
        if i in foldable:
            new[i], pooled[i] = new[source], i
            continue
        if source in pooled:
            pool = pooled[source]
            if isinstance(layer, Flatten):
                pooled[i] = pool
            else:
                layer = _through_pool(layer, net.layers[pool], net.input_shape_of(pool))
                absorbed[layer.name] = net.layers[pool].name
        new[i] = graph.emit(layer, [new[j] for j in sources])
    return graph.network(), absorbed


def _absorbable(net: Network, pool: int) -> bool:
    """Whether every reader of average pooling ``pool`` can take it into its weights exactly."""
    if pool == output_layer(net):
        return False
    layer, in_shape = net.layers[pool], net.input_shape_of(pool)
    for reader in net.consumers(pool):
        readers = [reader]
        if isinstance(net.layers[reader], Flatten):
            readers = net.consumers(reader)
            if not readers or not all(isinstance(net.layers[r], Linear) for r in readers):
                return False
        if not all(_through_pool(net.layers[r], layer, in_shape) is not None for r in readers):
            return False
    return True


def _through_pool(layer, pool: AvgPool2d, in_shape: tuple[int, ...]):
    """``layer`` applied after ``pool`` as one layer reading the pool's input, or None where that
    is not exact (or, for a linear layer, too large)."""
    if isinstance(layer, Conv2d):
        return _conv_through_pool(layer, pool, in_shape)
    if isinstance(layer, Linear):
        n_in = int(np.prod(in_shape))
        if layer.weight.shape[0] * n_in * 4 > FOLD_LINEAR_BYTES:
            return None
        pooling = avgpool_csr(pool, in_shape)  # rows: inputs, columns: pooled outputs, weights 1 / divisor
        matrix = sp.csr_matrix((pooling.weights, pooling.indices, pooling.indptr), (pooling.n_rows, pooling.n_cols))
        return dataclasses.replace(layer, weight=np.ascontiguousarray((matrix @ layer.weight.T).T, layer.weight.dtype))
    return None


def _conv_through_pool(conv: Conv2d, pool: AvgPool2d, in_shape: tuple[int, ...]) -> Conv2d | None:
    """conv(avgpool(x)) as one conv of x: tap (a, b) of the conv becomes a k x k block of weight
    W[a, b] / k^2 at (a s, b s). Exact when every window has the divisor k^2 and the conv's
    zero padding maps onto input positions that no window covers (the pooled map's edges)."""
    k, s = pool.kernel_size, pool.stride
    if pool.padding or np.any(pool.divisors(in_shape[1:]) != k * k):
        return None
    if conv.padding and (k > s or any((size - k) % s for size in in_shape[1:])):
        return None  # a padded pooled position would cover real inputs
    out, per_group, kh, kw = conv.weight.shape
    weight = np.zeros((out, per_group, (kh - 1) * s + k, (kw - 1) * s + k), conv.weight.dtype)
    for a in range(kh):
        for b in range(kw):
            weight[:, :, a * s:a * s + k, b * s:b * s + k] += conv.weight[:, :, a, b, None, None] / (k * k)
    return dataclasses.replace(conv, weight=weight, stride=conv.stride * s, padding=conv.padding * s)
