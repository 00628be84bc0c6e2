"""Conversion passes, IR to IR: fold batch-norm, then data-based normalization (Rueckauer et al. 3.2-3.3).

    fold:       W~ = (gamma/sigma) W,  b~ = (gamma/sigma)(b - mu) + beta,  sigma = sqrt(var + eps)
    normalize:  W^l <- W^l lambda^{l-1} / lambda^l,  b^l <- b^l / lambda^l

lambda^l is the p-th percentile of layer l's non-zero ReLU activations over a calibration set
(p = 100 is max-norm); QCFS layers use their trained threshold, clipped ReLUs the percentile of
their clipped output (or, asked, their threshold y_th); the input has lambda = 1.
Pools and flatten keep the scale of their input. Branches that meet at a residual add form one
population and share the add's lambda; the identity branch gets the weight lambda_in / lambda.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable

import numpy as np

from . import ann
from .ir import (ACTIVATIONS, AFFINE, QCFS, THRESHOLDED, Add, AvgPool2d, BatchNorm, ClipReLU, Concat, Conv2d, Flatten,
                 Linear, MaxPool2d, Network, Softmax)


def fold_batchnorm(net: Network, keep_unfoldable: bool = False) -> Network:
    """Merge every batch-norm layer into the conv or linear layer it reads. One that reads anything
    else (a ReLU, a pooling, a concat: pre-activation nets such as DenseNet) is refused, or with
    ``keep_unfoldable`` left in place (``rewrite.batchnorm_as_affine`` makes it a layer of its own)."""
    skipped: set[str] = set()
    while True:
        at = [i for i, layer in enumerate(net.layers) if isinstance(layer, BatchNorm) and layer.name not in skipped]
        if not at:
            return net
        i = at[0]
        layer, source = net.layers[i], net.inputs[i][0]
        prev = net.layers[source] if source >= 0 else None
        if not isinstance(prev, AFFINE) or net.consumers(source) != [i]:
            if keep_unfoldable:
                skipped.add(layer.name)
                continue
            where = f"after '{prev.name}'" if prev is not None else "at the input"
            raise ValueError(f"batch-norm '{layer.name}' {where} cannot be folded: it must be the only reader of a "
                             "conv2d or linear layer")
        scale = layer.gamma.astype(np.float64) / np.sqrt(layer.var.astype(np.float64) + layer.eps)
        weight = prev.weight * scale.reshape((-1,) + (1,) * (prev.weight.ndim - 1))
        bias = scale * (prev.bias - layer.mean) + layer.beta
        layers = list(net.layers)
        layers[source] = with_params(prev, weight, bias)
        net = net.replace_layers(layers).without_layer(i)


def with_params(layer: Conv2d | Linear, weight: np.ndarray, bias: np.ndarray) -> Conv2d | Linear:
    """The same layer (stride, padding, groups, name) with other weights and biases."""
    return dataclasses.replace(layer, weight=weight, bias=bias)


def bias_carrier(net: Network, index: int) -> int | None:
    """The layer whose bias feeds the population of layer ``index``: itself, or an add's first affine
    branch (None for an add without one)."""
    if not isinstance(net.layers[index], Add):
        return index
    return next((j for j in net.inputs[index] if j >= 0 and isinstance(net.layers[j], AFFINE)), None)


def spiking_roles(net: Network) -> list[str]:
    """What each layer of a folded network becomes in the SNN.

    'hidden': an affine layer read only by its activation (an IF population);
    'projection': an affine layer read only by an add (synapses into the add's population);
    'add': a residual join read only by its activation (one IF population fed by all branches);
    'output': the last affine or add layer (its activation, if any, is dropped: the readout
    decides), or the average pooling of its activation in a global-pooling head (SqueezeNet's);
    'activation', 'gate' (max-pool), 'route' (flatten), 'avgpool' (an IF population with weights
    1/k^2, unless the next layer absorbs it when built: ``rewrite.fold_avgpools``), 'softmax'. Raises ValueError for what cannot be converted.
    """
    layers = net.layers
    last = output_layer(net)
    roles = []
    for i, layer in enumerate(layers):
        readers = [layers[c] for c in net.consumers(i)]
        only_reader = readers[0] if len(readers) == 1 else None
        if isinstance(layer, BatchNorm):
            raise ValueError(f"batch-norm '{layer.name}' is not folded; run fold_batchnorm first")
        if i == last:
            roles.append("output")
        elif isinstance(layer, AFFINE):
            if isinstance(only_reader, ACTIVATIONS):
                roles.append("hidden")
            elif isinstance(only_reader, Add):
                roles.append("projection")
            else:
                raise ValueError(f"{type(layer).__name__.lower()} '{layer.name}' has no activation of its own (read by "
                                 f"{', '.join(repr(r.name) for r in readers)}): a conv or linear layer becomes spiking "
                                 "neurons through its relu, clip_relu or qcfs, or as a branch of a residual add")
        elif isinstance(layer, Add):
            if not isinstance(only_reader, ACTIVATIONS):
                raise ValueError(f"add '{layer.name}' must be read only by a relu or clip_relu to become spiking neurons")
            roles.append("add")
        elif isinstance(layer, ACTIVATIONS):
            source = net.inputs[i][0]
            if source < 0 or not isinstance(layers[source], AFFINE + (Add,)):
                raise ValueError(f"activation '{layer.name}' must directly follow a conv2d, linear or add layer")
            roles.append("activation")
        elif isinstance(layer, MaxPool2d):
            roles.append("gate")
        elif isinstance(layer, Flatten):
            roles.append("route")
        elif isinstance(layer, AvgPool2d):
            roles.append("avgpool")
        elif isinstance(layer, Softmax):
            roles.append("softmax")
        elif isinstance(layer, Concat):
            raise ValueError(f"concat '{layer.name}' must be resolved first (rewrite.resolve_concats; "
                             "eventsnn.convert does it)")
        else:
            raise ValueError(f"unsupported layer {type(layer).__name__} '{layer.name}'")
        if i > last and roles[-1] not in ("activation", "softmax", "route"):
            raise ValueError(f"'{layer.name}' after the output layer '{layers[last].name}' cannot be converted")
    return roles


def output_layer(net: Network) -> int:
    """The layer the readout reads: the last conv, linear or add layer, or, where it is followed by
    an activation and an average pooling (then only flatten or softmax), that pooling."""
    layers = net.layers
    if not any(isinstance(layer, AFFINE) for layer in layers):
        raise ValueError("the network has no conv2d or linear layer")
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, AFFINE + (Add,)))
    tail = layers[last + 1:]
    if len(tail) >= 2 and isinstance(tail[0], ACTIVATIONS) and isinstance(tail[1], AvgPool2d) \
            and all(isinstance(layer, (Flatten, Softmax)) for layer in tail[2:]):
        return last + 2
    return last


def scale_owner(net: Network, index: int) -> int:
    """The layer whose scale lambda the output of layer ``index`` carries: the affine or add layer
    behind its activation, found through pools and flattens; -1 for the network input (lambda = 1)."""
    while index >= 0 and isinstance(net.layers[index], (MaxPool2d, AvgPool2d, Flatten) + ACTIVATIONS):
        index = net.inputs[index][0]
    return index


class StreamingPercentile:
    """Exact p-th percentile (NumPy's linear interpolation) of the positive values of a stream.

    ``max_count`` bounds how many values the stream can hold; only the largest
    ``max_count - floor((max_count - 1) p / 100)`` are kept, which always contains the two
    order statistics the percentile needs. Memory: (1 - p/100) of the stream, not all of it.
    """

    def __init__(self, percentile: float, max_count: int):
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must lie in (0, 100], not {percentile}")
        self.percentile = float(percentile)
        self.capacity = max(2, max_count - math.floor((max_count - 1) * self.percentile / 100))
        self.count = 0
        self.kept = np.zeros(0, np.float32)

    def add(self, values: np.ndarray) -> None:
        values = values[values > 0].ravel()
        self.count += values.size
        if self.kept.size >= self.capacity:
            values = values[values > self.kept.min()]
        kept = np.concatenate([self.kept, values])
        if kept.size > self.capacity:
            kept = np.partition(kept, kept.size - self.capacity)[kept.size - self.capacity:]
        self.kept = kept

    def value(self) -> float | None:
        """The percentile, or None when the stream had no positive value."""
        if self.count == 0:
            return None
        top = np.sort(self.kept)  # the largest kept.size of `count` values, ascending
        position = (self.count - 1) * self.percentile / 100
        low = math.floor(position)
        first = self.count - top.size  # rank of top[0] among all values
        a = float(top[low - first])
        b = float(top[min(low + 1, self.count - 1) - first])
        return a + (b - a) * (position - low)


SCALE_PER = ("layer", "channel")
CLIP_SCALES = ("data", "threshold")  # what sets a clipped ReLU's scale
DEFAULT_PERCENTILE = 99.9  # robust to a few outliers (Rueckauer et al. use 99.9-99.999)


def compute_scales(net: Network, x_calib: np.ndarray, percentile: float = DEFAULT_PERCENTILE, batch_size: int = 128,
                   progress: Callable[[int, int], None] | None = None, per: str = "layer",
                   clip: str = "data") -> list:
    """lambda for each layer of a folded network: a float for affine and add layers, None for the others.

    Branches that meet at an add share its scale (their sum is one population). ``per="channel"``:
    each hidden population (and each add) gets one lambda per channel (an array), the percentile
    of that channel's activations; the output layer keeps one (per-class scales would change the
    readout's argmax). A QCFS layer's trained threshold is its scale (the quantization is then
    exact). A clipped ReLU's scale is, with ``clip="data"``, the percentile of its clipped output
    (at most the threshold: ReLU6 in a MobileNet rarely reaches 6, and a scale of 6 would leave its
    spikes coarse), or with ``clip="threshold"`` the threshold itself (Deng & Gu's choice)."""
    if per not in SCALE_PER:
        raise ValueError(f"per must be one of {SCALE_PER}, not {per!r}")
    if clip not in CLIP_SCALES:
        raise ValueError(f"clip must be one of {CLIP_SCALES}, not {clip!r}")
    roles = spiking_roles(net)
    n = len(x_calib)  # any array-like that slices into batches (e.g. loaders' lazy Images)
    if n == 0:
        raise ValueError("the calibration set is empty")
    # the values that set each population's scale: its activation's output, or its own (output layer)
    watch, scales = {}, [None] * len(net.layers)
    for i, role in enumerate(roles):
        if role in ("hidden", "add"):
            activation = net.consumers(i)[0]
            if isinstance(net.layers[activation], QCFS) or (clip == "threshold" and isinstance(net.layers[activation], ClipReLU)):
                scales[i] = float(net.layers[activation].threshold)
            else:
                watch[activation] = i
        elif role == "output" and isinstance(net.layers[i], AFFINE + (Add,)):  # a pooled head needs no scale
            watch[i] = i
    channels = {w: net.shapes[w][0] if per == "channel" and roles[i] != "output" else 1 for w, i in watch.items()}
    streams = {w: [StreamingPercentile(percentile, n * int(np.prod(net.shapes[w])) // channels[w])
                   for _ in range(channels[w])] for w in watch}
    for start in range(0, n, batch_size):
        for i, out in ann.activations(net, ann.check_input(net, x_calib[start:start + batch_size])):
            if i in streams:
                per_channel = out.reshape(len(out), channels[i], -1)
                for c, stream in enumerate(streams[i]):
                    stream.add(per_channel[:, c])
        if progress is not None:
            progress(min(start + batch_size, n), n)
    for watched, i in watch.items():
        values = [_checked_scale(stream.value(), net.layers[i].name) for stream in streams[watched]]
        silent = sum(v is None for v in values)
        if silent:
            what = "" if channels[watched] == 1 else f" in {silent} of its {channels[watched]} channels"
            warnings.warn(f"layer '{net.layers[i].name}' had no positive activation on the calibration set{what}; "
                          "using scale 1")
        values = [1.0 if v is None else v for v in values]
        scales[i] = values[0] if channels[watched] == 1 else np.array(values)
    for i, role in enumerate(roles):
        if role == "projection":
            scales[i] = scales[net.consumers(i)[0]]
    return scales


NEGLIGIBLE = 1e-30  # activations below this count as none: float32 dust (weights divided by such a scale overflow)


def population_members(net: Network) -> dict[str, list[int]]:
    """Each spiking population (a hidden affine layer or an add) by name, with the layers that carry
    its scale: itself and, for an add, its affine branches."""
    roles = spiking_roles(net)
    return {layer.name: [i] + [j for j in net.inputs[i] if j >= 0 and roles[j] == "projection"]
            for i, (layer, role) in enumerate(zip(net.layers, roles)) if role in ("hidden", "add")}


def coarsened_scales(net: Network, scales: list, coarsening: dict[str, int]) -> list:
    """The scales with population p's multiplied by ``coarsening[p]`` = k: each of its spikes is then
    worth k times a spike of a population kept as it is (``ConvertedModel.coarsening``)."""
    scales = list(scales)
    members = population_members(net)
    for name, k in coarsening.items():
        for i in members[name]:
            scales[i] = scales[i] * k
    return scales


def _checked_scale(value: float | None, name: str) -> float | None:
    """A percentile as a scale; None where there was no activation (or a negligible one)."""
    if value is None or value < NEGLIGIBLE:
        return None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"layer '{name}': its activations give the scale {value} (overflow in "
                         "float32? check the weights and the calibration data)")
    return value


def unit_scales(net: Network) -> list[float | None]:
    """Scale 1 for every affine and add layer: the network as it is, without normalization."""
    return [1.0 if isinstance(layer, AFFINE + (Add,)) else None for layer in net.layers]


def normalize(net: Network, scales: list[float | None], levels: int = 1) -> Network:
    """Scale weights and biases so each population's activations are divided by its lambda.

    An affine layer reading a population of scale lambda_in becomes W lambda_in / lambda,
    b / lambda; an add's weight for a branch that is not an affine layer (the identity of a
    residual block) becomes w lambda_in / lambda, for an affine branch it is folded into that
    layer; threshold-ReLU layers become clip(z, 0, threshold / lambda). ``levels`` L (graded
    spikes): every lambda is divided by L, so a spike is worth 1/L of its layer's scale (the
    input keeps scale 1: inputs and biases are times L, weights between populations unchanged).
    """
    if len(scales) != len(net.layers):
        raise ValueError(f"need one scale per layer ({len(net.layers)}), got {len(scales)}")
    if levels != 1:
        scales = [None if s is None else s / levels for s in scales]
    for i, layer in enumerate(net.layers):
        if isinstance(layer, AFFINE + (Add,)):
            scale = scales[i]
            if scale is None or not np.all(np.isfinite(scale) & (np.asarray(scale) > 0)):
                raise ValueError(f"layer '{layer.name}' needs a positive finite scale, got {scale}")
            if np.ndim(scale) and np.shape(scale) != (net.shapes[i][0],):
                raise ValueError(f"layer '{layer.name}': one scale, or one per output channel "
                                 f"({net.shapes[i][0]}), not shape {np.shape(scale)}")

    def scale_of(index: int):
        """The scale of what layer ``index`` outputs: a float, or one per channel."""
        owner = scale_owner(net, index)
        return 1.0 if owner < 0 else scales[owner]

    def input_factor(i: int) -> np.ndarray | float:
        """The input scale of affine layer i, shaped to multiply its weight (per input channel or feature)."""
        s_in = scale_of(net.inputs[i][0])
        if not np.ndim(s_in):
            return s_in
        layer = net.layers[i]
        if isinstance(layer, Conv2d):  # weight (out, in / groups, k, k): output o reads the inputs of its group
            per_out, per_in = layer.weight.shape[0] // layer.groups, layer.weight.shape[1]
            channel = (np.arange(layer.weight.shape[0]) // per_out)[:, None] * per_in + np.arange(per_in)[None, :]
            return np.asarray(s_in)[channel][:, :, None, None]
        return np.repeat(np.asarray(s_in), layer.weight.shape[1] // np.size(s_in))[None, :]  # through a flatten

    add_weight = {}  # affine layer -> the weight its add gives it
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Add):
            for j, w in zip(net.inputs[i], layer.input_weights(len(net.inputs[i]))):
                if j >= 0 and isinstance(net.layers[j], AFFINE):
                    add_weight[j] = w
    layers = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, AFFINE):
            factor = np.asarray(add_weight.get(i, 1.0), np.float64) / np.asarray(scales[i], np.float64)  # or per out channel
            out_factor = factor.reshape((-1,) + (1,) * (layer.weight.ndim - 1)) if factor.ndim else factor
            weight = layer.weight.astype(np.float64) * input_factor(i) * out_factor
            layer = with_params(layer, weight, layer.bias.astype(np.float64) * factor)
        elif isinstance(layer, Add):
            weights = [1.0 if j in add_weight else np.asarray(w, np.float64) * scale_of(j) / scales[i]
                       for j, w in zip(net.inputs[i], layer.input_weights(len(net.inputs[i])))]
            layer = Add(layer.name, tuple(weights))
        elif isinstance(layer, THRESHOLDED):
            layer = dataclasses.replace(layer, threshold=layer.threshold / scale_of(net.inputs[i][0]))
        layers.append(layer)
    return net.replace_layers(layers)
