"""ONNX files into the IR, without torch (needs the ``onnx`` extra for the protobuf reader).

Operators: Conv, Gemm, MatMul (+ Add of a constant bias), BatchNormalization, Relu, Clip(0, y)
(threshold ReLU), chains of elementwise Mul, Div, Add, Sub, Floor, Clip and Relu with scalar
constants that compute ReLU, clip(0, y) or QCFS (the quantization-clip-floor-shift activation
torch exports as Div, Clip, Mul, Add, Floor, ..., in whatever order it was written), MaxPool,
AveragePool, GlobalAveragePool and ReduceMean over the pixels (square maps), Flatten, Concat of
channels; Reshape, Transpose, Slice, Split and Gather (constant indices) where together they
flatten or rearrange whole channels (ShuffleNet's channel split and shuffle; ``views``), with the
shape arithmetic torch exports for them (Shape, Gather, Unsqueeze, Concat, Cast, integer Div, Mul,
Add, Sub of constants, the batch counted as 1); Add of two tensors
(residual; Sum of several, each maybe multiplied by a scalar: the branch weights), Softmax over
the classes, Dropout and Identity. Any other operator raises
``OnnxError`` naming the node and its operator. Nothing in the file is executed: the graph is
read as data.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable

import numpy as np

from eventsnn import ann
from eventsnn.ir import (QCFS, Add, AvgPool2d, BatchNorm, Channels, ClipReLU, Concat, Conv2d, Flatten, Layer, Linear, MaxPool2d, Network,
                         ReLU, Shape, Softmax)

from . import views
from .optional import require


class OnnxError(ValueError):
    """An ONNX file cannot be read or uses what the IR cannot express."""


def _onnx():
    onnx = require("onnx", "onnx", "reading ONNX files")
    return onnx, require("onnx.numpy_helper", "onnx", "reading ONNX files")


def _attributes(node) -> dict:
    onnx, numpy_helper = _onnx()
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif a.type == onnx.AttributeProto.TENSOR:
            value = numpy_helper.to_array(value)
        elif isinstance(value, list):
            value = [int(v) if isinstance(v, int) else v for v in value]
        out[a.name] = value
    return out


def _square(values, what: str) -> int:
    values = [int(v) for v in values]
    if len(set(values)) != 1:
        raise OnnxError(f"{what} must be equal in both dimensions, not {values}")
    return values[0]


def _refuse_set(attributes: dict, defaults: dict) -> None:
    """Refuse the first attribute set to something other than its default, naming it alone."""
    for key, default in defaults.items():
        value = attributes.get(key, default)
        if value != default and not (isinstance(default, list) and list(value) == [default[0]] * len(value)):
            raise OnnxError(f"{key}={value!r} is not supported (only {default!r})")


class _Reader:
    def __init__(self, graph, input_shape: Shape | None):
        _, numpy_helper = _onnx()
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise OnnxError(f"the graph must have exactly one data input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
        if input_shape is None:
            if len(dims) < 2 or any(d <= 0 for d in dims[1:]):
                raise OnnxError(f"input '{self.input_name}' has no fixed sample shape {dims}; pass input_shape")
            input_shape = tuple(dims[1:])
        self.input_shape = tuple(int(d) for d in input_shape)
        self.index = {self.input_name: -1}  # tensor name -> IR index
        self.names: list[str] = []  # the layers' names, and as a set, for unique names in linear time
        self.name_set: set[str] = set()
        self.suffixes: dict[str, int] = {}  # base name -> the last number appended to it
        # tensors that are an elementwise function of an IR tensor, not yet a layer: name -> (source
        # name, function, first node's name); they become one activation layer when something reads them
        self.pending: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray], str]] = {}
        self.layers: list[Layer] = []
        self.inputs: list[tuple[int, ...]] = []
        self.shapes: list[Shape] = []
        self.views: dict[str, views.View] = {}  # reshaped / transposed / sliced tensors, until something reads them
        self.graph = graph

    def shape(self, index: int) -> Shape:
        return self.input_shape if index < 0 else self.shapes[index]

    def tensor(self, name: str) -> int:
        if name in self.pending:
            self.materialize(name)
        if name in self.views and name not in self.index:
            self.materialize_view(name)
        if name not in self.index:
            raise OnnxError(f"'{name}' is not a tensor the network computes")
        return self.index[name]

    def materialize_view(self, name: str) -> None:
        """The layer a rearranged tensor is, once a layer reads it."""
        view = self.views[name]
        kind, index = views.resolve(view, self.shape(view.source))
        if kind == "same":
            self.index[name] = view.source
            return
        layer = Flatten(self.unique(name, "flatten")) if kind == "flatten" else Channels(index, self.unique(name, "channels"))
        self.shapes.append(layer.output_shape(self.shape(view.source)))
        self.layers.append(layer)
        self.inputs.append((view.source,))
        self.index[name] = len(self.layers) - 1

    def view(self, name: str) -> views.View:
        """A tensor as a view (a computed one: all of it)."""
        if name in self.views and name not in self.index:
            return self.views[name]
        source = self.tensor(name)
        return views.whole(source, self.shape(source))

    def sample_axis(self, view: views.View, axis: int) -> int:
        rank = len(view.shape) + 1
        axis = int(axis) + rank if int(axis) < 0 else int(axis)
        if not 1 <= axis < rank:
            raise OnnxError(f"axis {axis} is the batch or not an axis of a {rank}-D tensor; only the other axes may move")
        return axis - 1

    def rearrange(self, node, op: str, a: dict, args: list[str]) -> bool:
        """Reshape, Transpose, Slice, Split and Gather of a computed tensor, recorded as views."""
        if op == "Reshape":
            view = self.view(args[0])
            target = [int(v) for v in self.constant(args[1]).ravel()]
            sample = [view.shape[k - 1] if d == 0 and not a.get("allowzero", 0) else d
                      for k, d in enumerate(target)][1:]
            if not target or target[0] not in (-1, 0, 1):
                raise OnnxError(f"a reshape must keep the batch first, not {target}")
            self.views[node.output[0]] = views.reshape(view, sample or [-1])
        elif op == "Transpose":
            view = self.view(args[0])
            perm = list(a["perm"]) if "perm" in a else list(range(len(view.shape) + 1))[::-1]
            if perm[0] != 0:
                raise OnnxError(f"a transpose must keep the batch first, not perm={perm}")
            self.views[node.output[0]] = views.transpose(view, [p - 1 for p in perm[1:]])
        elif op == "Slice":
            view = self.view(args[0])
            starts, ends = (self.constant(x).ravel().tolist() for x in args[1:3])
            axes = self.constant(args[3]).ravel().tolist() if len(args) > 3 and args[3] else list(range(len(starts)))
            steps = self.constant(args[4]).ravel().tolist() if len(args) > 4 and args[4] else [1] * len(starts)
            for start, end, axis, step in zip(starts, ends, axes, steps):
                view = views.take(view, self.sample_axis(view, axis), slice(start, end, step))
            self.views[node.output[0]] = view
        elif op == "Split":
            view = self.view(args[0])
            axis = self.sample_axis(view, a.get("axis", 0))
            size, parts = view.shape[axis], len(node.output)
            sizes = (self.constant(args[1]).ravel().tolist() if len(args) > 1 and args[1] else a.get("split")) or \
                [-(-size // parts)] * (parts - 1) + [size - -(-size // parts) * (parts - 1)]
            for output, part in zip(node.output, views.split(view, axis, [int(v) for v in sizes])):
                self.views[output] = part
        elif op == "Gather" and args[1] in self.constants:
            view = self.view(args[0])
            self.views[node.output[0]] = views.take(view, self.sample_axis(view, a.get("axis", 0)),
                                                    self.constants[args[1]].astype(np.int64))
        else:
            return False
        return True

    def constant(self, name: str) -> np.ndarray:
        if name not in self.constants:
            raise OnnxError(f"'{name}' must be a constant (an initializer)")
        return self.constants[name]

    def emit(self, node, layer: Layer, sources: tuple[int, ...], output: str | None = None) -> None:
        self.shapes.append(layer.output_shape(*(self.shape(j) for j in sources)))
        self.layers.append(layer)
        self.inputs.append(sources)
        self.index[output or node.output[0]] = len(self.layers) - 1

    def name(self, node, position: int) -> str:
        return self.unique(node.name, f"{node.op_type.lower()}{position}")

    def unique(self, raw: str, fallback: str) -> str:
        """A layer name from a node name (or the fallback), not yet taken."""
        base = re.sub(r"[^A-Za-z0-9_.]+", ".", raw).strip(".") or fallback
        name, k = base, self.suffixes.get(base, 0)
        taken = self.taken()
        while name in taken:
            k += 1
            name = f"{base}_{k}"
        self.suffixes[base] = k
        return name

    def taken(self) -> set[str]:
        """The names of the layers so far (kept as the layers grow, one set for the whole read)."""
        while len(self.names) < len(self.layers):
            self.names.append(self.layers[len(self.names)].name)
            self.name_set.add(self.names[-1])
        return self.name_set

    def run(self) -> Network:
        for position, node in enumerate(self.graph.node):
            try:
                self.visit(node, position)
            except (OnnxError, ValueError) as err:
                raise OnnxError(f"node '{node.name}' ({node.op_type}): {err}") from None
            except (IndexError, KeyError, TypeError) as err:  # a node without the inputs, outputs or attributes it needs
                raise OnnxError(f"node '{node.name}' ({node.op_type}) is malformed: a missing input, output or "
                                f"attribute ({type(err).__name__}: {err})") from None
        outputs = [o.name for o in self.graph.output]
        for name in outputs:
            if name in self.pending:
                self.tensor(name)
        if len(outputs) != 1 or self.index.get(outputs[0]) != len(self.layers) - 1:
            raise OnnxError(f"the graph must have one output, computed by its last layer; found {outputs}")
        return Network(self.input_shape, tuple(self.layers), tuple(self.inputs))

    def visit(self, node, position: int) -> None:
        op, a = node.op_type, _attributes(node)
        args = list(node.input)
        if op == "Constant":
            self.constants[node.output[0]] = a["value"]
            return
        if op in ("Shape", "Gather", "Unsqueeze", "Concat", "Cast", "Div", "Mul", "Add", "Sub") \
                and self.fold_shape(node, op, a):
            return
        if op in ("Reshape", "Transpose", "Slice", "Split", "Gather") and self.rearrange(node, op, a, args):
            return
        if op in ("Identity", "Dropout"):
            if args[0] in self.constants:
                self.constants[node.output[0]] = self.constants[args[0]]
            else:
                self.index[node.output[0]] = self.tensor(args[0])
            return
        if op in ("Add", "Sum") and self.is_residual(args):
            return self.residual(node, self.name(node, position), args)
        if op in ELEMENTWISE and self.is_elementwise_chain(op, args):
            return self.extend_chain(node, op, args, a)
        if op == "Add" and any(x in self.constants for x in args):
            return self.add_bias(node, args)
        if op == "Concat":  # of tensors the network computes (constant ones were folded above)
            sources = tuple(self.tensor(x) for x in args)
            rank = len(self.shape(sources[0])) + 1
            if a.get("axis") not in (1, 1 - rank):
                raise OnnxError(f"axis={a.get('axis')} is not supported (only the channel axis, 1)")
            if len(sources) == 1:  # torch.cat of a one-tensor list (DenseNet's first layer): the tensor itself
                self.index[node.output[0]] = sources[0]
                return
            return self.emit(node, Concat(self.name(node, position)), sources)
        src = self.tensor(args[0])
        name = self.name(node, position)
        if op == "Conv":
            _refuse_set(a, {"dilations": [1, 1], "auto_pad": "NOTSET"})
            weight = self.constant(args[1])
            _square(weight.shape[2:], "kernel_shape")
            bias = self.constant(args[2]) if len(args) > 2 and args[2] else None
            layer = Conv2d(weight, bias, _square(a.get("strides", [1, 1]), "strides"),
                           _square(a.get("pads", [0, 0, 0, 0]), "pads"), name, int(a.get("group", 1)))
        elif op == "Gemm":
            if a.get("transA", 0):
                raise OnnxError("transA is not supported")
            weight = self.constant(args[1]) * a.get("alpha", 1.0)
            weight = weight if a.get("transB", 0) else weight.T
            bias = self.constant(args[2]) * a.get("beta", 1.0) if len(args) > 2 and args[2] else None
            if bias is not None:
                bias = np.broadcast_to(bias.reshape(-1), (weight.shape[0],))
            layer = Linear(weight, bias, name)
        elif op == "MatMul":
            layer = Linear(self.constant(args[1]).T, None, name)
        elif op == "BatchNormalization":
            gamma, beta, mean, var = (self.constant(x) for x in args[1:5])
            layer = BatchNorm(gamma, beta, mean, var, float(a.get("epsilon", 1e-5)), name)
        elif op == "Relu":
            layer = ReLU(name)
        elif op == "Clip":
            low = a.get("min", self.constant(args[1]) if len(args) > 1 and args[1] else None)
            high = a.get("max", self.constant(args[2]) if len(args) > 2 and args[2] else None)
            if low is None or float(low) != 0.0 or high is None:
                raise OnnxError(f"only Clip(0, y) is a threshold ReLU, not min={low}, max={high}")
            layer = ClipReLU(float(high), name)
        elif op in ("MaxPool", "AveragePool"):
            _refuse_set(a, {"auto_pad": "NOTSET", "storage_order": 0, **({"dilations": [1, 1]} if op == "AveragePool" else {})})
            if len(node.output) > 1 and node.output[1]:
                raise OnnxError("the indices output of MaxPool is not supported")
            kernel = _square(a["kernel_shape"], "kernel_shape")
            options = dict(stride=_square(a.get("strides", [kernel, kernel]), "strides"),
                           padding=_square(a.get("pads", [0, 0, 0, 0]), "pads"), ceil_mode=bool(a.get("ceil_mode", 0)))
            if op == "MaxPool":
                layer = MaxPool2d(kernel, name=name, dilation=_square(a.get("dilations", [1, 1]), "dilations"), **options)
            else:
                layer = AvgPool2d(kernel, name=name, count_include_pad=bool(a.get("count_include_pad", 0)), **options)
        elif op == "GlobalAveragePool":
            shape = self.shape(src)
            if len(shape) != 3 or shape[1] != shape[2]:
                raise OnnxError(f"needs a square (C, H, H) input, found {shape}")
            layer = AvgPool2d(shape[1], shape[1], name)
        elif op == "Flatten":
            if a.get("axis", 1) != 1:
                raise OnnxError(f"only axis=1 (keep the batch) is supported, not {a.get('axis')}")
            return self.flatten(node, src, name)
        elif op == "ReduceMean":
            axes = a.get("axes", self.constant(args[1]).ravel().tolist() if len(args) > 1 and args[1] else None)
            shape = self.shape(src)
            if axes is None or len(shape) != 3 or sorted(int(x) % 4 for x in axes) != [2, 3] or shape[1] != shape[2]:
                raise OnnxError(f"only the mean over the pixels (axes 2 and 3) of a square (C, H, H) tensor is "
                                f"supported, not axes={axes} of {shape}")
            self.emit(node, AvgPool2d(shape[1], shape[1], name), (src,))
            if a.get("keepdims", 1):
                return
            layer, src = Flatten(self.unique(f"{name}.flatten", "flatten")), self.index[node.output[0]]
        elif op == "Softmax":
            if a.get("axis", -1) not in (1, -1) or len(self.shape(src)) != 1:
                raise OnnxError("softmax must be over the classes of a vector")
            layer = Softmax(name)
        else:
            raise OnnxError(f"unsupported operator {op}")
        self.emit(node, layer, (src,))

    def is_residual(self, args: list[str]) -> bool:
        """Whether an Add or Sum joins two or more different tensors (each maybe scaled by a constant)."""
        tensors = [x for x in args if x and x not in self.constants]
        sources = {self.pending[x][0] if x in self.pending else x for x in tensors}
        return len(tensors) >= 2 and len(sources) == len(tensors) == len(args)

    def residual(self, node, name: str, args: list[str]) -> None:
        """A residual add; a branch that is a pending multiplication by a scalar becomes that branch's weight."""
        sources, weights = [], []
        for x in args:
            weight = self.scaling(x)
            if weight is None:
                sources.append(self.tensor(x))
                weights.append(1.0)
            else:
                sources.append(self.tensor(self.pending[x][0]))
                weights.append(weight)
        self.emit(node, Add(name, None if all(w == 1.0 for w in weights) else tuple(weights)), tuple(sources))

    def scaling(self, name: str) -> float | None:
        """w where ``name`` is a pending elementwise function w * z of its source, else None."""
        if name not in self.pending:
            return None
        function = self.pending[name][1]
        z = np.linspace(-4, 4, 17, dtype=np.float32)
        with np.errstate(all="ignore"):
            w = float(np.asarray(function(np.float32([1.0]))).ravel()[0])
            values = np.asarray(function(z), np.float32)
        if not np.isfinite(w) or w == 0 or values.shape != z.shape or not np.allclose(values, w * z, rtol=1e-6, atol=1e-6):
            return None
        return w

    def is_elementwise_chain(self, op: str, args: list[str]) -> bool:
        """Whether this node continues (or starts) an elementwise chain rather than being a layer of
        its own: it reads a pending tensor, or it is arithmetic with a scalar no layer can absorb."""
        tensors = [x for x in args if x and x not in self.constants]
        if any(x in self.pending for x in tensors):
            return True
        if op in ("Relu", "Clip", "Add"):  # a layer of their own on an IR tensor (Add: residual or bias)
            return False
        return len(tensors) >= 1

    def extend_chain(self, node, op: str, args: list[str], a: dict) -> None:
        """Record the node as a step of its tensor's elementwise function."""
        tensors = [x for x in args if x and x not in self.constants]
        sources = {self.pending[x][0] if x in self.pending else x for x in tensors}
        if len(sources) != 1:
            raise OnnxError("an elementwise operation of two different tensors is not supported")
        source = sources.pop()
        self.tensor(source)  # the source must be a tensor the network computes
        first = next((self.pending[x][2] for x in tensors if x in self.pending), node.name)
        operands = [self.operand(x) if x else None for x in args]
        if op == "Clip":
            low = a.get("min", self.scalar(args[1]) if len(args) > 1 and args[1] else -np.inf)
            high = a.get("max", self.scalar(args[2]) if len(args) > 2 and args[2] else np.inf)
            step = _clip_step(operands[0], np.float32(low), np.float32(high))
        else:
            step = _ARITHMETIC[op](*(operands + [None])[:2])  # unary operations ignore the second
        self.pending[node.output[0]] = (source, step, first)

    def operand(self, name: str) -> Callable[[np.ndarray], np.ndarray]:
        """A chain operand as a function of the chain's source: a scalar constant, or a tensor."""
        if name in self.constants:
            value = self.scalar(name)
            return lambda z: value
        if name in self.pending:
            return self.pending[name][1]
        return lambda z: z

    def scalar(self, name: str) -> np.float32:
        value = np.asarray(self.constant(name))
        if value.size != 1:
            raise OnnxError(f"elementwise arithmetic with '{name}' of shape {value.shape}: only scalars are supported")
        return np.float32(value.ravel()[0])

    def materialize(self, name: str) -> None:
        """Turn a pending elementwise function into the activation layer it computes."""
        source, function, first = self.pending.pop(name)
        layer = _activation(function, self.unique(first, f"activation{len(self.layers)}"))
        if layer is None:  # the function is the identity
            self.index[name] = self.tensor(source)
        else:
            self.emit(None, layer, (self.tensor(source),), output=name)

    def flatten(self, node, src: int, name: str) -> None:
        if len(self.shape(src)) == 1:
            self.index[node.output[0]] = src
        else:
            self.emit(node, Flatten(name), (src,))

    def add_bias(self, node, args: list[str]) -> None:
        """Add of a constant: the bias of the conv or linear layer right before it (MatMul + Add)."""
        tensor = [x for x in args if x not in self.constants]
        if len(tensor) != 1:
            raise OnnxError("an Add of two constants is not part of a network")
        src = self.tensor(tensor[0])
        layer = self.layers[src] if src >= 0 else None
        if not isinstance(layer, (Linear, Conv2d)) or src != len(self.layers) - 1:
            raise OnnxError("a constant may only be added to the conv or linear layer right before it (its bias)")
        value = np.asarray(self.constant([x for x in args if x in self.constants][0]), np.float32)
        channels = layer.weight.shape[0]
        if value.size == 1:
            value = np.full(channels, float(value.ravel()[0]), np.float32)
        if value.size != channels:
            raise OnnxError(f"bias of {value.size} values for {channels} outputs")
        bias = layer.bias + value.reshape(-1)
        self.layers[src] = dataclasses.replace(layer, bias=bias)
        self.index[node.output[0]] = src

    def fold_shape(self, node, op: str, a: dict) -> bool:
        """Shape arithmetic on constants (the batch size counts as 1); False if it is not constant."""
        args = list(node.input)
        if op == "Shape":
            if args[0] in self.views and args[0] not in self.index:
                value = np.array((1,) + self.views[args[0]].shape, np.int64)
            elif args[0] not in self.index:
                return False
            else:
                value = np.array((1,) + self.shape(self.index[args[0]]), np.int64)
        elif not all(x in self.constants for x in args if x):
            return False
        elif op == "Gather":
            value = np.take(self.constants[args[0]], self.constants[args[1]], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            axes = a.get("axes", self.constants[args[1]].tolist() if len(args) > 1 else [0])
            value = np.expand_dims(self.constants[args[0]], tuple(axes))
        elif op == "Concat":
            value = np.concatenate([np.atleast_1d(self.constants[x]) for x in args], axis=a.get("axis", 0))
        elif op in ("Div", "Mul", "Add", "Sub"):
            x, y = (self.constants[v] for v in args[:2])
            if not (np.issubdtype(np.asarray(x).dtype, np.integer) and np.issubdtype(np.asarray(y).dtype, np.integer)):
                return False  # float arithmetic on constants is not shape arithmetic
            if op == "Div" and np.any(np.asarray(y) == 0):
                raise OnnxError("integer division by zero in shape arithmetic")
            value = {"Div": lambda: np.trunc(np.asarray(x) / y).astype(np.int64), "Mul": lambda: np.multiply(x, y),
                     "Add": lambda: np.add(x, y), "Sub": lambda: np.subtract(x, y)}[op]()
        else:  # Cast
            value = self.constants[args[0]]
        if np.size(value) > MAX_SHAPE_VALUES:  # shape arithmetic is a few numbers; doubling concats are a memory bomb
            raise OnnxError(f"constant arithmetic yields {np.size(value):,} values (more than {MAX_SHAPE_VALUES:,}); "
                            "only shape computations are folded")
        self.constants[node.output[0]] = value
        return True


MAX_SHAPE_VALUES = 4096  # what folded Shape/Gather/Unsqueeze/Concat/Cast arithmetic may produce

ELEMENTWISE = ("Mul", "Div", "Add", "Sub", "Floor", "Clip", "Relu")
_ARITHMETIC = {
    "Mul": lambda f, g: lambda z: f(z) * g(z),
    "Div": lambda f, g: lambda z: f(z) / g(z),
    "Add": lambda f, g: lambda z: f(z) + g(z),
    "Sub": lambda f, g: lambda z: f(z) - g(z),
    "Floor": lambda f, _: lambda z: np.floor(f(z)),
    "Relu": lambda f, _: lambda z: np.maximum(f(z), np.float32(0)),
}


def _clip_step(f, low: np.float32, high: np.float32):
    return lambda z: np.clip(f(z), low, high)


def _activation(function: Callable[[np.ndarray], np.ndarray], name: str) -> Layer | None:
    """The activation an elementwise function of one tensor computes, found by evaluating it:
    None for the identity, ReLU, ClipReLU(y) or QCFS(L, lambda); anything else is refused."""
    def same(layer_or_none, z) -> bool:
        expected = z if layer_or_none is None else ann.layer_forward(layer_or_none, z)
        got = np.asarray(function(z), np.float32)
        return got.shape == z.shape and bool(np.allclose(got, expected, rtol=1e-5, atol=1e-6 * max(1.0, top)))

    refused = OnnxError(f"the elementwise operations from '{name}' are not ReLU, clip(0, y) or QCFS")
    with np.errstate(all="ignore"):
        top = float(np.max(function(np.float32([1e6]))))  # what a large input gives: the ceiling, if any
        if not np.isfinite(top):  # (the tolerance below grows with it)
            raise refused
        z = np.linspace(-4, 4, 8001, dtype=np.float32)
        for layer in (None, ReLU(name)):
            if same(layer, z):
                return layer
        if top <= 0:
            raise refused
        if same(ClipReLU(top, name), z * np.float32(top)):
            return ClipReLU(top, name)
        grid = np.linspace(-top, 2 * top, 20001, dtype=np.float32)
        distinct = np.unique(np.round(np.asarray(function(grid), np.float64) / top, 5))
        levels = int(np.sum(distinct > 0))
        if 1 <= levels <= 255:
            qcfs = QCFS(levels, top, name)
            # compare away from the step edges, where the order of float operations may round differently
            steps = np.arange(-2 * levels, 2 * levels + 1, dtype=np.float32)
            probes = np.concatenate([steps, steps + np.float32(0.25), steps - np.float32(0.25)]) * np.float32(top / levels)
            if same(qcfs, probes):
                return qcfs
    raise refused


def load_onnx(path: str | os.PathLike, input_shape: Shape | None = None) -> Network:
    """The IR network of an ONNX file (sample shape from the file unless ``input_shape`` is given)."""
    onnx, _ = _onnx()
    try:
        model = onnx.load(os.fspath(path))
    except Exception as err:  # protobuf raises its own DecodeError; report any unreadable file the same way
        raise OnnxError(f"{path}: cannot read ONNX file ({type(err).__name__}: {err})") from None
    try:
        return _Reader(model.graph, input_shape).run()
    except OnnxError as err:
        raise OnnxError(f"{path}: {err}") from None
