"""The intermediate representation: small immutable layer descriptions and a network graph.

Shapes follow PyTorch: feature maps are (C, H, W), dense vectors (F,); a batch adds a leading N.
Every layer checks its parameters when it is made and raises ``ValueError`` with a message;
``Network`` checks that the layers fit together. A network is a list of layers in topological
order; each layer reads the layers named in its ``inputs`` entry (index -1 is the network input),
by default the layer before it, so a plain chain needs no ``inputs``. Only ``Add`` has several
inputs (residual connections). Each layer class names its kind in ``spec_type``, the ``"type"``
of its entry in an architecture spec (eventsnn.spec). No I/O and no torch here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar, Union, get_args

import numpy as np

Shape = tuple[int, ...]


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_threshold(value: float, what: str) -> None:
    """A threshold is a positive number that float32 (what the engine computes with) can hold."""
    if not 0 < value <= FLOAT32_MAX:
        raise ValueError(f"{what} must be a positive float32 number, not {value}")


def _array(value, name: str, ndim: int) -> np.ndarray:
    raw = np.asarray(value)
    if raw.dtype.kind not in "biuf":  # complex, strings, objects: not silently cast to float32
        raise ValueError(f"{name} must be real numbers, not {raw.dtype}")
    with np.errstate(over="ignore"):
        arr = raw.astype(np.float32)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, found shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf" + (" (values beyond float32's range)"
                                                          if np.all(np.isfinite(raw)) else ""))
    arr = arr.copy()
    arr.flags.writeable = False
    return arr


def _optional_bias(bias, name: str, size: int) -> np.ndarray:
    b = _array(np.zeros(size) if bias is None else bias, name, 1)
    if b.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), found {b.shape}")
    return b


@dataclass(frozen=True, eq=False)
class Conv2d:
    """z[o, y, x] = sum_{c,i,j} W[o, c, i, j] * a[g*C_g + c, s*y + i - p, s*x + j - p] + b[o]  (zero
    padding; g = o // (out / groups), C_g = in / groups input channels per group)."""

    spec_type: ClassVar[str] = "conv2d"
    weight: np.ndarray  # (out, in / groups, kh, kw)
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    name: str = "conv2d"
    groups: int = 1  # output channels [g*out/groups, (g+1)*out/groups) read input channels of group g only

    def __post_init__(self):
        w = _array(self.weight, f"{self.name}.weight", 4)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", _optional_bias(self.bias, f"{self.name}.bias", w.shape[0]))
        if self.stride < 1 or self.padding < 0:
            raise ValueError(f"{self.name}: stride must be >= 1 and padding >= 0")
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) or self.groups < 1 \
                or w.shape[0] % self.groups:
            raise ValueError(f"{self.name}: groups must be a positive integer dividing the {w.shape[0]} output "
                             f"channels, not {self.groups!r}")

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    def output_shape(self, in_shape: Shape) -> Shape:
        out_c, _, kh, kw = self.weight.shape
        in_c = self.in_channels
        if len(in_shape) != 3 or in_shape[0] != in_c:
            raise ValueError(f"{self.name} expects ({in_c}, H, W) input, found {in_shape}")
        h = (in_shape[1] + 2 * self.padding - kh) // self.stride + 1
        w = (in_shape[2] + 2 * self.padding - kw) // self.stride + 1
        if h < 1 or w < 1:
            raise ValueError(f"{self.name}: kernel {kh}x{kw} does not fit input {in_shape}")
        return (out_c, h, w)


@dataclass(frozen=True, eq=False)
class Linear:
    """z = W a + b, with W of shape (out_features, in_features)."""

    spec_type: ClassVar[str] = "linear"
    weight: np.ndarray
    bias: np.ndarray | None = None
    name: str = "linear"

    def __post_init__(self):
        w = _array(self.weight, f"{self.name}.weight", 2)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", _optional_bias(self.bias, f"{self.name}.bias", w.shape[0]))

    def output_shape(self, in_shape: Shape) -> Shape:
        if in_shape != (self.weight.shape[1],):
            hint = " (a flatten layer may be missing)" if len(in_shape) > 1 else \
                " (the weight's second dimension must match what the layer reads)"
            raise ValueError(f"{self.name} expects ({self.weight.shape[1]},) input, found {in_shape}{hint}")
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (axis 0 of the sample)."""

    spec_type: ClassVar[str] = "batchnorm"
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5
    name: str = "batchnorm"

    def __post_init__(self):
        for field_name in ("gamma", "beta", "mean", "var"):
            object.__setattr__(self, field_name, _array(getattr(self, field_name), f"{self.name}.{field_name}", 1))
        if len({self.gamma.shape, self.beta.shape, self.mean.shape, self.var.shape}) != 1:
            raise ValueError(f"{self.name}: gamma, beta, mean and var must have the same shape")
        if np.any(self.var < 0) or self.eps < 0:
            raise ValueError(f"{self.name}: variance and eps must be non-negative")

    def output_shape(self, in_shape: Shape) -> Shape:
        if in_shape[0] != self.gamma.shape[0]:
            raise ValueError(f"{self.name} has {self.gamma.shape[0]} channels, input has {in_shape[0]}")
        return in_shape


@dataclass(frozen=True)
class ReLU:
    """a = max(0, z)."""

    spec_type: ClassVar[str] = "relu"
    name: str = "relu"

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape


@dataclass(frozen=True)
class ClipReLU:
    """Threshold ReLU (Deng & Gu): a = clip(z, 0, threshold)."""

    spec_type: ClassVar[str] = "clip_relu"
    threshold: float
    name: str = "clip_relu"

    def __post_init__(self):
        check_threshold(self.threshold, f"{self.name}: threshold")

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape


@dataclass(frozen=True)
class QCFS:
    """Quantization-clip-floor-shift activation (Bu et al., ICLR 2022), trained with ``levels`` L
    and a threshold lambda: a = lambda / L * clip(floor(z L / lambda + 1/2), 0, L). Converted with
    scale lambda and V(0) = threshold/2, a layer's spike count over T = L steps (binary spikes),
    or its graded spikes in one step with L levels, equals L a / lambda exactly."""

    spec_type: ClassVar[str] = "qcfs"
    levels: int
    threshold: float
    name: str = "qcfs"

    def __post_init__(self):
        if isinstance(self.levels, bool) or not isinstance(self.levels, (int, np.integer)) or not 1 <= self.levels <= 255:
            raise ValueError(f"{self.name}: levels must be an integer in [1, 255], not {self.levels!r}")
        check_threshold(self.threshold, f"{self.name}: threshold")

    def output_shape(self, in_shape: Shape) -> Shape:
        return in_shape


@dataclass(frozen=True)
class _Pool2d:
    """A square window pooling over each channel's map, as PyTorch's: windows at (stride*y - padding,
    stride*x - padding) spanning ``dilation * (kernel_size - 1) + 1`` pixels; positions in the
    padding take no part (a max over the real inputs); ``ceil_mode`` adds a last, partial window
    where it starts inside the input or its left padding. The stride defaults to the kernel size."""

    kernel_size: int
    stride: int | None = None
    name: str = "pool2d"
    padding: int = 0
    ceil_mode: bool = False
    dilation: int = 1

    def __post_init__(self):
        if self.stride is None:
            object.__setattr__(self, "stride", self.kernel_size)
        for key in ("kernel_size", "stride", "padding", "dilation"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{self.name}: {key} must be an integer, not {value!r}")
        if self.kernel_size < 1 or self.stride < 1 or self.dilation < 1:
            raise ValueError(f"{self.name}: kernel_size, stride and dilation must be >= 1")
        if not 0 <= self.padding <= self.kernel_size // 2:
            raise ValueError(f"{self.name}: padding must lie in [0, kernel_size // 2], not {self.padding}")
        if not isinstance(self.ceil_mode, (bool, np.bool_)):
            raise ValueError(f"{self.name}: ceil_mode must be true or false, not {self.ceil_mode!r}")

    @property
    def span(self) -> int:
        """Input pixels one window covers along each axis."""
        return self.dilation * (self.kernel_size - 1) + 1

    def output_size(self, size: int) -> int:
        """Windows along an axis of ``size`` pixels (PyTorch's rule)."""
        room = size + 2 * self.padding - self.span
        if room < 0:
            raise ValueError(f"{self.name}: a window of {self.span} pixels does not fit {size} (+ padding {self.padding})")
        out = (-(-room // self.stride) if self.ceil_mode else room // self.stride) + 1
        if self.ceil_mode and (out - 1) * self.stride >= size + self.padding:
            out -= 1  # the last window must start inside the input or its left padding
        return out

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise ValueError(f"{self.name} needs a (C, H, W) input, found {in_shape}")
        c, h, w = in_shape
        return (c, self.output_size(h), self.output_size(w))


@dataclass(frozen=True)
class MaxPool2d(_Pool2d):
    """a[c, y, x] = max over the window at (stride*y - padding, stride*x - padding) of the real inputs."""

    spec_type: ClassVar[str] = "maxpool2d"
    name: str = "maxpool2d"


@dataclass(frozen=True)
class AvgPool2d(_Pool2d):
    """a[c, y, x] = sum over the window / its size: kernel_size^2 within the padded input with
    ``count_include_pad`` (PyTorch's default), else the real inputs only. No dilation."""

    spec_type: ClassVar[str] = "avgpool2d"
    name: str = "avgpool2d"
    count_include_pad: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.dilation != 1:
            raise ValueError(f"{self.name}: average pooling has no dilation")
        if not isinstance(self.count_include_pad, (bool, np.bool_)):
            raise ValueError(f"{self.name}: count_include_pad must be true or false, not {self.count_include_pad!r}")

    def divisors(self, in_hw: tuple[int, int]) -> np.ndarray:
        """(H_out, W_out): what each window's sum is divided by (PyTorch's rule)."""
        def along(size: int) -> tuple[np.ndarray, np.ndarray]:
            start = np.arange(self.output_size(size)) * self.stride - self.padding
            end = np.minimum(start + self.kernel_size, size + self.padding)
            padded = end - start
            real = np.minimum(end, size) - np.maximum(start, 0)
            return padded, real
        (ph, rh), (pw, rw) = along(in_hw[0]), along(in_hw[1])
        return np.outer(ph, pw) if self.count_include_pad else np.outer(rh, rw)


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) -> (C*H*W,) in C order, as torch.flatten."""

    spec_type: ClassVar[str] = "flatten"
    name: str = "flatten"

    def output_shape(self, in_shape: Shape) -> Shape:
        return (int(np.prod(in_shape)),)


@dataclass(frozen=True)
class Softmax:
    """p = exp(z) / sum(exp(z)); only allowed as the last layer."""

    spec_type: ClassVar[str] = "softmax"
    name: str = "softmax"

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise ValueError(f"{self.name} needs a vector input, found {in_shape}")
        return in_shape


@dataclass(frozen=True)
class Add:
    """Residual join: a = sum_k weights[k] * x_k over its inputs (all of the same shape; weights default to 1).
    A weight is a number or one number per channel (a tuple; channel-wise normalization makes these)."""

    spec_type: ClassVar[str] = "add"
    name: str = "add"
    weights: tuple[float | tuple[float, ...], ...] | None = None

    def __post_init__(self):
        if self.weights is not None:
            weights = tuple(float(w) if np.ndim(w) == 0 else tuple(float(c) for c in np.ravel(w)) for w in self.weights)
            if any(np.ndim(w) > 1 for w in self.weights) or not all(np.all(np.isfinite(w)) for w in weights):
                raise ValueError(f"{self.name}: weights must be finite numbers or one per channel, not {self.weights}")
            object.__setattr__(self, "weights", weights)

    def input_weights(self, n_inputs: int) -> tuple[float | tuple[float, ...], ...]:
        return self.weights if self.weights is not None else (1.0,) * n_inputs

    def output_shape(self, *in_shapes: Shape) -> Shape:
        if len(in_shapes) < 2:
            raise ValueError(f"{self.name} needs at least two inputs, found {len(in_shapes)}")
        if len(set(in_shapes)) != 1:
            raise ValueError(f"{self.name}: inputs must have the same shape, found {list(in_shapes)}")
        if self.weights is not None and len(self.weights) != len(in_shapes):
            raise ValueError(f"{self.name}: {len(self.weights)} weights for {len(in_shapes)} inputs")
        channels = in_shapes[0][0]
        if self.weights is not None and any(np.ndim(w) and len(w) != channels for w in self.weights):
            raise ValueError(f"{self.name}: a per-channel weight needs {channels} values (one per channel)")
        return in_shapes[0]


def channel_weight(weight: float | tuple[float, ...], shape: Shape) -> np.ndarray:
    """An add's weight for one input, shaped to multiply a batch of that shape (N,) + shape."""
    w = np.asarray(weight, np.float32)
    return w if w.ndim == 0 else w.reshape((-1,) + (1,) * (len(shape) - 1))


@dataclass(frozen=True)
class Concat:
    """Channel concatenation of its inputs, in order (torch.cat along dim 1); the inputs agree in
    every other axis. Not a population of its own: conversion resolves it (``rewrite.resolve_concats``)."""

    spec_type: ClassVar[str] = "concat"
    name: str = "concat"

    def output_shape(self, *in_shapes: Shape) -> Shape:
        if len(in_shapes) < 2:
            raise ValueError(f"{self.name} needs at least two inputs, found {len(in_shapes)}")
        if len({len(s) for s in in_shapes}) != 1 or len({tuple(s[1:]) for s in in_shapes}) != 1:
            raise ValueError(f"{self.name}: inputs must agree in all but the channel axis, found {list(in_shapes)}")
        return (sum(s[0] for s in in_shapes),) + tuple(in_shapes[0][1:])


@dataclass(frozen=True, eq=False)
class Channels:
    """Output channel c is input channel ``index[c]``: a channel split (``torch.chunk``, ONNX Split) or
    a channel shuffle (ShuffleNet's view-transpose-view) as one gather. Not a population of its own:
    conversion resolves it with the concatenations (``rewrite.resolve_concats``)."""

    index: np.ndarray  # int64, which input channel each output channel is
    spec_type: ClassVar[str] = "channels"
    name: str = "channels"

    def __post_init__(self):
        index = np.asarray(self.index)
        if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer) or index.min() < 0:
            raise ValueError(f"{self.name}: the channel index must be a non-empty list of non-negative integers")
        object.__setattr__(self, "index", index.astype(np.int64))

    def output_shape(self, *in_shapes: Shape) -> Shape:
        (shape,) = in_shapes
        if len(shape) != 3 or self.index.max() >= shape[0]:
            raise ValueError(f"{self.name}: selects channels up to {self.index.max()} of a {shape} input "
                             "(a (C, H, W) input with more channels is needed)")
        return (len(self.index),) + tuple(shape[1:])


Layer = Union[Conv2d, Linear, BatchNorm, ReLU, ClipReLU, QCFS, MaxPool2d, AvgPool2d, Flatten, Softmax, Add, Concat,
              Channels]
LAYER_CLASSES: tuple[type, ...] = get_args(Layer)  # every layer kind, in the order the spec lists them
AFFINE = (Conv2d, Linear)
ACTIVATIONS = (ReLU, ClipReLU, QCFS)
THRESHOLDED = (ClipReLU, QCFS)  # activations with a threshold, which normalization rescales with the layer


Inputs = tuple[tuple[int, ...], ...]


def chain_inputs(n_layers: int) -> Inputs:
    """The inputs of a plain chain: every layer reads the one before it."""
    return tuple((i - 1,) for i in range(n_layers))


@dataclass(frozen=True, eq=False)
class Network:
    """Layers in topological order; ``inputs[i]`` lists the indices layer i reads (-1: the network input)."""

    input_shape: Shape
    layers: tuple[Layer, ...]
    inputs: Inputs | None = None  # None: a chain
    shapes: tuple[Shape, ...] = field(init=False, repr=False)  # output shape of each layer
    readers: dict[int, tuple[int, ...]] = field(init=False, repr=False, compare=False)  # index -> layers reading it

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))
        if len(self.input_shape) not in (1, 3) or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) or (F,) of positive sizes, not {self.input_shape}")
        if not self.layers:
            raise ValueError("a network needs at least one layer")
        names = [layer.name for layer in self.layers]
        counts = Counter(names)
        duplicated = sorted(n for n, c in counts.items() if c > 1)
        if duplicated:
            raise ValueError(f"layer names must be unique, repeated: {duplicated}")
        inputs = chain_inputs(len(self.layers)) if self.inputs is None else tuple(
            tuple(int(j) for j in sources) for sources in self.inputs)
        if len(inputs) != len(self.layers):
            raise ValueError(f"inputs must list the sources of each of the {len(self.layers)} layers, found {len(inputs)}")
        object.__setattr__(self, "inputs", inputs)
        shapes: list[Shape] = []
        for i, (layer, sources) in enumerate(zip(self.layers, inputs)):
            where = f"layer {i} ({type(layer).__name__} '{layer.name}')"
            if isinstance(layer, Softmax) and i != len(self.layers) - 1:
                raise ValueError(f"softmax '{layer.name}' must be the last layer")
            if not sources or any(not -1 <= j < i for j in sources) or len(set(sources)) != len(sources):
                raise ValueError(f"{where}: inputs {list(sources)} must be distinct earlier layers (or -1, the input)")
            if len(sources) > 1 and not isinstance(layer, (Add, Concat)):
                raise ValueError(f"{where}: only an add or a concat may have several inputs")
            in_shapes = [self.input_shape if j < 0 else shapes[j] for j in sources]
            try:
                shapes.append(layer.output_shape(*in_shapes))
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
        readers: dict[int, list[int]] = {}
        for i, sources in enumerate(inputs):
            for j in sources:
                readers.setdefault(j, []).append(i)
        object.__setattr__(self, "readers", {j: tuple(r) for j, r in readers.items()})
        unused = [self.layers[i].name for i in range(len(self.layers) - 1) if i not in readers]
        if unused:
            raise ValueError(f"layers {unused} feed nothing: the last layer must be the only output")
        object.__setattr__(self, "shapes", tuple(shapes))

    @property
    def output_shape(self) -> Shape:
        return self.shapes[-1]

    @property
    def is_chain(self) -> bool:
        return self.inputs == chain_inputs(len(self.layers))

    def input_shape_of(self, index: int) -> Shape:
        """The shape layer ``index`` reads (its first input's)."""
        j = self.inputs[index][0]
        return self.input_shape if j < 0 else self.shapes[j]

    def consumers(self, index: int) -> list[int]:
        """The layers that read layer ``index`` (-1: those that read the network input), in order."""
        return list(self.readers.get(index, ()))

    def replace_layers(self, layers) -> "Network":
        """The same graph with each layer replaced (one for one)."""
        return Network(self.input_shape, tuple(layers), self.inputs)

    def without_layer(self, index: int) -> "Network":
        """The graph with a one-input layer removed: its consumers read its input instead."""
        if len(self.inputs[index]) != 1:
            raise ValueError(f"cannot remove '{self.layers[index].name}': it has several inputs")
        source = self.inputs[index][0]

        def renumber(j: int) -> int:
            j = source if j == index else j
            return j - 1 if j > index else j

        layers = self.layers[:index] + self.layers[index + 1:]
        inputs = [tuple(renumber(j) for j in sources) for i, sources in enumerate(self.inputs) if i != index]
        return Network(self.input_shape, layers, tuple(inputs))
