"""Exact integer arithmetic ('int32'): every value the simulation adds lies on a fixed grid, so
sums are exact and the same in any order (any delivery path, thread count or event order).

A population's membranes, threshold, bias and incoming weights are int32 counts of a grid step:
2**-FRACTION_BITS of its threshold, or 2**-OUTPUT_FRACTION_BITS in the output layer (which may
integrate for hundreds of steps, so it gets the larger range). Graded events carry integer spike
counts, so a delivery adds integers. Analog inputs are read as integers too: the network reads
255 x (8-bit pixels exactly, other inputs rounded to 1/255), and the weights that read it are
divided by 255 before rounding (they keep about 12 fractional bits of a threshold). Integer
addition wraps (two's complement) and so stays exact and order-independent however large a
partial sum; after each step the membranes saturate at +-MEMBRANE_LIMIT steps (1,024 thresholds,
16,384 in the output layer), so a neuron inhibited for a long run cannot wrap around, and inputs
whose current could exceed the int32 range are refused (``check_input_current``).

The float32 network the reference sees holds the same grid values (``quantized``), so the integer
engine, the dense reference (float64, where these values and their sums are exact) and the
quantized ANN computed in float64 agree exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .ir import ACTIVATIONS, Add, AvgPool2d, Channels, Concat, Conv2d, Flatten, Linear, Network

FRACTION_BITS = 20  # the grid of hidden populations (and of any population the analog input feeds)
OUTPUT_FRACTION_BITS = 16  # the output layer's: it may integrate for hundreds of steps
INPUT_LEVELS = 255  # the network reads round(255 x)
MEMBRANE_LIMIT = 2 ** 30  # saturation of the membranes, in grid steps
UNIT = 2.0 ** -FRACTION_BITS
THRESHOLDS = (2.0 ** -OUTPUT_FRACTION_BITS, 2.0 ** (30 - FRACTION_BITS))  # thresholds every grid holds, [low, high)


def wrapped(values: np.ndarray, bits: int) -> np.ndarray:
    """Values on the grid of 2**-bits (float64) as int32 addition leaves them: modulo 2**32 steps,
    in [-2**31, 2**31) steps."""
    steps = np.asarray(values, np.float64) * 2.0 ** bits
    return (np.mod(steps + 2.0 ** 31, 2.0 ** 32) - 2.0 ** 31) / 2.0 ** bits


def saturated(values: np.ndarray, bits: int) -> np.ndarray:
    return np.clip(values, -MEMBRANE_LIMIT / 2.0 ** bits, MEMBRANE_LIMIT / 2.0 ** bits)


def on_grid(values: np.ndarray | float, bits: int = FRACTION_BITS) -> np.ndarray:
    """``values`` rounded to multiples of 2**-bits (float32: exact while the result needs at most 24 bits)."""
    return (np.round(np.asarray(values, np.float64) * 2.0 ** bits) / 2.0 ** bits).astype(np.float32)


def steps_of(values: np.ndarray, bits: int = FRACTION_BITS) -> np.ndarray:
    """Grid values as int32 counts of 2**-bits (they must be on that grid)."""
    counts = np.asarray(values, np.float64) * 2.0 ** bits
    rounded = np.round(counts)
    if not np.array_equal(counts, rounded) or np.any(np.abs(rounded) >= 2.0 ** 31):
        raise AssertionError("a value the int32 engine reads is not on its grid")  # a bug, not bad input
    return rounded.astype(np.int32)


def quantized_input(x: np.ndarray) -> np.ndarray:
    """What the int32 network reads of an analog input: round(255 x), as float32 integers."""
    return np.round(np.asarray(x, np.float64) * INPUT_LEVELS).astype(np.float32)


def check_input_current(largest_current: float) -> None:
    """Refuse inputs whose current into the populations the input feeds (at most ``largest_current``
    thresholds) could leave their int32 range."""
    limit = 2.0 ** (31 - FRACTION_BITS)
    if largest_current >= limit:
        raise ValueError(f"these inputs could drive the first layer to {largest_current:.4g} thresholds, beyond int32 "
                         f"arithmetic's range of {limit:g}; scale the inputs down or use arithmetic='float32'")


def _on_checked_grid(values, bits: int, what: str, divisor: int = 1) -> np.ndarray:
    """values / divisor on the grid of 2**-bits, refused where float32 cannot hold them exactly."""
    grid = on_grid(np.asarray(values, np.float64) / divisor, bits)
    largest = float(np.max(np.abs(grid))) * divisor if grid.size else 0.0
    if largest >= divisor * 2.0 ** (24 - bits):
        raise ValueError(f"{what} has a value of {largest:.4g} times its layer's threshold; int32 arithmetic "
                         f"represents {'weights that read the input ' if divisor > 1 else ''}magnitudes below "
                         f"{divisor * 2 ** (24 - bits)} here (use arithmetic='float32')")
    return grid


def stage_bits(output: bool) -> int:
    """The grid (2**-bits) of a population: coarser for the output layer (a larger range)."""
    return OUTPUT_FRACTION_BITS if output else FRACTION_BITS


def _reads_input(net: Network, source: int) -> bool:
    """Whether what layer ``source`` outputs is the network input (through flattens and activations)."""
    while source >= 0 and isinstance(net.layers[source], (Flatten,) + ACTIVATIONS):
        source = net.inputs[source][0]
    return source < 0


def quantized(net: Network, analog: bool, roles: list[str]) -> Network:
    """The normalized network on the grid of the populations its layers feed (``roles``:
    ``convert.spiking_roles``): weights, biases and add weights multiples of 2**-FRACTION_BITS, or
    of 2**-OUTPUT_FRACTION_BITS into the output layer. With ``analog`` input the network reads
    255 x, and the weights that read it are divided by 255. Average poolings left as their own
    populations must divide by a power of two (1 / divisor is then exact)."""
    def feeds_output(i: int) -> bool:
        return roles[i] == "output" or (roles[i] == "projection" and roles[net.consumers(i)[0]] == "output")

    def grid(values, source: int, bits: int, what: str) -> np.ndarray:
        return _on_checked_grid(values, bits, what, INPUT_LEVELS if analog and _reads_input(net, source) else 1)

    layers = []
    for i, layer in enumerate(net.layers):
        bits = OUTPUT_FRACTION_BITS if feeds_output(i) else FRACTION_BITS
        if isinstance(layer, (Conv2d, Linear)):
            weight = grid(layer.weight, net.inputs[i][0], bits, f"layer '{layer.name}'")
            bias = None if layer.bias is None else _on_checked_grid(layer.bias, bits, f"the bias of '{layer.name}'")
            layer = replace(layer, weight=weight, bias=bias)
        elif isinstance(layer, Add):  # each branch's weight on its source's grid (1 / 255 for the analog input)
            weights = [grid(np.asarray(w, np.float64), j, bits, f"add '{layer.name}'")
                       for w, j in zip(layer.input_weights(len(net.inputs[i])), net.inputs[i])]
            layer = replace(layer, weights=tuple(float(w) if w.ndim == 0 else tuple(w.tolist()) for w in weights))
        elif isinstance(layer, (Concat, Channels)) and analog and any(_reads_input(net, j) for j in net.inputs[i]):
            raise ValueError(f"'{layer.name}' reads the analog input: int32 arithmetic cannot scale a part of what a "
                             "layer reads (use arithmetic='float32')")
        elif isinstance(layer, AvgPool2d):
            source = net.inputs[i][0]
            divisors = layer.divisors((net.input_shape if source < 0 else net.shapes[source])[1:])
            if np.any(divisors & (divisors - 1)):
                raise ValueError(f"average pooling '{layer.name}' divides by {sorted(set(divisors.ravel().tolist()))}: "
                                 "int32 arithmetic needs it absorbed by the next layer (avg_pool='fold') or windows "
                                 "of a power-of-two size")
            if analog and _reads_input(net, source):
                raise ValueError(f"average pooling '{layer.name}' reads the analog input: int32 arithmetic needs it "
                                 "absorbed by the next layer (avg_pool='fold')")
        layers.append(layer)
    return replace(net, layers=tuple(layers))
