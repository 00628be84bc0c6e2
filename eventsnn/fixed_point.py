"""Exact integer arithmetic ('int32'): every value the simulation adds lies on a fixed grid, so
sums are exact and the same in any order (any delivery path, thread count or event order).

Membranes, thresholds, biases and weights are int32 counts of ``UNIT`` = 2**-FRACTION_BITS of a
layer's scale; graded events carry integer spike counts, so a delivery adds integers. Analog
inputs are rounded to 2**-INPUT_BITS (8-bit pixels of 1/256 instead of 1/255), and the weights
that read them to 2**-(FRACTION_BITS - INPUT_BITS), so that input times weight lands on the grid.
Integer addition wraps (two's complement) and so stays exact and order-independent however large
a partial sum; after each step the membranes saturate at +-MEMBRANE_LIMIT (16,384 thresholds
of 1), so a neuron inhibited for a long run cannot wrap around.

The float32 network the reference and the ANN see holds the same values (``quantized``), so the
integer engine, the dense reference and the quantized ANN compute the same numbers exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ir import ACTIVATIONS, Add, AvgPool2d, Conv2d, Flatten, Linear, Network

FRACTION_BITS = 16
INPUT_BITS = 8
SCALE = float(2 ** FRACTION_BITS)  # grid steps per unit
UNIT = 1.0 / SCALE
MEMBRANE_LIMIT = 2 ** 30  # saturation of the membranes, in grid steps (16,384 thresholds of 1)
LARGEST = 2.0 ** (24 - FRACTION_BITS)  # float32 holds grid values exactly below this magnitude


def wrapped(values: np.ndarray) -> np.ndarray:
    """Grid values (float64) as int32 addition leaves them: modulo 2**32 steps, in [-2**31, 2**31)."""
    steps = np.asarray(values, np.float64) * SCALE
    return (np.mod(steps + 2.0 ** 31, 2.0 ** 32) - 2.0 ** 31) * UNIT


def saturated(values: np.ndarray) -> np.ndarray:
    return np.clip(values, -MEMBRANE_LIMIT * UNIT, MEMBRANE_LIMIT * UNIT)


def on_grid(values: np.ndarray | float, bits: int = FRACTION_BITS) -> np.ndarray:
    """``values`` rounded to multiples of 2**-bits (float32: exact for magnitudes below LARGEST)."""
    return (np.round(np.asarray(values, np.float64) * 2.0 ** bits) / 2.0 ** bits).astype(np.float32)


def steps_of(values: np.ndarray, bits: int = FRACTION_BITS) -> np.ndarray:
    """Grid values as int32 counts of 2**-bits (they must be on that grid)."""
    counts = np.asarray(values, np.float64) * 2.0 ** bits
    rounded = np.round(counts)
    if not np.array_equal(counts, rounded):
        raise AssertionError("a value the int32 engine reads is not on its grid")  # a bug, not bad input
    return rounded.astype(np.int32)


def quantized_input(x: np.ndarray) -> np.ndarray:
    """Analog inputs on their grid of 2**-INPUT_BITS (float32)."""
    return on_grid(x, INPUT_BITS)


def _checked(values: np.ndarray, what: str) -> np.ndarray:
    largest = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if largest >= LARGEST:
        raise ValueError(f"{what} has a value of {largest:.4g} times its layer's threshold; int32 arithmetic "
                         f"represents magnitudes below {LARGEST:g} (use arithmetic='float32')")
    return values


def _input_bits(net: Network, source: int) -> int:
    """The grid of the weights that read layer ``source``'s output: coarser for the network input
    (reached through flattens and activations), whose analog values carry INPUT_BITS themselves."""
    while source >= 0 and isinstance(net.layers[source], (Flatten,) + ACTIVATIONS):
        source = net.inputs[source][0]
    return FRACTION_BITS - INPUT_BITS if source < 0 else FRACTION_BITS


def quantized(net: Network) -> Network:
    """The normalized network with every weight, bias and add weight on the grid. Weights that read
    the network input get the coarser grid that analog inputs need. Average poolings left as their
    own populations must divide by a power of two (1 / divisor is then exact)."""
    layers = []
    for i, layer in enumerate(net.layers):
        bits = _input_bits(net, net.inputs[i][0])
        if isinstance(layer, (Conv2d, Linear)):
            weight = _checked(on_grid(layer.weight, bits), f"layer '{layer.name}'")
            bias = None if layer.bias is None else _checked(on_grid(layer.bias), f"the bias of '{layer.name}'")
            layer = replace(layer, weight=weight, bias=bias)
        elif isinstance(layer, Add) and layer.weights is not None:  # a branch's weight, per branch's grid
            grids = [_input_bits(net, j) for j in net.inputs[i]]
            layer = replace(layer, weights=tuple(float(on_grid(w, b)) if np.ndim(w) == 0 else tuple(on_grid(w, b).tolist())
                                                 for w, b in zip(layer.weights, grids)))
        elif isinstance(layer, AvgPool2d):
            source = net.inputs[i][0]
            divisors = layer.divisors((net.input_shape if source < 0 else net.shapes[source])[1:])
            if np.any(divisors & (divisors - 1)):
                raise ValueError(f"average pooling '{layer.name}' divides by {sorted(set(divisors.ravel().tolist()))}: "
                                 "int32 arithmetic needs it absorbed by the next layer (avg_pool='fold') or "
                                 "windows of a power-of-two size")
        layers.append(layer)
    return replace(net, layers=tuple(layers))
