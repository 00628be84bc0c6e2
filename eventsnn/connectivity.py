"""Connectivity: CSR matrices whose rows are presynaptic neurons, conv kernels, dense matrices.

In the IR, neurons of a (C, H, W) population are numbered in C order, c*H*W + y*W + x, as
torch.flatten. The engine stores (C, H, W) populations channel-last, (y*W + x)*C + c, so that a
spike's targets in all output channels are contiguous; ``engine_order`` gives that permutation.
CSR arrays: indptr int64 (n_pre + 1), indices int32, weights float32. Everything is built once
with NumPy/SciPy and validated here, so compiled kernels only ever see well-formed arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .ir import AvgPool2d, Conv2d, Linear, MaxPool2d, Shape
from .memory import csr_build_bytes, csr_bytes

DEFAULT_MAX_BYTES = 4 << 30


@dataclass(frozen=True, eq=False)
class CSR:
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    n_cols: int

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes + self.weights.nbytes

    def to_scipy(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.weights, self.indices, self.indptr), shape=(self.n_rows, self.n_cols))


def validate(csr: CSR, n_rows: int, n_cols: int, name: str) -> CSR:
    """Raise ValueError unless csr is a well-formed (n_rows x n_cols) matrix with finite weights."""
    p, idx, w = csr.indptr, csr.indices, csr.weights
    if p.dtype != np.int64 or idx.dtype != np.int32 or w.dtype != np.float32:
        raise ValueError(f"{name}: CSR dtypes must be int64/int32/float32, found {p.dtype}/{idx.dtype}/{w.dtype}")
    if p.shape != (n_rows + 1,) or p[0] != 0 or np.any(np.diff(p) < 0) or p[-1] != len(idx) or len(idx) != len(w):
        raise ValueError(f"{name}: malformed CSR row pointers")
    if len(idx) and (idx.min() < 0 or idx.max() >= n_cols):
        raise ValueError(f"{name}: CSR column index out of range [0, {n_cols})")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{name}: weights contain NaN or Inf")
    if csr.n_cols != n_cols:
        raise ValueError(f"{name}: CSR has {csr.n_cols} columns, expected {n_cols}")
    return csr


def engine_order(shape: Shape) -> np.ndarray:
    """perm[e] = IR (C-order) index of the neuron stored at engine index e (channel-last for C, H, W)."""
    n = int(np.prod(shape))
    if len(shape) != 3:
        return np.arange(n, dtype=np.int64)
    return np.arange(n, dtype=np.int64).reshape(shape).transpose(1, 2, 0).ravel()


def permuted(csr: CSR, row_perm: np.ndarray, col_perm: np.ndarray) -> CSR:
    """The same synapses with rows and columns renumbered: new row e is old row row_perm[e]."""
    m = csr.to_scipy()[row_perm][:, col_perm].tocsr()
    m.sort_indices()
    return CSR(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), csr.n_cols)


def conv_fan_out(layer: Conv2d, in_shape: Shape) -> np.ndarray:
    """Synapses per input neuron of a convolution (C order), padding and borders accounted for."""
    c_in, h, w = in_shape
    pin, _, _, _ = window_pairs((h, w), layer.weight.shape[2:], layer.stride, layer.padding)
    per_pixel = np.bincount(pin, minlength=h * w) * (layer.weight.shape[0] // layer.groups)
    return np.tile(per_pixel, c_in).astype(np.int64)


def layer_fan_out(layer, in_shape: Shape) -> np.ndarray | None:
    """Operations each input neuron takes part in (C order): a conv's or linear layer's synapses, the
    pooling windows of an average pooling; None for layers without (max pooling is a comparison)."""
    if isinstance(layer, Conv2d):
        return conv_fan_out(layer, in_shape)
    if isinstance(layer, Linear):
        return np.full(int(np.prod(in_shape)), layer.weight.shape[0], np.int64)
    if isinstance(layer, AvgPool2d):
        return pool_fan_out(layer, in_shape)
    return None


def direct_kernel(layer: Conv2d) -> np.ndarray:
    """The kernel as the kernel-direct path stores it: (kh, C_in, kw, C_out), kw reversed, so that
    the weights a spike sends along one output row are contiguous."""
    return np.ascontiguousarray(layer.weight.transpose(2, 1, 3, 0)[:, :, ::-1, :])


def kernel_target_table(layer: Conv2d, in_shape: Shape) -> CSR:
    """The kernel-direct path's implicit CSR, shared by all input channels.

    Row = input pixel y*W + x; entries are triples (target, weight, length): add
    ``direct_kernel.ravel()[weight + c*kw*C_out:][:length]`` to the channel-last membranes at
    ``target``. With stride 1 one triple covers a whole kernel row (up to kw output pixels).
    Weights are unused."""
    c_in, h, w = in_shape
    c_out, _, kh, kw = layer.weight.shape
    s, p = layer.stride, layer.padding
    ho, wo = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    if h * w * c_out >= 2**31 or layer.weight.size >= 2**31:
        raise ValueError(f"{layer.name}: layer too large for 32-bit kernel-direct offsets")
    triples, counts = [], np.zeros(h * w, np.int64)
    for y in range(h):
        for x in range(w):
            for i in range(kh):
                if (y + p - i) % s or not 0 <= (y + p - i) // s < ho:
                    continue
                oy = (y + p - i) // s
                reachable = [jj for jj in range(kw) if (x + p - jj) % s == 0 and 0 <= (x + p - jj) // s < wo]
                # stride 1: consecutive jj reach consecutive output pixels, one contiguous run
                runs = [reachable] if s == 1 and reachable else [[jj] for jj in reachable]
                for run in runs:
                    jj = max(run)
                    ox = (x + p - jj) // s
                    triples.append(((oy * wo + ox) * c_out, (i * c_in * kw + kw - 1 - jj) * c_out, len(run) * c_out))
                    counts[y * w + x] += 1
    indptr = np.zeros(h * w + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return CSR(indptr, np.array(triples, np.int32).ravel(), np.zeros(len(triples), np.float32), 0)


def _from_coo(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, n_cols: int) -> CSR:
    m = sp.coo_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_rows, n_cols)).tocsr()
    m.sort_indices()
    return CSR(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), n_cols)


def window_pairs(in_hw: tuple[int, int], kernel: tuple[int, int], stride: int, padding: int, dilation: int = 1,
                 out_hw: tuple[int, int] | None = None):
    """All (input pixel, output pixel, kernel offset) triples of a sliding window, padding excluded.

    Pixels are y*W + x indices; the kernel offset is i*kw + j. Pairs come in output-major, then
    kernel-offset order (row-major within each window). ``out_hw``: the windows (default: those
    that fit, as for a convolution; a pool in ceil mode has one more that reaches past the input).
    """
    h, w = in_hw
    kh, kw = kernel
    ho, wo = out_hw or ((h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1)
    oy, ox, i, j = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw), indexing="ij")
    y, x = oy * stride + i * dilation - padding, ox * stride + j * dilation - padding
    valid = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    return (y * w + x)[valid], (oy * wo + ox)[valid], (i * kw + j)[valid], (ho, wo)


def csr_synapses(layer, in_shape: Shape) -> int:
    """Synapses (an upper bound: padding excluded later) of the unrolled CSR of a conv, avg-pool or
    max-pool layer, known before it is built."""
    n_out = int(np.prod(layer.output_shape(in_shape)))
    if isinstance(layer, Conv2d):
        return n_out * int(np.prod(layer.weight.shape[1:]))
    if isinstance(layer, (AvgPool2d, MaxPool2d)):
        return n_out * layer.kernel_size ** 2
    raise TypeError(f"no unrolled CSR for {type(layer).__name__}")


def csr_build_bytes_estimate(layer, in_shape: Shape) -> int:
    """The peak memory while the unrolled CSR of a layer is built (what a cap must bound)."""
    return csr_build_bytes(csr_synapses(layer, in_shape), int(np.prod(in_shape)))


def csr_kept_bytes_estimate(layer, in_shape: Shape) -> int:
    """The memory the unrolled CSR of a layer keeps once built."""
    return csr_bytes(csr_synapses(layer, in_shape), int(np.prod(in_shape)))


def conv_csr(layer: Conv2d, in_shape: Shape) -> CSR:
    """Unroll a convolution: row (c, y, x) holds W[o, c, i, j] for every output (o, oy, ox) it
    reaches (with groups: the outputs of its own group only)."""
    c_in, h, w = in_shape
    c_out, per_in = layer.weight.shape[:2]
    per_out = c_out // layer.groups
    pin, pout, k, (ho, wo) = window_pairs((h, w), layer.weight.shape[2:], layer.stride, layer.padding)
    c = np.arange(c_in)[:, None]
    o = (c // per_in) * per_out + np.arange(per_out)[None, :]  # (c_in, per_out): the outputs of c's group
    rows = c[:, :, None] * h * w + pin[None, None, :]
    cols = o[:, :, None] * ho * wo + pout[None, None, :]
    vals = layer.weight.reshape(c_out, per_in, -1)[o, c % per_in][:, :, k]
    rows, cols = np.broadcast_arrays(rows, cols)
    return _from_coo(rows.ravel(), cols.ravel(), vals.ravel(), c_in * h * w, c_out * ho * wo)


def identity_csr(weights: np.ndarray) -> CSR:
    """One synapse from each neuron to the neuron with the same index, of that neuron's weight."""
    n = len(weights)
    return CSR(np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int32), np.asarray(weights, np.float32), n)


def _pool_pairs(layer: MaxPool2d | AvgPool2d, in_hw: tuple[int, int]):
    """``window_pairs`` of a pooling layer: padding, dilation and ceil mode as the layer says."""
    k = layer.kernel_size
    return window_pairs(in_hw, (k, k), layer.stride, layer.padding, layer.dilation,
                        (layer.output_size(in_hw[0]), layer.output_size(in_hw[1])))


def pool_fan_out(layer: MaxPool2d | AvgPool2d, in_shape: Shape) -> np.ndarray:
    """Windows each input neuron lies in (C order; padding excluded)."""
    c_in, h, w = in_shape
    pin = _pool_pairs(layer, (h, w))[0]
    return np.tile(np.bincount(pin, minlength=h * w), c_in).astype(np.int64)


def avgpool_csr(layer: AvgPool2d, in_shape: Shape) -> CSR:
    """Average pooling as synapses from each input to the windows that contain it, each of weight
    1 / the window's divisor (``AvgPool2d.divisors``)."""
    c_in, h, w = in_shape
    pin, pout, _, (ho, wo) = _pool_pairs(layer, (h, w))
    c = np.arange(c_in)[:, None]
    rows, cols = np.broadcast_arrays(c * h * w + pin[None], c * ho * wo + pout[None])
    vals = np.broadcast_to((1.0 / layer.divisors((h, w)).ravel())[pout][None], rows.shape)
    return _from_coo(rows.ravel(), cols.ravel(), vals.ravel(), c_in * h * w, c_in * ho * wo)


def maxpool_windows(layer: MaxPool2d, in_shape: Shape) -> CSR:
    """Input -> the max-pool windows that contain it (IR order; padding is never in a window, so it
    never spikes). Weights are unused (ones)."""
    c_in, h, w = in_shape
    pin, pout, _, (ho, wo) = _pool_pairs(layer, (h, w))
    c = np.arange(c_in)[:, None]
    rows, cols = np.broadcast_arrays(c * h * w + pin[None], c * ho * wo + pout[None])
    return _from_coo(rows.ravel(), cols.ravel(), np.ones(rows.size, np.float32), c_in * h * w, c_in * ho * wo)
