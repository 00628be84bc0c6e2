"""The architecture spec (JSON) and named parameters <-> IR.

Spec: ``{"input_shape": [C, H, W], "layers": [...]}``; each layer has ``"type"`` (conv2d, linear,
batchnorm, relu, clip_relu, maxpool2d, avgpool2d, flatten, softmax). Parameter layers carry
``"name"``, the prefix of their parameters (``name.weight``, ``name.bias``; batch-norm also
``name.running_mean``, ``name.running_var`` and optional ``"eps"``) and their shape fields
(``out_channels``, ``kernel_size``, ``stride``, ``padding``; ``out_features``). Pools carry
``kernel_size`` and optional ``stride``; clip_relu carries ``threshold``, qcfs ``levels`` and
``threshold``; add carries optional ``weights`` (per input a number, or a list with one per
channel). A layer reads the layer before it unless it names its sources in ``"inputs"``
(layer names, ``"input"`` for the network input), e.g. a residual join
``{"type": "add", "name": "add1", "inputs": ["bn2", "relu0"]}``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .ir import QCFS, Add, AvgPool2d, BatchNorm, ClipReLU, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU, Softmax

LAYER_TYPES = ("conv2d", "linear", "batchnorm", "relu", "clip_relu", "qcfs", "maxpool2d", "avgpool2d", "flatten", "softmax",
               "add")


class SpecError(ValueError):
    """An architecture spec or its parameters do not describe a valid network."""


def _int(entry: dict, key: str, where: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if value is None:
        raise SpecError(f"{where}: missing field '{key}'")
    if isinstance(value, (list, tuple)):  # square kernels and symmetric strides only
        if len(value) != 2 or value[0] != value[1]:
            raise SpecError(f"{where}: '{key}' must be one integer or two equal ones, not {value}")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where}: '{key}' must be an integer, not {value!r}")
    return value


def _param(params: Mapping[str, np.ndarray], key: str, where: str, required: bool = True) -> np.ndarray | None:
    if key not in params:
        if required:
            raise SpecError(f"{where}: parameter '{key}' is missing from the checkpoint")
        return None
    value = np.asarray(params[key])
    if not np.issubdtype(value.dtype, np.number):
        raise SpecError(f"{where}: parameter '{key}' is not numeric ({value.dtype})")
    if not np.all(np.isfinite(value)):
        raise SpecError(f"{where}: parameter '{key}' contains NaN or Inf")
    return value.astype(np.float32)


def _check_shape(value: np.ndarray, shape: tuple, key: str, where: str) -> None:
    if value.shape != shape:
        raise SpecError(f"{where}: parameter '{key}' has shape {value.shape}, the spec implies {shape}")


def _layer(entry: dict, index: int, params: Mapping[str, np.ndarray]):
    if not isinstance(entry, dict) or "type" not in entry:
        raise SpecError(f"layer {index}: must be an object with a 'type'")
    kind = entry["type"]
    if kind not in LAYER_TYPES:
        raise SpecError(f"layer {index}: unsupported type {kind!r} (supported: {', '.join(LAYER_TYPES)})")
    where = f"layer {index} ({kind})"
    name = entry.get("name", f"{kind}{index}")
    if kind in ("conv2d", "linear", "batchnorm") and "name" not in entry:
        raise SpecError(f"{where}: needs a 'name', the prefix of its parameters")
    if kind == "conv2d":
        weight = _param(params, f"{name}.weight", where)
        if weight.ndim != 4:
            raise SpecError(f"{where}: '{name}.weight' must be 4-D (out, in, kh, kw), found {weight.shape}")
        k = _int(entry, "kernel_size", where)
        _check_shape(weight, (_int(entry, "out_channels", where), weight.shape[1], k, k), f"{name}.weight", where)
        bias = _param(params, f"{name}.bias", where, required=False)
        if bias is not None:
            _check_shape(bias, (weight.shape[0],), f"{name}.bias", where)
        return Conv2d(weight, bias, _int(entry, "stride", where, 1), _int(entry, "padding", where, 0), name)
    if kind == "linear":
        weight = _param(params, f"{name}.weight", where)
        if weight.ndim != 2 or weight.shape[0] != _int(entry, "out_features", where):
            raise SpecError(f"{where}: '{name}.weight' has shape {weight.shape}, expected ({entry['out_features']}, in)")
        bias = _param(params, f"{name}.bias", where, required=False)
        if bias is not None:
            _check_shape(bias, (weight.shape[0],), f"{name}.bias", where)
        return Linear(weight, bias, name)
    if kind == "batchnorm":
        mean = _param(params, f"{name}.running_mean", where)
        var = _param(params, f"{name}.running_var", where)
        gamma = _param(params, f"{name}.weight", where, required=False)
        beta = _param(params, f"{name}.bias", where, required=False)
        gamma = np.ones_like(mean) if gamma is None else gamma
        beta = np.zeros_like(mean) if beta is None else beta
        for key, value in (("running_var", var), ("weight", gamma), ("bias", beta)):
            _check_shape(value, mean.shape, f"{name}.{key}", where)
        return BatchNorm(gamma, beta, mean, var, float(entry.get("eps", 1e-5)), name)
    if kind == "relu":
        return ReLU(name)
    if kind == "clip_relu":
        if "threshold" not in entry:
            raise SpecError(f"{where}: missing field 'threshold'")
        return ClipReLU(float(entry["threshold"]), name)
    if kind == "qcfs":
        for field in ("threshold", "levels"):
            if field not in entry:
                raise SpecError(f"{where}: missing field '{field}'")
        return QCFS(_int(entry, "levels", where), float(entry["threshold"]), name)
    if kind in ("maxpool2d", "avgpool2d"):
        k = _int(entry, "kernel_size", where)
        stride = entry.get("stride")
        cls = MaxPool2d if kind == "maxpool2d" else AvgPool2d
        return cls(k, None if stride is None else _int(entry, "stride", where), name)
    if kind == "flatten":
        return Flatten(name)
    if kind == "add":
        weights = entry.get("weights")
        if weights is not None and not (isinstance(weights, list) and all(
                _number(w) or (isinstance(w, list) and w and all(_number(c) for c in w)) for w in weights)):
            raise SpecError(f"{where}: 'weights' must list a number (or a list, one per channel) per input, "
                            f"not {weights!r}")
        return Add(name, None if weights is None else tuple(weights))
    return Softmax(name)


def _inputs(entries: list, layers: list) -> tuple[tuple[int, ...], ...]:
    """Each layer's source indices from the optional ``inputs`` name lists (default: the layer before)."""
    index = {"input": -1}
    result = []
    for i, (entry, layer) in enumerate(zip(entries, layers)):
        names = entry.get("inputs")
        if names is None:
            result.append((i - 1,))
        elif not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SpecError(f"layer {i} ('{layer.name}'): 'inputs' must be a non-empty list of layer names")
        else:
            unknown = [n for n in names if n not in index]
            if unknown:
                raise SpecError(f"layer {i} ('{layer.name}'): inputs {unknown} are not earlier layers (or 'input')")
            result.append(tuple(index[n] for n in names))
        index[layer.name] = i
    return tuple(result)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    for i, entry in enumerate(spec["layers"]):
        try:
            layers.append(_layer(entry, i, params))
        except SpecError:
            raise
        except ValueError as err:
            raise SpecError(f"layer {i}: {err}") from None
    try:
        return Network(tuple(shape), tuple(layers), _inputs(spec["layers"], layers))
    except ValueError as err:
        raise SpecError(str(err)) from None


def network_to_spec(net: Network) -> tuple[dict, dict[str, np.ndarray]]:
    """The spec and named parameters of a network (the inverse of ``network_from_spec``)."""
    entries, params = [], {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Conv2d):
            out_c, _, k, _ = layer.weight.shape
            entry = {"type": "conv2d", "out_channels": out_c, "kernel_size": k, "stride": layer.stride,
                     "padding": layer.padding}
            params.update({f"{layer.name}.weight": layer.weight, f"{layer.name}.bias": layer.bias})
        elif isinstance(layer, Linear):
            entry = {"type": "linear", "out_features": layer.weight.shape[0]}
            params.update({f"{layer.name}.weight": layer.weight, f"{layer.name}.bias": layer.bias})
        elif isinstance(layer, BatchNorm):
            entry = {"type": "batchnorm", "eps": layer.eps}
            params.update({f"{layer.name}.weight": layer.gamma, f"{layer.name}.bias": layer.beta,
                           f"{layer.name}.running_mean": layer.mean, f"{layer.name}.running_var": layer.var})
        elif isinstance(layer, ClipReLU):
            entry = {"type": "clip_relu", "threshold": layer.threshold}
        elif isinstance(layer, QCFS):
            entry = {"type": "qcfs", "levels": layer.levels, "threshold": layer.threshold}
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            entry = {"type": "maxpool2d" if isinstance(layer, MaxPool2d) else "avgpool2d",
                     "kernel_size": layer.kernel_size, "stride": layer.stride}
        elif isinstance(layer, Add):
            entry = {"type": "add"} if layer.weights is None else {
                "type": "add", "weights": [w if np.ndim(w) == 0 else list(w) for w in layer.weights]}
        else:
            entry = {"type": {ReLU: "relu", Flatten: "flatten", Softmax: "softmax"}[type(layer)]}
        entry["name"] = layer.name
        if net.inputs[i] != (i - 1,):
            entry["inputs"] = [net.layers[j].name if j >= 0 else "input" for j in net.inputs[i]]
        entries.append(entry)
    return {"input_shape": list(net.input_shape), "layers": entries}, params
