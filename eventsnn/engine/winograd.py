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

import numpy as np
from numba import njit

from ..kernel_cache import CACHE
from . import blas
from .loop import in_threads, kept_scratch

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
EXACT_QUARTERS = 2.0 ** 51  # multiples of 1/4 below this add exactly in float64


MIN_CHANNELS = 8  # below, a product over c input channels is too short to run well: unrolled windows (9 c) win


def applies(kh: int, kw: int, stride: int, channels: int) -> bool:
    """Whether a conv goes by Winograd: 3 x 3, stride 1, at least MIN_CHANNELS input channels (an
    image's 1-3 channels multiply faster as unrolled windows, in a probe of 1,000 images on 2
    threads: 3 -> 64 channels at 32 x 32 62 ms by Winograd, 40 unrolled; 1 -> 16 at 28 x 28 40
    against 9; 8 -> 16 at 32 x 32 22 against 30)."""
    return kh == 3 and kw == 3 and stride == 1 and channels >= MIN_CHANNELS


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
        inputs, products = _planes(min(block, hi - lo) * th * tw, c, o, out.dtype)
        for first in range(lo, hi, block):
            last = min(first + block, hi)
            n_tiles = (last - first) * th * tw
            _transform_inputs(src[first:last], c, h, w, pad, f, th, tw, inputs)
            blas.matmul(inputs[:, :n_tiles * c].reshape(16, n_tiles, c), kernels,
                        products[:, :n_tiles * o].reshape(16, n_tiles, o))
            _transform_outputs(products, ho, wo, th, tw, fresh, out[first:last])

    in_threads(rows_through_all_phases, len(src), n_threads)


PLANE_GAP = 16  # elements between two planes: strides of a power of two map every plane to the same cache sets


def _planes(n_tiles: int, c: int, o: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """The 16 planes of transformed inputs (16, n_tiles c + gap) and of products (16, n_tiles o + gap),
    a tile's values contiguous in each; this thread's scratch (``kept_scratch``)."""
    widths = (n_tiles * c + PLANE_GAP, n_tiles * o + PLANE_GAP)
    scratch = kept_scratch("winograd", 16 * sum(widths) * np.dtype(dtype).itemsize).view(dtype)
    return scratch[:16 * widths[0]].reshape(16, -1), scratch[16 * widths[0]:].reshape(16, -1)


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _transform_inputs(src, c, h, w, pad, f, th, tw, v):
    """v[k, t c:(t + 1) c] = position k of B^T d B for tile t = (r th + ty) tw + tx, at (2 ty - pad,
    2 tx - pad) of row r (zero outside the image); src rows are channel-last images of f h x f w
    pixels, summed over f x f blocks (an absorbed average pooling; f = 1: the image itself).
    Per row of tiles, B^T runs down the 4 image rows, then B across: with the columns split into
    even and odd ones, each of the 16 positions is one long loop over the row's tiles (a tile's
    columns 2 tx .. 2 tx + 3 are even[tx], odd[tx], even[tx + 1], odd[tx + 1])."""
    half, span = (tw + 1) * c, tw * c
    rows = np.zeros((4, 2, half), v.dtype)  # the tile row's 4 image rows (y at y % 4), even and odd columns
    column = np.empty((4, 2, half), v.dtype)  # B^T down the rows
    for r in range(len(src)):
        image = src[r]
        for ty in range(th):
            for a in range(0 if ty == 0 else 2, 4):  # a row of tiles shares two image rows with the one before
                _image_row(image, 2 * ty - pad + a, h, w, f, c, pad, rows[(2 * ty + a) % 4])
            for q in range(2):
                r0, r1 = rows[(2 * ty) % 4, q], rows[(2 * ty + 1) % 4, q]
                r2, r3 = rows[(2 * ty + 2) % 4, q], rows[(2 * ty + 3) % 4, q]
                c0, c1, c2, c3 = column[0, q], column[1, q], column[2, q], column[3, q]
                for i in range(half):
                    c0[i] = r0[i] - r2[i]
                    c1[i] = r1[i] + r2[i]
                    c2[i] = r2[i] - r1[i]
                    c3[i] = r1[i] - r3[i]
            first = (r * th + ty) * span
            for k in range(4):  # views indexed from 0: the loops vectorize
                e0, e1 = column[k, 0, :span], column[k, 0, c:c + span]
                o0, o1 = column[k, 1, :span], column[k, 1, c:c + span]
                v0, v1 = v[4 * k, first:first + span], v[4 * k + 1, first:first + span]
                v2, v3 = v[4 * k + 2, first:first + span], v[4 * k + 3, first:first + span]
                for i in range(span):
                    v0[i] = e0[i] - e1[i]
                for i in range(span):
                    v1[i] = o0[i] + e1[i]
                for i in range(span):
                    v2[i] = e1[i] - o0[i]
                for i in range(span):
                    v3[i] = o0[i] - o1[i]


@njit(cache=CACHE, inline="always")
def _image_row(image, y, h, w, f, c, pad, out):
    """out (2, (tw + 1) c) = image row y summed over its f x f blocks, padded column xp = x + pad at
    out[xp % 2, xp // 2]; all zero outside the image (the padding columns are never written)."""
    if y < 0 or y >= h:
        out[:] = 0
        return
    n = w * c
    if f == 1:
        line = image[y * n:(y + 1) * n]
        for q in range(2):  # unsigned indices: no negative-index wraparound, so the copies vectorize
            target = out[q]
            for x in range((q - pad) % 2, w, 2):
                first, to = np.uint64(x * c), np.uint64((x + pad) // 2 * c)
                for ci in range(np.uint64(c)):
                    target[to + ci] = line[first + ci]
        return
    for x in range(w):
        xp = x + pad
        pixel_out = out[xp % 2, (xp // 2) * c:(xp // 2 + 1) * c]
        pixel_out[:] = 0
        for a in range(f):
            row = image[(y * f + a) * n * f:(y * f + a + 1) * n * f]
            for b in range(f):
                pixel = row[(x * f + b) * c:(x * f + b + 1) * c]
                for ci in range(c):
                    pixel_out[ci] += pixel[ci]


@njit(cache=CACHE, nogil=True, error_model="numpy")
def _transform_outputs(m, ho, wo, th, tw, fresh, out):
    """out[r] (ho wo o, channel-last) = A^T M A of row r's tiles (tile t's products at
    m[k, t o:(t + 1) o]), cropped at the edges; added to what out holds unless ``fresh``. Per row
    of tiles, A^T runs down the tiles, then A across into the even and odd output columns (long
    loops), which are then interleaved into the image rows."""
    o = out.shape[1] // (ho * wo)
    span = tw * o
    down = np.empty((2, 4, span), m.dtype)  # A^T down each tile's 4 columns
    even, odd = np.empty(span, m.dtype), np.empty(span, m.dtype)  # an output row's columns 2 tx, 2 tx + 1
    for r in range(len(out)):
        target = out[r]
        for ty in range(th):
            first = (r * th + ty) * span
            for b in range(4):
                m0, m1 = m[b, first:first + span], m[4 + b, first:first + span]
                m2, m3 = m[8 + b, first:first + span], m[12 + b, first:first + span]
                d0, d1 = down[0, b], down[1, b]
                for i in range(span):
                    d0[i] = m0[i] + m1[i] + m2[i]
                for i in range(span):
                    d1[i] = m1[i] - m2[i] - m3[i]
            for a in range(min(2, ho - 2 * ty)):
                x0, x1, x2, x3 = down[a, 0], down[a, 1], down[a, 2], down[a, 3]
                for i in range(span):
                    even[i] = x0[i] + x1[i] + x2[i]
                for i in range(span):
                    odd[i] = x1[i] - x2[i] - x3[i]
                line = target[(2 * ty + a) * wo * o:(2 * ty + a + 1) * wo * o]
                for q in range(2):  # unsigned indices, as in _image_row
                    values = even if q == 0 else odd
                    for x in range(q, wo, 2):
                        to, first = np.uint64(x * o), np.uint64(x // 2 * o)
                        if fresh:
                            for k in range(np.uint64(o)):
                                line[to + k] = values[first + k]
                        else:
                            for k in range(np.uint64(o)):
                                line[to + k] += values[first + k]
