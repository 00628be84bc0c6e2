"""Dense NumPy forward pass over the IR: ANN accuracy, calibration, and the reference simulator's synapses."""

from __future__ import annotations

from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .ir import (QCFS, Add, AvgPool2d, BatchNorm, ClipReLU, Conv2d, Flatten, Layer, Linear, MaxPool2d, Network, ReLU,
                 Softmax, channel_weight)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H_out, W_out, kh, kw) view of the sliding windows."""
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride, ::stride]


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = _windows(x, weight.shape[2:], stride)
    out = np.tensordot(win, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if bias is not None:
        out += bias[None, :, None, None]
    return np.ascontiguousarray(out, dtype=np.float32)


def synaptic_input(layer: Layer, x: np.ndarray, with_bias: bool = True) -> np.ndarray:
    """The linear part of an affine or avg-pool layer: W x (+ b), for a batch x."""
    if isinstance(layer, Conv2d):
        return conv2d(x, layer.weight, layer.bias if with_bias else None, layer.stride, layer.padding)
    if isinstance(layer, Linear):
        out = x @ layer.weight.T
        return out + layer.bias if with_bias else out
    if isinstance(layer, AvgPool2d):
        return _windows(x, (layer.kernel_size,) * 2, layer.stride).mean(axis=(-1, -2), dtype=np.float32)
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
    if isinstance(layer, (Conv2d, Linear, AvgPool2d)):
        return synaptic_input(layer, x)
    if isinstance(layer, ReLU):
        return np.maximum(x, 0)
    if isinstance(layer, ClipReLU):
        return np.clip(x, 0, np.float32(layer.threshold))
    if isinstance(layer, QCFS):
        step = np.float64(layer.threshold) / layer.levels
        return (np.clip(np.floor(x / step + 0.5), 0, layer.levels) * step).astype(np.float32)
    if isinstance(layer, MaxPool2d):
        return _windows(x, (layer.kernel_size,) * 2, layer.stride).max(axis=(-1, -2))
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


def check_input(net: Network, x: np.ndarray) -> np.ndarray:
    """A batch of inputs as float32, with a clear error for a wrong shape or NaN/Inf."""
    x = np.asarray(x)
    if x.ndim != len(net.input_shape) + 1 or tuple(x.shape[1:]) != net.input_shape:
        raise ValueError(f"input must have shape (N, {', '.join(map(str, net.input_shape))}), found {x.shape}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or Inf")
    return x


def activations(net: Network, x: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (layer index, output) for every layer of the network, for one batch."""
    x = check_input(net, x)
    outputs: dict[int, np.ndarray] = {-1: x}
    last_use = {j: i for i, sources in enumerate(net.inputs) for j in sources}
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        out = layer_forward(layer, *(outputs[j] for j in sources))
        for j in sources:  # free what no later layer reads
            if last_use[j] == i:
                del outputs[j]
        outputs[i] = out
        yield i, out


def forward(net: Network, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Network output for all of x, computed in batches."""
    x = check_input(net, x)
    outputs = []
    for start in range(0, len(x), batch_size):
        for _, out in activations(net, x[start:start + batch_size]):
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
