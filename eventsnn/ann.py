"""Dense NumPy forward pass over the IR: ANN accuracy, calibration, and the reference simulator's synapses."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import memory
from .ir import (QCFS, Add, AvgPool2d, BatchNorm, Channels, ClipReLU, Concat, Conv2d, Flatten, Layer, Linear, MaxPool2d, Network, ReLU,
                 Softmax, channel_weight)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H_out, W_out, kh, kw) view of the sliding windows."""
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride, ::stride]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int,
           groups: int = 1) -> np.ndarray:
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = _windows(x, weight.shape[2:], stride)  # (N, C, Ho, Wo, kh, kw)
    per_in, per_out = weight.shape[1], weight.shape[0] // groups
    parts = [np.tensordot(win[:, g * per_in:(g + 1) * per_in], weight[g * per_out:(g + 1) * per_out],
                          axes=([1, 4, 5], [1, 2, 3])) for g in range(groups)]
    out = (parts[0] if groups == 1 else np.concatenate(parts, axis=3)).transpose(0, 3, 1, 2)
    if bias is not None:
        out += bias[None, :, None, None]
    return np.ascontiguousarray(out, dtype=np.result_type(x.dtype, np.float32))


def pool_windows(x: np.ndarray, pool: MaxPool2d | AvgPool2d, fill: float) -> np.ndarray:
    """(N, C, H_out, W_out, k*k) values of each pooling window, ``fill`` where it covers padding
    (left and top padding, and on the right and bottom as much as the last windows reach)."""
    k, s, p, d = pool.kernel_size, pool.stride, pool.padding, pool.dilation
    ho, wo = pool.output_size(x.shape[2]), pool.output_size(x.shape[3])
    pad_h, pad_w = ((n - 1) * s + pool.span - size - p for n, size in ((ho, x.shape[2]), (wo, x.shape[3])))
    padded = np.pad(x, ((0, 0), (0, 0), (p, max(pad_h, 0)), (p, max(pad_w, 0))), constant_values=fill)
    win = sliding_window_view(padded, (pool.span, pool.span), axis=(2, 3))[:, :, ::s, ::s][:, :, :ho, :wo, ::d, ::d]
    return win.reshape(win.shape[:4] + (k * k,))


def synaptic_input(layer: Layer, x: np.ndarray, with_bias: bool = True) -> np.ndarray:
    """The linear part of an affine or avg-pool layer: W x (+ b), for a batch x."""
    if isinstance(layer, Conv2d):
        return conv2d(x, layer.weight, layer.bias if with_bias else None, layer.stride, layer.padding, layer.groups)
    if isinstance(layer, Linear):
        out = x @ layer.weight.T
        return out + layer.bias if with_bias else out
    if isinstance(layer, AvgPool2d):
        dtype = np.result_type(x.dtype, np.float32)  # float64 stays exact (the int32 reference)
        sums = pool_windows(x, layer, 0.0).sum(axis=-1, dtype=dtype)
        return (sums / layer.divisors(x.shape[2:]).astype(dtype)).astype(dtype)
    raise TypeError(f"{type(layer).__name__} has no synapses")


def layer_forward(layer: Layer, x: np.ndarray, *more: np.ndarray) -> np.ndarray:
    """One layer applied to a batch (an add: to the batches of all its inputs)."""
    if isinstance(layer, Add):
        terms = (x,) + more
        weights = [channel_weight(w, x.shape[1:]) for w in layer.input_weights(len(terms))]
        out = x * weights[0]
        for w, term in zip(weights[1:], terms[1:]):
            out = out + w * term
        return out
    if isinstance(layer, Concat):
        return np.concatenate((x,) + more, axis=1)
    if isinstance(layer, Channels):
        return x[:, layer.index]
    if isinstance(layer, (Conv2d, Linear, AvgPool2d)):
        return synaptic_input(layer, x)
    if isinstance(layer, ReLU):
        return np.maximum(x, 0)
    if isinstance(layer, ClipReLU):
        return np.clip(x, 0, np.float32(layer.threshold))
    if isinstance(layer, QCFS):
        step = np.float64(layer.threshold) / layer.levels
        return (np.clip(np.floor(x / step + 0.5), 0, layer.levels) * step).astype(x.dtype)
    if isinstance(layer, MaxPool2d):
        return pool_windows(x, layer, -np.inf).max(axis=-1)
    if isinstance(layer, BatchNorm):
        scale = layer.gamma / np.sqrt(layer.var + np.float32(layer.eps))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return ((x - layer.mean.reshape(shape)) * scale.reshape(shape) + layer.beta.reshape(shape)).astype(np.float32)
    if isinstance(layer, Flatten):
        return x.reshape(len(x), -1)
    if isinstance(layer, Softmax):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise TypeError(f"unsupported layer {type(layer).__name__}")


def check_input(net: Network, x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """A batch of inputs as ``dtype`` (float32), with a clear error for a wrong shape or type, or NaN/Inf."""
    x = np.asarray(x)
    if x.ndim != len(net.input_shape) + 1 or tuple(x.shape[1:]) != net.input_shape:
        raise ValueError(f"input must have shape (N, {', '.join(map(str, net.input_shape))}), found {x.shape}")
    check_floating(x)
    x = x.astype(dtype, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or Inf")
    return x


def check_floating(x: np.ndarray) -> None:
    """Refuse inputs that are not real floating-point numbers: raw uint8 pixels would be read as
    intensities 255 times too large, complex or text ones would be cast silently."""
    if x.dtype.kind != "f":
        raise ValueError(f"input must be a floating-point array of intensities, not {x.dtype} (scale integer images "
                         "to the range the network was trained on, e.g. uint8 / 255 as eventsnn's loaders do)")


def forward_bytes(net: Network, n: int) -> int:
    """An upper bound of what one forward pass of n samples holds: every layer's output, plus the
    largest zero-padded input a conv or pooling copies (float32)."""
    outputs = sum(int(np.prod(shape)) for shape in net.shapes)
    padded = 0
    for i, layer in enumerate(net.layers):
        if isinstance(layer, (Conv2d, MaxPool2d, AvgPool2d)):
            c, h, w = net.input_shape_of(i)
            p = layer.padding
            padded = max(padded, c * (h + 2 * p) * (w + 2 * p) + int(np.prod(net.shapes[i])))
    return 4 * int(n) * (int(np.prod(net.input_shape)) + outputs + padded)


def activations(net: Network, x: np.ndarray, dtype=np.float32) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (layer index, output) for every layer of the network, for one batch, computed in
    ``dtype`` (float64 is exact on the grid values of ``fixed_point``)."""
    x = check_input(net, x, dtype)
    memory.check(forward_bytes(net, len(x)) * np.dtype(dtype).itemsize // 4,
                 f"the ANN's forward pass of {len(x)} samples of {net.input_shape}")
    outputs: dict[int, np.ndarray] = {-1: x}
    last_use = {j: i for i, sources in enumerate(net.inputs) for j in sources}
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        out = layer_forward(layer, *(outputs[j] for j in sources))
        for j in sources:  # free what no later layer reads
            if last_use[j] == i:
                del outputs[j]
        outputs[i] = out
        yield i, out


def forward(net: Network, x: np.ndarray, batch_size: int = 256, dtype=np.float32) -> np.ndarray:
    """Network output for all of x, computed in batches, in ``dtype``."""
    x = check_input(net, x, dtype)
    outputs = []
    for start in range(0, len(x), batch_size):
        for _, out in activations(net, x[start:start + batch_size], dtype):
            pass
        outputs.append(out)
    return np.concatenate(outputs) if outputs else np.zeros((0,) + net.output_shape, np.float32)


def accuracy(net: Network, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy of the ANN."""
    return float(np.mean(forward(net, x, batch_size).argmax(axis=1) == np.asarray(y)))


def macs(net: Network) -> list[int]:
    """Multiply-accumulates of each layer for one sample (0 for layers without synapses)."""
    counts = []
    for i, layer in enumerate(net.layers):
        out = int(np.prod(net.shapes[i]))
        if isinstance(layer, Conv2d):
            counts.append(out * int(np.prod(layer.weight.shape[1:])))
        elif isinstance(layer, Linear):
            counts.append(int(layer.weight.size))
        elif isinstance(layer, AvgPool2d):
            counts.append(out * layer.kernel_size ** 2)
        else:
            counts.append(0)
    return counts
