"""Reshapes, transposes, slices and splits of a computed tensor, for the fx and ONNX readers.

They are followed as index arrays (for one sample: which element of the source tensor each
element is) until a layer reads the result; then ``resolve`` says what the IR can make of it:
the source itself, a flatten, or a channel gather (``Channels``). ShuffleNet's channel shuffle
(view to (N, g, C/g, H, W), transpose, view back) and its channel split (``chunk``, ONNX
Slice/Split) arrive this way; anything that moves values between pixels is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eventsnn.ir import Shape

MAX_ELEMENTS = 1 << 26  # index arrays of larger tensors are not followed (64 M elements, 512 MiB)


@dataclass(frozen=True, eq=False)
class View:
    """Elements of ``source`` (an IR index; -1 the input) rearranged: ``index`` has the view's
    sample shape and holds flat positions in one sample of the source."""

    source: int
    index: np.ndarray

    @property
    def shape(self) -> Shape:
        return tuple(int(d) for d in self.index.shape)


def whole(source: int, shape: Shape) -> View:
    size = int(np.prod(shape))
    if size > MAX_ELEMENTS:
        raise ValueError(f"a reshape of a tensor of {size:,} elements per sample is not followed (at most {MAX_ELEMENTS:,})")
    return View(source, np.arange(size, dtype=np.int64).reshape(shape))


def reshape(view: View, dims: list[int]) -> View:
    """``dims``: the sample dimensions (the batch is not among them); one may be -1."""
    dims = [int(d) for d in dims]
    if dims.count(-1) > 1 or any(d < -1 or d == 0 for d in dims):
        raise ValueError(f"cannot reshape {view.shape} to {dims}")
    known = int(np.prod([d for d in dims if d != -1]))
    size = view.index.size
    if -1 in dims:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape {view.shape} to {dims}")
        dims[dims.index(-1)] = size // known
    if int(np.prod(dims)) != size:
        raise ValueError(f"cannot reshape {view.shape} ({size} values per sample) to {dims}")
    return View(view.source, view.index.reshape(dims))


def transpose(view: View, perm: list[int]) -> View:
    """``perm``: a permutation of the sample axes."""
    if sorted(perm) != list(range(view.index.ndim)):
        raise ValueError(f"{perm} is not a permutation of the {view.index.ndim} axes of a sample")
    return View(view.source, view.index.transpose(perm))


def take(view: View, axis: int, positions) -> View:
    """The elements at ``positions`` along a sample axis (a slice or a list)."""
    if not 0 <= axis < view.index.ndim:
        raise ValueError(f"axis {axis + 1} is not an axis of a {view.shape} sample (axis 0 is the batch)")
    picked = np.take(view.index, np.arange(view.index.shape[axis])[positions], axis=axis)
    if picked.size == 0:
        raise ValueError(f"selects nothing of axis {axis + 1} of a {view.shape} sample")
    return View(view.source, picked)


def split(view: View, axis: int, sizes: list[int]) -> list[View]:
    if not 0 <= axis < view.index.ndim or sum(sizes) != view.index.shape[axis] or min(sizes) < 1:
        raise ValueError(f"cannot split axis {axis + 1} of a {view.shape} sample into {sizes}")
    bounds = np.cumsum([0] + list(sizes))
    return [take(view, axis, slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]


def resolve(view: View, source_shape: Shape) -> tuple[str, np.ndarray | None]:
    """What a view is in the IR: ('same', None), ('flatten', None) or ('channels', index)."""
    index = view.index
    flat = np.arange(index.size)
    if view.shape == tuple(source_shape) and np.array_equal(index.ravel(), flat):
        return "same", None
    if index.ndim == 1 and np.array_equal(index, flat) and index.size == int(np.prod(source_shape)):
        return "flatten", None
    if index.ndim == 3 and len(source_shape) == 3 and view.shape[1:] == tuple(source_shape[1:]):
        pixels = int(np.prod(source_shape[1:]))
        channels = index[:, 0, 0] // pixels
        within = np.arange(pixels).reshape(source_shape[1:])
        if np.array_equal(index, channels[:, None, None] * pixels + within):
            return "channels", channels
    raise ValueError(f"a reshape, transpose or slice of a {tuple(source_shape)} sample into {view.shape} that moves "
                     "values between pixels or axes; only flattening and rearranging whole channels (splits, "
                     "shuffles) are supported")
