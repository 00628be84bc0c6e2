"""The two ways stage by stage multiplies a convolution, Winograd's F(2x2, 3x3) (``engine.winograd``)
and unrolled windows (``lockstep._unroll``), against the convolution written out from its definition."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventsnn.engine import winograd
from eventsnn.engine.lockstep import _unroll


def direct_convolution(src: np.ndarray, weight: np.ndarray, c: int, h: int, w: int, pad: int, f: int,
                       stride: int = 1) -> np.ndarray:
    """Rows of channel-last images (f h x f w pixels) summed over f x f blocks, then convolved with
    weight (o, c, kh, kw); float64, channel-last out."""
    images = src.reshape(len(src), h, f, w, f, c).astype(np.float64).sum(axis=(2, 4))
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kh, kw = weight.shape[2:]
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((len(src), ho, wo, len(weight)))
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
            out += window @ weight[:, :, i, j].T.astype(np.float64)
    return out.reshape(len(src), -1)


def as_matrix(weight: np.ndarray) -> np.ndarray:
    """(o, c, kh, kw) -> (kh kw c, o) in the window's (kh, kw, c) order, as ``lockstep`` lays it out."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(-1, len(weight)))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 4), c=st.integers(1, 5), o=st.integers(1, 4), h=st.integers(1, 7), w=st.integers(1, 7),
       kh=st.integers(1, 3), kw=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 2),
       f=st.integers(1, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_unrolled_windows_times_the_weights_are_the_convolution(rows, c, o, h, w, kh, kw, stride, pad, f, seed):
    """Every kernel size, stride and padding, absorbed f x f sum poolings, rows split between two
    calls: the windows, multiplied by the weight matrix, give the convolution exactly (integers)."""
    assume(h + 2 * pad >= kh and w + 2 * pad >= kw)
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, (rows, f * h * f * w * c)).astype(np.int16)
    weight = rng.integers(-1000, 1001, (o, c, kh, kw)).astype(np.float64)
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    windows = np.full((rows * ho * wo, kh * kw * c), np.nan)
    middle = rows // 2
    for lo, hi in ((0, middle), (middle, rows)):
        _unroll(src[lo:hi], c, h, w, kh, kw, stride, pad, ho, wo, f, windows[lo * ho * wo:hi * ho * wo])
    out = (windows @ as_matrix(weight)).reshape(rows, -1)
    np.testing.assert_array_equal(out, direct_convolution(src, weight, c, h, w, pad, f, stride))


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 4), c=st.integers(1, 5), o=st.integers(1, 6), h=st.integers(1, 7), w=st.integers(1, 7),
       pad=st.integers(0, 2), f=st.integers(1, 3), block_bytes=st.sampled_from([1, 1 << 20]),
       fresh=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_float64_winograd_is_the_convolution_exactly_on_integers(rows, c, o, h, w, pad, f, block_bytes, fresh, seed):
    """Odd and even sizes (cropped tiles), every padding, absorbed f x f sum poolings, blocks of one
    row, added to what the output held or written: every current exact (multiples of 1/4 only)."""
    assume(h + 2 * pad >= 3 and w + 2 * pad >= 3)  # an output pixel at least
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, (rows, f * h * f * w * c)).astype(np.int16)
    weight = rng.integers(-1000, 1001, (o, c, 3, 3)).astype(np.float64)
    kernels = winograd.transformed_kernels(as_matrix(weight), c)
    assert winograd.exact_for(kernels, 255 * f * f)
    held = rng.integers(-99, 100, (rows, (h + 2 * pad - 2) * (w + 2 * pad - 2) * o)).astype(np.float64)
    out = held.copy()
    winograd.convolve(src, kernels, (c, h, w, pad, f), out, fresh, 2, block_bytes)
    expected = direct_convolution(src, weight, c, h, w, pad, f) + (0 if fresh else held)
    np.testing.assert_array_equal(out, expected)


def test_float32_winograd_rounds_like_a_float32_sum():
    """Real-valued weights in float32: within a few float32 roundings of the float64 convolution."""
    rng = np.random.default_rng(0)
    c, h, o = 16, 8, 8
    src = rng.integers(0, 8, (3, h * h * c)).astype(np.int16)
    weight = rng.normal(0, 0.1, (o, c, 3, 3)).astype(np.float32)
    out = np.empty((3, h * h * o), np.float32)
    winograd.convolve(src, winograd.transformed_kernels(as_matrix(weight), c), (c, h, h, 1, 1), out, True, 1, 1 << 20)
    expected = direct_convolution(src, weight, c, h, h, 1, 1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_the_exactness_bound_refuses_sums_that_could_leave_float64s_integers():
    kernels = winograd.transformed_kernels(np.full((9, 1), 2.0 ** 40), 1)
    assert winograd.exact_for(kernels, 1.0)
    assert not winograd.exact_for(kernels, 2.0 ** 12)
