"""A PyTorch ``nn.Module`` in memory into the IR, by tracing it with ``torch.fx`` (needs torch).

Supported: Conv2d, Linear, BatchNorm1d/2d, ReLU (module, ``F.relu``, ``torch.relu``, ``.relu()``),
ReLU6 / Hardtanh(0, y) / ``clamp(x, 0, y)`` as threshold ReLU, QCFS activation modules (an integer
``levels`` and a scalar ``threshold`` attribute, e.g. examples/archnet.py's QCFS), grouped and
depthwise Conv2d, MaxPool2d and AvgPool2d with padding / ceil_mode / dilation / count_include_pad,
AdaptiveAvgPool2d to a size that divides its input and ``x.mean([2, 3])``, Flatten /
``torch.flatten(x, 1)``, Dropout and Identity (dropped), residual ``+`` / ``torch.add``, channel
concatenation (``torch.cat(..., dim=1)``), view / reshape / transpose / permute / chunk / split /
slicing ``x[:, a:b]`` where together they flatten or rearrange whole channels (ShuffleNet's channel
split and shuffle, with the ``x.size()`` arithmetic around them; ``views``), and a trailing softmax
over the classes. Anything else raises ``TraceError`` naming the module and the line of the graph.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from eventsnn.ir import (QCFS, Add, AvgPool2d, BatchNorm, Channels, ClipReLU, Concat, Conv2d, Flatten, Layer, Linear, MaxPool2d, Network,
                         ReLU, Shape, Softmax)

from . import views
from .optional import require


class TraceError(ValueError):
    """A module uses something the IR cannot express."""


class _Batch:
    """The batch size in shape arithmetic (``x.size(0)``): unknown, and never part of a layer."""

    def __repr__(self) -> str:
        return "batch"


BATCH = _Batch()
_INT_ARITHMETIC = {operator.floordiv: operator.floordiv, operator.mul: operator.mul, operator.add: operator.add,
                   operator.sub: operator.sub}


def _torch():
    require("torch.fx", "torch", "tracing a PyTorch module")
    return require("torch", "torch", "tracing a PyTorch module")


def _array(tensor) -> np.ndarray:
    return tensor.detach().cpu().to(dtype=_torch().float32).numpy().copy()


# activations and gates with no integrate-and-fire equivalent: what to say instead of only "unsupported"
_NOT_SPIKING = {"silu", "hardswish", "gelu", "sigmoid", "hardsigmoid", "tanh", "leakyrelu", "leaky_relu", "elu",
                "selu", "mish", "softplus", "layernorm", "layer_norm"}


def _advice(kind: str) -> str:
    """What to do about a refused module or function, where there is something to say."""
    key = kind.lower()
    if key in _NOT_SPIKING:
        return ": it has no integrate-and-fire equivalent; retrain with ReLU, ReLU6 or QCFS"
    if key in ("mul", "matmul", "bmm"):
        return (": a product of two computed tensors (a squeeze-excitation gate, attention) has no event-driven "
                "equivalent")
    return ""


def _pair(value, what: str) -> int:
    """An int from an int or a pair of equal ints (the IR has square kernels and equal strides)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise TraceError(f"{what} must be square / symmetric, not {tuple(value)}")
        value = value[0]
    return int(value)


def _qcfs(mod) -> tuple[int, float] | None:
    """(levels, threshold) of a QCFS activation module, None for any other module. By convention a
    QCFS module has an integer ``levels`` and a scalar ``threshold`` (a number, or a one-element
    tensor or parameter), as examples/archnet.py's QCFS does."""
    own = vars(mod)  # not getattr: while tracing, fx turns parameter reads into graph nodes
    levels = own.get("levels")
    threshold = own.get("_parameters", {}).get("threshold", own.get("_buffers", {}).get("threshold", own.get("threshold")))
    if isinstance(levels, bool) or not isinstance(levels, int) or threshold is None:
        return None
    if isinstance(threshold, (int, float)):
        return levels, float(threshold)
    return (levels, float(threshold.detach().reshape(()))) if int(threshold.numel()) == 1 else None


def _leaf_tracer(torch):
    """An fx tracer that keeps QCFS modules whole (their clamp-floor arithmetic is one IR layer)."""

    class LeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname: str) -> bool:
            return _qcfs(m) is not None or super().is_leaf_module(m, qualname)

    return LeafTracer


class _Tracer:
    """Walks an fx graph node by node, keeping for each tensor node its IR index (-1: the input)."""

    def __init__(self, module, input_shape: Shape):
        torch = _torch()
        self.module = module
        self.graph = _leaf_tracer(torch)().trace(module)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.layers: list[Layer] = []
        self.inputs: list[tuple[int, ...]] = []
        self.shapes: list[Shape] = []
        self.index: dict[Any, int] = {}  # fx node -> IR index
        self.values: dict[Any, Any] = {}  # fx node -> a shape, or a number computed from shapes
        self.views: dict[Any, views.View | list[views.View]] = {}  # fx node -> a rearrangement of a tensor
        self.parameters: dict[Any, str] = {}  # fx node -> a parameter read in forward (e.g. by F.layer_norm)
        self.names: set[str] = set()

    # -- building ------------------------------------------------------------------------------

    def shape(self, index: int) -> Shape:
        return self.input_shape if index < 0 else self.shapes[index]

    def emit(self, node, layer: Layer, sources: tuple[int, ...]) -> None:
        shape = layer.output_shape(*(self.shape(j) for j in sources))
        self.layers.append(layer)
        self.inputs.append(sources)
        self.shapes.append(shape)
        self.index[node] = len(self.layers) - 1

    def name(self, node) -> str:
        """IR name: the module path for modules (so parameters keep their state_dict names), else the node's."""
        name = str(node.target) if node.op == "call_module" else node.name
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def source(self, node, arg) -> int:
        if arg in self.views and arg not in self.index:
            self.materialize(arg)
        if arg in self.parameters:
            raise TraceError(f"a parameter '{self.parameters[arg]}' used directly in forward is not supported")
        if arg not in self.index:
            raise TraceError(f"argument {arg!r} is not a tensor the network computes")
        return self.index[arg]

    def materialize(self, arg) -> None:
        """The layer a reshaped / transposed / sliced tensor is, once a layer reads it."""
        view = self.views[arg]
        if isinstance(view, list):
            raise TraceError("the parts of a chunk or split must be taken one by one ([0], [1], ...)")
        try:
            kind, index = views.resolve(view, self.shape(view.source))
        except ValueError as err:
            raise TraceError(str(err)) from None
        if kind == "same":
            self.index[arg] = view.source
        elif kind == "flatten":
            self.emit(arg, Flatten(self.name(arg)), (view.source,))
        else:
            self.emit(arg, Channels(index, self.name(arg)), (view.source,))

    def view_of(self, node, arg) -> views.View:
        """``arg`` as a view (a computed tensor: all of it)."""
        if arg in self.views and arg not in self.index:
            view = self.views[arg]
            if isinstance(view, list):
                raise TraceError("the parts of a chunk or split must be taken one by one ([0], [1], ...)")
            return view
        source = self.source(node, arg)
        return views.whole(source, self.shape(source))

    def literal(self, arg):
        """A shape, number or slice in an argument, with shape arithmetic's results filled in."""
        if isinstance(arg, (list, tuple)):
            return type(arg)(self.literal(a) for a in arg)
        if isinstance(arg, slice):
            return slice(self.literal(arg.start), self.literal(arg.stop), self.literal(arg.step))
        if arg in self.values:
            return self.values[arg]
        if arg in self.index or arg in self.views:
            raise TraceError(f"a tensor ({arg}) where a number or shape was expected")
        return arg

    def is_literal(self, args) -> bool:
        try:
            self.literal(args)
        except TraceError:
            return False
        return True

    def sample_axis(self, view: views.View, dim) -> int:
        """A tensor axis (batch included, negative from the end) as a sample axis; the batch is refused."""
        rank = len(view.shape) + 1
        axis = int(dim) + rank if int(dim) < 0 else int(dim)
        if not 1 <= axis < rank:
            raise TraceError(f"dim={dim} is the batch or not an axis of a {rank}-D tensor; only the other axes may move")
        return axis - 1

    def shape_function(self, node) -> bool:
        """Shape arithmetic and rearrangements of tensors (recorded, not layers); False if not one."""
        target, args, kwargs = node.target, node.args, node.kwargs
        method = node.op == "call_method"
        torch = _torch()
        rearranging = (torch.reshape, torch.transpose, torch.swapaxes, torch.permute, torch.chunk, torch.split)
        op = target if method else target.__name__ if target in rearranging else None  # the same name either way
        try:
            if method and target in ("size", "dim"):
                shape = (BATCH,) + self.view_of(node, args[0]).shape
                dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
                self.values[node] = len(shape) if target == "dim" else shape if dim is None else shape[dim]
            elif target in _INT_ARITHMETIC and self.is_literal(args):
                numbers = self.literal(args)
                if any(v is BATCH for v in numbers):
                    raise TraceError("arithmetic with the batch size is not supported")
                self.values[node] = _INT_ARITHMETIC[target](*numbers)
            elif target is operator.getitem:
                self.getitem(node, args[0], self.literal(args[1]))
            elif op in ("view", "reshape"):
                dims = self.literal(args[1:] if method else args[1])
                dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else list(dims)
                if not dims or (dims[0] is not BATCH and dims[0] != -1) or BATCH in dims[1:]:
                    raise TraceError(f"a view/reshape must keep the batch first (x.size(0) or -1), not {dims}")
                view = self.view_of(node, args[0])
                self.views[node] = views.reshape(view, [-1] if dims[0] == -1 and len(dims) == 1 else dims[1:])
            elif op in ("transpose", "swapaxes", "permute"):
                view = self.view_of(node, args[0])
                if op != "permute":
                    a, b = (self.sample_axis(view, d) for d in self.literal(args[1:3]))
                    perm = list(range(len(view.shape)))
                    perm[a], perm[b] = perm[b], perm[a]
                else:
                    dims = self.literal(args[1:] if method else args[1])
                    dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else list(dims)
                    if dims[0] != 0:
                        raise TraceError(f"permute must keep the batch first, not {dims}")
                    perm = [self.sample_axis(view, d) for d in dims[1:]]
                self.views[node] = views.transpose(view, perm)
            elif op in ("chunk", "split"):
                view = self.view_of(node, args[0])
                dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
                axis = self.sample_axis(view, dim)
                size, what = view.shape[axis], self.literal(args[1] if len(args) > 1 else kwargs.get("chunks"))
                if op == "chunk":
                    step = -(-size // int(what))
                    sizes = [min(step, size - a) for a in range(0, size, step)]
                else:
                    sizes = [int(what)] * (size // int(what)) + ([size % int(what)] if size % int(what) else []) \
                        if isinstance(what, int) else [int(v) for v in what]
                self.views[node] = views.split(view, axis, sizes)
            elif method and target in ("contiguous", "clone") and args[0] in self.views:
                self.views[node] = self.views[args[0]]
            else:
                return False
        except ValueError as err:
            raise TraceError(str(err)) from None
        return True

    def getitem(self, node, container, key) -> None:
        if container in self.values:
            self.values[node] = self.values[container][key]
        elif isinstance(self.views.get(container), list):
            self.views[node] = self.views[container][key]
        else:  # indexing a tensor: x[:, a:b] along sample axes, the batch whole
            view = self.view_of(node, container)
            key = key if isinstance(key, tuple) else (key,)
            if not key or key[0] != slice(None) or not all(isinstance(k, slice) for k in key):
                raise TraceError(f"only slices that keep the whole batch (x[:, a:b]) index a tensor, not {key}")
            for axis, k in enumerate(key[1:]):
                view = views.take(view, axis, k)
            self.views[node] = view

    # -- per node kind ---------------------------------------------------------------------------

    def run(self) -> Network:
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise TraceError(f"the module must take exactly one input tensor, found {len(placeholders)}")
        for node in self.graph.nodes:
            try:
                self.visit(node)
            except TraceError as err:
                raise TraceError(f"{err} (graph line: {node.format_node()})") from None
            except ValueError as err:  # shape errors from the IR
                raise TraceError(f"{err} (graph line: {node.format_node()})") from None
        return Network(self.input_shape, tuple(self.layers), tuple(self.inputs))

    def visit(self, node) -> None:
        if node.op == "placeholder":
            self.index[node] = -1
        elif node.op == "get_attr":  # refused where it is used (the function using it says more)
            self.parameters[node] = node.target
        elif node.op == "call_module":
            self.module_node(node, self.module.get_submodule(node.target))
        elif node.op in ("call_function", "call_method"):
            self.function_node(node)
        elif node.op == "output":
            result = node.args[0]
            if result not in self.index or self.index[result] != len(self.layers) - 1:
                raise TraceError("the module must return the tensor of its last layer")

    def alias(self, node, arg) -> None:
        self.index[node] = self.source(node, arg)

    def module_node(self, node, mod) -> None:
        nn = _torch().nn
        src = self.source(node, node.args[0])
        kind = type(mod).__name__
        where = f"{kind} '{node.target}'"
        if isinstance(mod, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
            return self.alias(node, node.args[0])
        if isinstance(mod, nn.Conv2d):
            if _pair(mod.dilation, f"{where}: dilation") != 1:
                raise TraceError(f"{where}: dilation={mod.dilation} is not supported (only 1)")
            if mod.padding_mode != "zeros":
                raise TraceError(f"{where}: padding_mode='{mod.padding_mode}' is not supported (only 'zeros')")
            if isinstance(mod.padding, str):
                raise TraceError(f"{where}: padding '{mod.padding}' is not supported; give it as a number")
            _pair(mod.kernel_size, f"{where}: kernel_size")
            layer = Conv2d(_array(mod.weight), None if mod.bias is None else _array(mod.bias),
                           _pair(mod.stride, f"{where}: stride"), _pair(mod.padding, f"{where}: padding"), self.name(node),
                           mod.groups)
        elif isinstance(mod, nn.Linear):
            layer = Linear(_array(mod.weight), None if mod.bias is None else _array(mod.bias), self.name(node))
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if mod.running_mean is None:
                raise TraceError(f"{where}: needs running statistics (track_running_stats=True)")
            n = mod.num_features
            gamma = _array(mod.weight) if mod.affine else np.ones(n, np.float32)
            beta = _array(mod.bias) if mod.affine else np.zeros(n, np.float32)
            layer = BatchNorm(gamma, beta, _array(mod.running_mean), _array(mod.running_var), float(mod.eps), self.name(node))
        elif isinstance(mod, nn.ReLU):
            layer = ReLU(self.name(node))
        elif isinstance(mod, (nn.ReLU6, nn.Hardtanh)):
            layer = self.clip(node, float(mod.min_val), float(mod.max_val))
        elif _qcfs(mod) is not None:
            layer = QCFS(*_qcfs(mod), self.name(node))
        elif isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
            options = {key: getattr(mod, key) for key in ("kernel_size", "stride", "padding", "ceil_mode", "dilation",
                                                          "count_include_pad", "divisor_override", "return_indices")
                       if hasattr(mod, key)}
            layer = self.pool(node, isinstance(mod, nn.MaxPool2d), options, where)
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            layer = self.global_pool(node, src, mod.output_size)
        elif isinstance(mod, nn.Flatten):
            return self.flatten(node, src, mod.start_dim, mod.end_dim)
        elif isinstance(mod, nn.Softmax):
            layer = self.softmax(node, src, mod.dim)
        else:
            raise TraceError(f"unsupported module {kind} '{node.target}'{_advice(kind)}")
        self.emit(node, layer, (src,))

    def function_node(self, node) -> None:
        torch = _torch()
        F = torch.nn.functional
        target, args, kwargs = node.target, node.args, node.kwargs
        method = node.op == "call_method"
        name = getattr(target, "__name__", str(target))
        if name.lower() in _NOT_SPIKING:  # before its arguments, which may be what it needs (a permute, weights)
            raise TraceError(f"unsupported {'method' if method else 'function'} '{name}'{_advice(name)}")
        if self.shape_function(node):
            return
        if target in (operator.add, operator.iadd, torch.add) or (method and target in ("add", "add_")):
            if kwargs.get("alpha", 1) != 1 or len(args) != 2:
                raise TraceError("only a plain sum of two tensors is supported as a residual add")
            sources = tuple(self.source(node, a) for a in args)
            return self.emit(node, Add(self.name(node)), sources)
        if target in (torch.cat, torch.concat, torch.concatenate):
            return self.concat(node, args, kwargs)
        src = self.source(node, args[0])
        if target in (F.dropout, F.dropout2d) or (method and target in ("contiguous", "clone")):
            return self.alias(node, args[0])
        if target in (F.relu, torch.relu) or (method and target == "relu"):
            return self.emit(node, ReLU(self.name(node)), (src,))
        if target in (torch.clamp, torch.clip) or (method and target in ("clamp", "clip")):
            low = kwargs.get("min", args[1] if len(args) > 1 else None)
            high = kwargs.get("max", args[2] if len(args) > 2 else None)
            return self.emit(node, self.clip(node, low, high), (src,))
        if target in (F.hardtanh, F.relu6):
            low, high = (0.0, 6.0) if target is F.relu6 else (kwargs.get("min_val", args[1] if len(args) > 1 else -1.0),
                                                             kwargs.get("max_val", args[2] if len(args) > 2 else 1.0))
            return self.emit(node, self.clip(node, low, high), (src,))
        if target is torch.flatten or (method and target == "flatten"):
            start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
            return self.flatten(node, src, start, end)
        if target is torch.mean or (method and target == "mean"):
            return self.mean(node, src, kwargs.get("dim", args[1] if len(args) > 1 else None),
                             kwargs.get("keepdim", args[2] if len(args) > 2 else False))
        if target in (F.softmax, torch.softmax) or (method and target == "softmax"):
            return self.emit(node, self.softmax(node, src, kwargs.get("dim", args[1] if len(args) > 1 else None)), (src,))
        if target in (F.max_pool2d, F.avg_pool2d):
            return self.emit(node, self.functional_pool(node, target is F.max_pool2d), (src,))
        if target is F.adaptive_avg_pool2d:
            return self.emit(node, self.global_pool(node, src, kwargs.get("output_size", args[1] if len(args) > 1 else None)),
                             (src,))
        raise TraceError(f"unsupported {'method' if method else 'function'} '{name}'{_advice(name)}")

    # -- layers with checks ------------------------------------------------------------------------

    def clip(self, node, low, high) -> ClipReLU:
        if low is None or float(low) != 0.0 or high is None:
            raise TraceError(f"only clamp(x, 0, y) / hardtanh(0, y) is a threshold ReLU, not min={low}, max={high}")
        return ClipReLU(float(high), self.name(node))

    def flatten(self, node, src: int, start: int, end: int) -> None:
        shape = self.shape(src)
        if start not in (1, -len(shape)) or end != -1:
            raise TraceError(f"flatten(start_dim={start}, end_dim={end}) must keep the batch dimension and flatten the rest")
        if len(shape) == 1:
            return self.alias(node, node.args[0])
        self.emit(node, Flatten(self.name(node)), (src,))

    def mean(self, node, src: int, dims, keepdim: bool) -> None:
        """The mean over the pixels (``x.mean([2, 3])``, ShuffleNet's global pooling) of a square input."""
        shape = self.shape(src)
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        if len(shape) != 3 or sorted(d % 4 for d in dims) != [2, 3] or shape[1] != shape[2]:
            raise TraceError(f"only the mean over the pixels (dims 2 and 3) of a square (C, H, H) tensor is supported, "
                             f"not dims={dims} of {shape}")
        self.emit(node, AvgPool2d(shape[1], shape[1], self.name(node)), (src,))
        if not keepdim:
            self.emit(node, Flatten(self.name(node)), (self.index[node],))

    def softmax(self, node, src: int, dim) -> Softmax:
        if dim not in (1, -1) or len(self.shape(src)) != 1:
            raise TraceError(f"softmax must be over the classes of a vector (dim=1), not dim={dim} of {self.shape(src)}")
        return Softmax(self.name(node))

    def concat(self, node, args, kwargs) -> None:
        """torch.cat of tensors along the channel axis (dim 1, or -3 of a 4-D batch)."""
        tensors = kwargs.get("tensors", args[0] if args else None)
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise TraceError("torch.cat needs a list of tensors")
        if len(tensors) == 1:  # DenseNet's first layer concatenates one tensor: the tensor itself
            return self.alias(node, tensors[0])
        sources = tuple(self.source(node, t) for t in tensors)
        rank = len(self.shape(sources[0])) + 1
        if dim not in (1, 1 - rank):
            raise TraceError(f"torch.cat along dim={dim} is not supported (only the channel axis, dim=1)")
        self.emit(node, Concat(self.name(node)), sources)

    def global_pool(self, node, src: int, output_size) -> AvgPool2d:
        """Adaptive average pooling where it is an ordinary one: the output size divides the input
        (windows of H / size, as PyTorch's adaptive windows are then), e.g. 7x7 of 7x7 (the
        identity of VGG at 224x224) or 1x1 of anything square."""
        shape = self.shape(src)
        if len(shape) != 3 or shape[1] != shape[2]:
            raise TraceError(f"adaptive average pooling needs a square (C, H, H) input, found {shape}")
        sizes = [output_size] * 2 if isinstance(output_size, int) or output_size is None else list(output_size)
        sizes = [shape[1] if size is None else size for size in sizes]  # None keeps that dimension
        if len(set(sizes)) != 1 or not isinstance(sizes[0], int) or shape[1] % sizes[0]:
            raise TraceError(f"adaptive average pooling of {shape[1]}x{shape[2]} to {output_size} is not an ordinary "
                             "pooling (the output size must divide the input's); choose an input size that makes it one")
        window = shape[1] // sizes[0]
        return AvgPool2d(window, window, self.name(node))

    def functional_pool(self, node, is_max: bool) -> Layer:
        names = ("kernel_size", "stride", "padding") + (("dilation", "ceil_mode", "return_indices") if is_max else
                                                        ("ceil_mode", "count_include_pad", "divisor_override"))
        options = dict(zip(names, node.args[1:]), **{k: v for k, v in node.kwargs.items()})
        return self.pool(node, is_max, options, f"{'max' if is_max else 'avg'}_pool2d")

    def pool(self, node, is_max: bool, options: dict, where: str) -> Layer:
        """A max- or avg-pooling layer from PyTorch's arguments, refusing the one it cannot express."""
        if options.get("return_indices"):
            raise TraceError(f"{where}: return_indices=True is not supported")
        if options.get("divisor_override"):
            raise TraceError(f"{where}: divisor_override={options['divisor_override']} is not supported")
        kernel = _pair(options["kernel_size"], f"{where}: kernel_size")
        common = dict(stride=_pair(options.get("stride") or kernel, f"{where}: stride"),
                      padding=_pair(options.get("padding", 0), f"{where}: padding"),
                      ceil_mode=bool(options.get("ceil_mode", False)))
        try:
            if is_max:
                return MaxPool2d(kernel, name=self.name(node), dilation=_pair(options.get("dilation", 1), f"{where}: dilation"),
                                 **common)
            return AvgPool2d(kernel, name=self.name(node), count_include_pad=bool(options.get("count_include_pad", True)),
                             **common)
        except ValueError as err:
            raise TraceError(f"{where}: {err}") from None


def from_torch(module, input_shape: Shape) -> Network:
    """The IR network of a PyTorch module (in eval mode: batch-norm uses its running statistics).

    ``input_shape`` is one sample's shape, e.g. (3, 32, 32). Parameters keep their state_dict
    names (``layer1.0.conv1.weight``), so ``eventsnn.spec.network_to_spec`` gives a spec that
    loads the module's own ``state_dict``.
    """
    _torch()
    was_training = module.training
    module.eval()
    try:
        return _Tracer(module, input_shape).run()
    finally:
        module.train(was_training)

