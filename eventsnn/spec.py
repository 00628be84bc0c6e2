"""The architecture spec (JSON) and named parameters <-> IR.

Spec: ``{"input_shape": [C, H, W], "layers": [...]}``; each layer has ``"type"`` (conv2d, linear,
batchnorm, relu, clip_relu, qcfs, maxpool2d, avgpool2d, flatten, softmax, add). Parameter layers
carry ``"name"``, the prefix of their parameters (``name.weight``, ``name.bias``; batch-norm also
``name.running_mean``, ``name.running_var`` and optional ``"eps"``) and their shape fields
(``out_channels``, ``kernel_size``, ``stride``, ``padding``, optional ``groups``; ``out_features``).
Pools carry ``kernel_size`` and optional ``stride``, ``padding``, ``ceil_mode``, ``dilation``
(max) and ``count_include_pad`` (avg), as PyTorch's; clip_relu carries ``threshold``, qcfs ``levels`` and
``threshold``; add carries optional ``weights`` (per input a number, or a list with one per
channel); concat (channels of its inputs, in order) has no fields. A layer reads the layer before it unless it names its sources in ``"inputs"``
(layer names, ``"input"`` for the network input), e.g. a residual join
``{"type": "add", "name": "add1", "inputs": ["bn2", "relu0"]}``.

A layer kind is its IR class's ``spec_type`` plus one ``_Format`` in ``_FORMATS`` below.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .ir import (LAYER_CLASSES, QCFS, Add, AvgPool2d, BatchNorm, Channels, ClipReLU, Concat, Conv2d, Flatten, Layer, Linear, MaxPool2d,
                 Network, ReLU, Softmax)

LAYER_TYPES = tuple(cls.spec_type for cls in LAYER_CLASSES)
_CLASS_OF_TYPE = {cls.spec_type: cls for cls in LAYER_CLASSES}


class SpecError(ValueError):
    """An architecture spec or its parameters do not describe a valid network."""


@dataclass(frozen=True)
class _Entry:
    """One layer's spec entry while it is read: its fields, its name (the prefix of its parameters),
    the checkpoint's parameters, and where it is in the spec (for messages)."""

    fields: dict
    name: str
    where: str
    params: Mapping[str, np.ndarray]

    def error(self, message: str) -> SpecError:
        return SpecError(f"{self.where}: {message}")

    def require(self, *keys: str) -> None:
        for key in keys:
            if key not in self.fields:
                raise self.error(f"missing field '{key}'")

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.fields.get(key, default)
        if value is None:
            raise self.error(f"missing field '{key}'")
        if isinstance(value, (list, tuple)):  # square kernels and symmetric strides only
            if len(value) != 2 or value[0] != value[1]:
                raise self.error(f"'{key}' must be one integer or two equal ones, not {value}")
            value = value[0]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"'{key}' must be an integer, not {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.fields.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"'{key}' must be true or false, not {value!r}")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.fields.get(key, default)
        if value is None:
            raise self.error(f"missing field '{key}'")
        if not _number(value):
            raise self.error(f"'{key}' must be a number, not {value!r}")
        return float(value)

    def param(self, suffix: str, required: bool = True) -> np.ndarray | None:
        """The parameter ``name.suffix`` as float32 (None if it is optional and absent)."""
        key = f"{self.name}.{suffix}"
        if key not in self.params:
            if required:
                raise self.error(f"parameter '{key}' is missing from the checkpoint{_similar(key, self.params)}")
            return None
        value = np.asarray(self.params[key])
        if not np.issubdtype(value.dtype, np.number):
            raise self.error(f"parameter '{key}' is not numeric ({value.dtype})")
        if not np.all(np.isfinite(value)):
            raise self.error(f"parameter '{key}' contains NaN or Inf")
        return value.astype(np.float32)

    def check_shape(self, value: np.ndarray, shape: tuple, suffix: str) -> None:
        if value.shape != shape:
            raise self.error(f"parameter '{self.name}.{suffix}' has shape {value.shape}, the spec implies {shape}")

    def bias(self, size: int) -> np.ndarray | None:
        """The optional ``name.bias`` of a layer with ``size`` outputs."""
        bias = self.param("bias", required=False)
        if bias is not None:
            self.check_shape(bias, (size,), "bias")
        return bias


# Readers: a spec entry -> a layer of class ``cls``. Each checks what the layer's constructor
# cannot (fields present and integers, parameters present and of the shape the entry implies);
# the constructor checks the values.

def _read_conv2d(cls: type[Conv2d], e: _Entry) -> Conv2d:
    weight = e.param("weight")
    if weight.ndim != 4:
        raise e.error(f"'{e.name}.weight' must be 4-D (out, in, kh, kw), found {weight.shape}")
    k = e.integer("kernel_size")
    e.check_shape(weight, (e.integer("out_channels"), weight.shape[1], k, k), "weight")  # (out, in / groups, k, k)
    return cls(weight, e.bias(weight.shape[0]), e.integer("stride", 1), e.integer("padding", 0), e.name,
               e.integer("groups", 1))


def _read_linear(cls: type[Linear], e: _Entry) -> Linear:
    weight, out_features = e.param("weight"), e.integer("out_features")
    if weight.ndim != 2 or weight.shape[0] != out_features:
        raise e.error(f"'{e.name}.weight' has shape {weight.shape}, expected ({out_features}, in)")
    return cls(weight, e.bias(weight.shape[0]), e.name)


def _read_batchnorm(cls: type[BatchNorm], e: _Entry) -> BatchNorm:
    mean, var = e.param("running_mean"), e.param("running_var")
    gamma, beta = e.param("weight", required=False), e.param("bias", required=False)
    gamma = np.ones_like(mean) if gamma is None else gamma  # affine=False: the identity transform
    beta = np.zeros_like(mean) if beta is None else beta
    for suffix, value in (("running_var", var), ("weight", gamma), ("bias", beta)):
        e.check_shape(value, mean.shape, suffix)
    return cls(gamma, beta, mean, var, e.number("eps", 1e-5), e.name)


def _read_clip_relu(cls: type[ClipReLU], e: _Entry) -> ClipReLU:
    return cls(e.number("threshold"), e.name)


def _read_qcfs(cls: type[QCFS], e: _Entry) -> QCFS:
    e.require("threshold", "levels")
    return cls(e.integer("levels"), e.number("threshold"), e.name)


def _read_pool(cls: type[MaxPool2d] | type[AvgPool2d], e: _Entry) -> MaxPool2d | AvgPool2d:
    kernel_size = e.integer("kernel_size")
    stride = None if e.fields.get("stride") is None else e.integer("stride")  # None: the kernel size
    options = {"padding": e.integer("padding", 0), "ceil_mode": e.flag("ceil_mode", False)}
    if cls is MaxPool2d:
        options["dilation"] = e.integer("dilation", 1)
    else:
        options["count_include_pad"] = e.flag("count_include_pad", True)
    return cls(kernel_size, stride, e.name, **options)


def _read_add(cls: type[Add], e: _Entry) -> Add:
    weights = e.fields.get("weights")
    if weights is not None and not (isinstance(weights, list) and all(
            _number(w) or (isinstance(w, list) and w and all(_number(c) for c in w)) for w in weights)):
        raise e.error(f"'weights' must list a number (or a list, one per channel) per input, not {weights!r}")
    return cls(e.name, None if weights is None else tuple(weights))


def _read_channels(cls: type[Channels], e: _Entry) -> Channels:
    e.require("index")
    index = e.fields["index"]
    if not isinstance(index, list) or not index or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                                                           for c in index):
        raise e.error(f"'index' must list the input channel (a non-negative integer) of each output channel, "
                      f"not {index!r}")
    return cls(np.array(index, np.int64), e.name)


def _read_name_only(cls: type, e: _Entry) -> Layer:
    return cls(e.name)


# Writers: the fields of a layer's entry besides "type" and "name".

def _no_fields(layer: Layer) -> dict:
    return {}


def _attributes(*names: str) -> Callable[[Layer], dict]:
    """Fields that are the layer's attributes of the same names."""
    return lambda layer: {name: getattr(layer, name) for name in names}


def _conv2d_fields(layer: Conv2d) -> dict:
    out_channels, _, kernel_size, _ = layer.weight.shape
    fields = {"out_channels": out_channels, "kernel_size": kernel_size, "stride": layer.stride, "padding": layer.padding}
    return fields if layer.groups == 1 else {**fields, "groups": layer.groups}


_POOL_OPTIONS = {"padding": 0, "ceil_mode": False, "dilation": 1, "count_include_pad": True}


def _pool_fields(layer: MaxPool2d | AvgPool2d) -> dict:
    """Kernel and stride, and the options that differ from PyTorch's defaults (so specs of plain
    pools stay as they were)."""
    options = {key: getattr(layer, key) for key, default in _POOL_OPTIONS.items()
               if hasattr(layer, key) and getattr(layer, key) != default}
    return {"kernel_size": layer.kernel_size, "stride": layer.stride, **options}


def _add_fields(layer: Add) -> dict:
    if layer.weights is None:
        return {}
    return {"weights": [w if np.ndim(w) == 0 else list(w) for w in layer.weights]}


@dataclass(frozen=True)
class _Format:
    """How one layer kind appears in a spec: ``read`` builds the layer from its entry, ``write``
    gives the entry's fields, and ``params`` maps the suffixes of its named parameters (``name.weight``)
    to the layer's array attributes. A kind with parameters needs a ``"name"`` in its entry."""

    read: Callable[[type, _Entry], Layer]
    write: Callable[[Layer], dict] = _no_fields
    params: Mapping[str, str] = field(default_factory=dict)


_WEIGHT_AND_BIAS = {"weight": "weight", "bias": "bias"}
_FORMATS: dict[type, _Format] = {
    Conv2d: _Format(_read_conv2d, _conv2d_fields, _WEIGHT_AND_BIAS),
    Linear: _Format(_read_linear, lambda layer: {"out_features": layer.weight.shape[0]}, _WEIGHT_AND_BIAS),
    BatchNorm: _Format(_read_batchnorm, _attributes("eps"),  # PyTorch's state_dict names
                       {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "var"}),
    ReLU: _Format(_read_name_only),
    ClipReLU: _Format(_read_clip_relu, _attributes("threshold")),
    QCFS: _Format(_read_qcfs, _attributes("levels", "threshold")),
    MaxPool2d: _Format(_read_pool, _pool_fields),
    AvgPool2d: _Format(_read_pool, _pool_fields),
    Flatten: _Format(_read_name_only),
    Softmax: _Format(_read_name_only),
    Add: _Format(_read_add, _add_fields),
    Concat: _Format(_read_name_only),
    Channels: _Format(_read_channels, lambda layer: {"index": layer.index.tolist()}),
}


def _layer(entry: dict, index: int, params: Mapping[str, np.ndarray]) -> Layer:
    """Read the spec's layer number ``index`` (counted from 1, as a person reading the file counts)."""
    if not isinstance(entry, dict) or "type" not in entry:
        raise SpecError(f"layer {index}: must be an object with a 'type'")
    kind = entry["type"]
    if kind not in LAYER_TYPES:
        raise SpecError(f"layer {index}: unsupported type {kind!r} (supported: {', '.join(LAYER_TYPES)})")
    cls = _CLASS_OF_TYPE[kind]
    layer_format = _FORMATS[cls]
    where = f"layer {index} ({kind})"
    if layer_format.params and "name" not in entry:
        raise SpecError(f"{where}: needs a 'name', the prefix of its parameters")
    if not isinstance(entry.get("name", ""), str):
        raise SpecError(f"{where}: 'name' must be a string, not {entry['name']!r}")
    return layer_format.read(cls, _Entry(entry, entry.get("name", f"{kind}{index - 1}"), where, params))


def _inputs(entries: list, layers: list) -> tuple[tuple[int, ...], ...]:
    """Each layer's source indices from the optional ``inputs`` name lists (default: the layer before)."""
    index = {"input": -1}
    result = []
    for i, (entry, layer) in enumerate(zip(entries, layers)):
        names = entry.get("inputs")
        where = f"layer {i + 1} ('{layer.name}')"
        if names is None:
            result.append((i - 1,))
        elif not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SpecError(f"{where}: 'inputs' must be a non-empty list of layer names")
        else:
            unknown = [n for n in names if n not in index]
            if unknown:
                raise SpecError(f"{where}: inputs {unknown} are not earlier layers (or 'input')")
            result.append(tuple(index[n] for n in names))
        index[layer.name] = i
    return tuple(result)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _similar(key: str, params: Mapping[str, np.ndarray]) -> str:
    """A hint naming the checkpoint's keys closest to a missing one (a misnamed layer)."""
    close = difflib.get_close_matches(key, list(params), n=3, cutoff=0.5)
    if close:
        return f"; similar keys there: {', '.join(close)}"
    return f" (it holds {len(params)} arrays, e.g. {', '.join(list(params)[:4])})" if params else " (it is empty)"


# state_dict entries that carry no parameter of a converted layer
_NOT_PARAMETERS = ("num_batches_tracked",)


def unused_parameters(net: Network, params: Mapping[str, np.ndarray]) -> list[str]:
    """Names in ``params`` that no layer of ``net`` reads (a layer misnamed in the spec, or missing)."""
    used = {f"{layer.name}.{suffix}" for layer in net.layers for suffix in _FORMATS[type(layer)].params}
    # a trained threshold (QCFS, clip) is a parameter of the module but a field of the spec
    used |= {f"{layer.name}.threshold" for layer in net.layers if isinstance(layer, (ClipReLU, QCFS))}
    return [key for key in params if key not in used and not key.endswith(_NOT_PARAMETERS)]


def network_from_spec(spec: dict, params: Mapping[str, np.ndarray]) -> Network:
    """Build and check the IR network that ``spec`` describes, with parameters from ``params``."""
    if not isinstance(spec, dict) or "input_shape" not in spec or "layers" not in spec:
        raise SpecError("an architecture spec is an object with 'input_shape' and 'layers'")
    shape = spec["input_shape"]
    if not isinstance(shape, (list, tuple)) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise SpecError(f"input_shape must be a list of positive integers, not {shape!r}")
    if not isinstance(spec["layers"], list):
        raise SpecError("'layers' must be a list")
    layers = []
    for i, entry in enumerate(spec["layers"], start=1):
        try:
            layers.append(_layer(entry, i, params))
        except SpecError:
            raise
        except ValueError as err:
            raise SpecError(f"layer {i}: {err}") from None
    try:
        net = Network(tuple(shape), tuple(layers), _inputs(spec["layers"], layers))
    except ValueError as err:
        raise SpecError(str(err)) from None
    unused = unused_parameters(net, params)
    if unused:
        warnings.warn(f"{len(unused)} arrays of the checkpoint are not used by the spec: "
                      f"{', '.join(unused[:6])}{', ...' if len(unused) > 6 else ''}", stacklevel=2)
    return net


def network_to_spec(net: Network) -> tuple[dict, dict[str, np.ndarray]]:
    """The spec and named parameters of a network (the inverse of ``network_from_spec``)."""
    entries, params = [], {}
    for i, layer in enumerate(net.layers):
        layer_format = _FORMATS[type(layer)]
        entry = {"type": layer.spec_type, **layer_format.write(layer), "name": layer.name}
        params.update({f"{layer.name}.{suffix}": getattr(layer, attribute)
                       for suffix, attribute in layer_format.params.items()})
        if net.inputs[i] != (i - 1,):
            entry["inputs"] = [net.layers[j].name if j >= 0 else "input" for j in net.inputs[i]]
        entries.append(entry)
    return {"input_shape": list(net.input_shape), "layers": entries}, params
