"""A 3 x 3 stride-1 convolution as Winograd's F(2x2, 3x3): 16 multiplications per 2 x 2 output pixels
and input-output channel pair, where a matrix product over unrolled windows takes 36.

The input is cut into 4 x 4 tiles d (stride 2, overlapping by 2); each tile and each 3 x 3 kernel g
is transformed, V = B^T d B and U = G g G^T, and for each of the 16 positions of a tile the
transformed inputs meet the transformed kernels in one matrix product over the input channels,
M[k] = V[k] @ U[k]; the output tile is A^T M A (2 x 2, cropped at the image's edge). With

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]

this is the convolution exactly in real arithmetic. ``lockstep`` uses it for the conv projections
it delivers as matrix products: in float32 it rounds differently from the unrolled product (as any
order of summation does); in float64 on integer inputs and weights every value is a multiple of 1/4
(G's halves, twice), so the sums are exact while they stay below 2^51 (``exact_for``).
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from . import blas
from .loop import in_threads

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
EXACT_QUARTERS = 2.0 ** 51  # multiples of 1/4 below this add exactly in float64


def applies(kh: int, kw: int, stride: int) -> bool:
    return kh == 3 and kw == 3 and stride == 1


def transformed_kernels(matrix: np.ndarray, c: int) -> np.ndarray:
    """U (16, c, o) = G g G^T of each kernel; ``matrix`` (9 c, o) in the window's (kh, kw, c) order,
    U in its dtype (computed in float64: exact for float64 integers, one rounding for float32)."""
    g = matrix.astype(np.float64).reshape(3, 3, c, -1)
    u = np.einsum("ai,ijco,bj->abco", G, g, G)
    return np.ascontiguousarray(u.reshape(16, c, -1).astype(matrix.dtype))


def exact_for(u: np.ndarray, largest_input: float) -> bool:
    """float64: whether every sum stays exact for inputs up to ``largest_input`` in magnitude (a
    transformed input is at most 4 of them, an output at most 9 products' sums)."""
    return 36.0 * largest_input * float(np.abs(u).sum(axis=(0, 1)).max(initial=0.0)) < EXACT_QUARTERS


def tiles(h: int, w: int, pad: int) -> tuple[int, int, int, int]:
    """Output height and width, and tiles down and across."""
    ho, wo = h + 2 * pad - 2, w + 2 * pad - 2
    return ho, wo, (ho + 1) // 2, (wo + 1) // 2


def convolve(src: np.ndarray, kernels: np.ndarray, geometry: tuple[int, int, int, int, int], out: np.ndarray,
             fresh: bool, n_threads: int, block_bytes: int) -> None:
    """out (rows, ho wo o) += the convolution of src's rows (channel-last images of f h x f w pixels,
    c channels, summed over f x f blocks; ``geometry`` = (c, h, w, pad, f)) with the kernels
    (``transformed_kernels``), in out's dtype (``fresh``: out is written, not added to).
    Each of ``n_threads`` threads takes its share of the rows through all three phases (transform,
    products, transform back) in blocks whose tiles and products take about ``block_bytes`` between
    them: a block stays in its core's cache from one phase to the next, and no phase waits for the
    other threads (``blas.matmul`` on one thread: inside ``blas.single_threaded`` BLAS adds none)."""
    c, h, w, pad, f = geometry
    o = kernels.shape[2]
    ho, wo, th, tw = tiles(h, w, pad)
    block = max(1, block_bytes // max(1, n_threads) // (16 * th * tw * (c + o) * out.itemsize))

    def rows_through_all_phases(lo: int, hi: int) -> None:
        scratch = _scratch(16 * min(block, hi - lo) * th * tw * (c + o), out.dtype)
        for first in range(lo, hi, block):
            last = min(first + block, hi)
            n_tiles = (last - first) * th * tw
            inputs = scratch[:16 * n_tiles * c].reshape(16, n_tiles, c)
            products = scratch[16 * n_tiles * c:16 * n_tiles * (c + o)].reshape(16, n_tiles, o)
            _transform_inputs(src[first:last], c, h, w, pad, f, th, tw, inputs)
            blas.matmul(inputs, kernels, products)
            _transform_outputs(products, ho, wo, th, tw, fresh, out[first:last])

    in_threads(rows_through_all_phases, len(src), n_threads)


_THREAD = threading.local()


def _scratch(size: int, dtype) -> np.ndarray:
    """This thread's scratch of ``size`` elements, kept for its next call: fresh memory costs page
    faults on first touch, as much as the transforms that fill it on a few rows."""
    nbytes = size * np.dtype(dtype).itemsize
    if getattr(_THREAD, "buffer", np.empty(0, np.uint8)).size < nbytes:
        _THREAD.buffer = np.empty(nbytes, np.uint8)
    return _THREAD.buffer[:nbytes].view(dtype)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _transform_inputs(src, c, h, w, pad, f, th, tw, v):
    """v[k, (r th + ty) tw + tx] = position k of B^T d B for the tile at (2 ty - pad, 2 tx - pad) of
    row r (zero outside the image); src rows are channel-last images of f h x f w pixels, summed
    over f x f blocks (an absorbed average pooling; f = 1: the image itself). Per row of tiles, B^T
    runs down the 4 image rows once (long contiguous loops), then B across each tile."""
    n = w * c
    rows = np.empty((4, n), v.dtype)  # the tile row's 4 image rows
    column = np.zeros((4, (2 * tw + 2) * c), v.dtype)  # B^T down the rows; the padding stays zero
    base = pad * c
    for r in range(len(src)):
        image = src[r]
        for ty in range(th):
            for a in range(4):
                _image_row(image, 2 * ty - pad + a, h, n, f, c, rows[a])
            r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
            c0, c1, c2, c3 = column[0, base:base + n], column[1, base:base + n], column[2, base:base + n], \
                column[3, base:base + n]
            for i in range(n):
                c0[i] = r0[i] - r2[i]
                c1[i] = r1[i] + r2[i]
                c2[i] = r2[i] - r1[i]
                c3[i] = r1[i] - r3[i]
            for tx in range(tw):
                t = (r * th + ty) * tw + tx
                for k in range(4):
                    e0, e1 = column[k, 2 * tx * c:(2 * tx + 1) * c], column[k, (2 * tx + 1) * c:(2 * tx + 2) * c]
                    e2, e3 = column[k, (2 * tx + 2) * c:(2 * tx + 3) * c], column[k, (2 * tx + 3) * c:(2 * tx + 4) * c]
                    v0, v1, v2, v3 = v[4 * k, t], v[4 * k + 1, t], v[4 * k + 2, t], v[4 * k + 3, t]
                    for ci in range(c):
                        v0[ci] = e0[ci] - e2[ci]
                        v1[ci] = e1[ci] + e2[ci]
                        v2[ci] = e2[ci] - e1[ci]
                        v3[ci] = e1[ci] - e3[ci]


@njit(cache=CACHE, inline="always")
def _image_row(image, y, h, n, f, c, out):
    """out (n = w c) = image row y summed over its f x f blocks, or zero outside the image."""
    if y < 0 or y >= h:
        for i in range(n):
            out[i] = 0
    elif f == 1:
        row = image[y * n:(y + 1) * n]
        for i in range(n):
            out[i] = row[i]
    else:
        for i in range(n):
            out[i] = 0
        for a in range(f):
            row = image[(y * f + a) * n * f:(y * f + a + 1) * n * f]
            for x in range(n // c):
                for b in range(f):
                    pixel = row[(x * f + b) * c:(x * f + b + 1) * c]
                    for ci in range(c):
                        out[x * c + ci] += pixel[ci]


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _transform_outputs(m, ho, wo, th, tw, fresh, out):
    """out[r] (ho wo o, channel-last) = A^T M A of row r's tiles, cropped at the edges; added to
    what out holds unless ``fresh``."""
    o = m.shape[2]
    down = np.empty((2, 4, o), m.dtype)  # A^T applied down each tile's 4 columns
    for r in range(len(out)):
        target = out[r]
        for ty in range(th):
            for tx in range(tw):
                t = (r * th + ty) * tw + tx
                for b in range(4):
                    for k in range(o):
                        m0, m1, m2, m3 = m[b, t, k], m[4 + b, t, k], m[8 + b, t, k], m[12 + b, t, k]
                        down[0, b, k] = m0 + m1 + m2
                        down[1, b, k] = m1 - m2 - m3
                for a in range(2):
                    y = 2 * ty + a
                    for e in range(2):
                        x = 2 * tx + e
                        if y >= ho or x >= wo:
                            continue
                        base = (y * wo + x) * o
                        for k in range(o):
                            if e == 0:
                                s = down[a, 0, k] + down[a, 1, k] + down[a, 2, k]
                            else:
                                s = down[a, 1, k] - down[a, 2, k] - down[a, 3, k]
                            if fresh:
                                target[base + k] = s
                            else:
                                target[base + k] += s
