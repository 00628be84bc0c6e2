"""The IR as an ONNX file: the ANN a converted model was made from, for running it with another
runtime (onnxruntime) on the same inputs. Needs the ``onnx`` extra.

Each layer becomes the operator ``onnx_model.load_onnx`` reads back: Conv, Gemm, Relu, Clip,
QCFS as Mul, Add, Floor, Clip, Mul, MaxPool, AveragePool, Flatten, Softmax, BatchNormalization,
Concat, and a residual add as Mul by its branch weights and Sum (a weight per channel is written, which
onnxruntime runs, but not read back: ANNs have none). The batch dimension is dynamic.
"""

from __future__ import annotations

import os

import numpy as np

from eventsnn.ir import (QCFS, Add, AvgPool2d, BatchNorm, Channels, ClipReLU, Concat, Conv2d, Flatten, Linear, MaxPool2d, Network,
                         ReLU, Softmax)

from .optional import require

OPSET = 17


class _Graph:
    """Nodes and constants added in order, each tensor named after the layer that makes it."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.constants = [], []

    def constant(self, name: str, value, dtype=np.float32) -> str:
        self.constants.append(self.numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _pool_attributes(layer: MaxPool2d | AvgPool2d, in_shape: tuple[int, ...]) -> dict:
    k, p = layer.kernel_size, layer.padding
    for size in in_shape[1:]:  # ONNX's ceil mode keeps a last window that starts in the right padding; PyTorch's not
        room = size + 2 * p - layer.span
        onnx_windows = (-(-room // layer.stride) if layer.ceil_mode else room // layer.stride) + 1
        if onnx_windows != layer.output_size(size):
            raise ValueError(f"cannot write '{layer.name}' to ONNX: with ceil_mode its last window would start in the "
                             "padding, which ONNX keeps and PyTorch (and eventsnn) drop")
    attributes = dict(kernel_shape=[k, k], strides=[layer.stride] * 2, pads=[p] * 4, ceil_mode=int(layer.ceil_mode))
    if isinstance(layer, MaxPool2d):
        attributes["dilations"] = [layer.dilation] * 2
    else:
        attributes["count_include_pad"] = int(layer.count_include_pad)
    return attributes


def _emit(graph: _Graph, layer, sources: list[str], name: str, shapes: list[tuple[int, ...]]) -> str:
    """The nodes of one layer reading ``sources``; returns the name of its output tensor."""
    x = sources[0]
    if isinstance(layer, Conv2d):
        inputs = [x, graph.constant(f"{name}.weight", layer.weight), graph.constant(f"{name}.bias", layer.bias)]
        return graph.node("Conv", inputs, name, kernel_shape=list(layer.weight.shape[2:]), strides=[layer.stride] * 2,
                          pads=[layer.padding] * 4, group=int(layer.groups))
    if isinstance(layer, Linear):
        inputs = [x, graph.constant(f"{name}.weight", layer.weight), graph.constant(f"{name}.bias", layer.bias)]
        return graph.node("Gemm", inputs, name, transB=1)
    if isinstance(layer, ReLU):
        return graph.node("Relu", [x], name)
    if isinstance(layer, ClipReLU):
        return graph.node("Clip", [x, graph.constant(f"{name}.min", 0.0), graph.constant(f"{name}.max", layer.threshold)],
                          name)
    if isinstance(layer, QCFS):  # clip(floor(x L / lambda + 1/2), 0, L) lambda / L
        levels, threshold = layer.levels, layer.threshold
        scaled = graph.node("Mul", [x, graph.constant(f"{name}.gain", levels / threshold)], f"{name}.scaled")
        shifted = graph.node("Add", [scaled, graph.constant(f"{name}.half", 0.5)], f"{name}.shifted")
        floored = graph.node("Floor", [shifted], f"{name}.floor")
        clipped = graph.node("Clip", [floored, graph.constant(f"{name}.min", 0.0), graph.constant(f"{name}.max", levels)],
                             f"{name}.clip")
        return graph.node("Mul", [clipped, graph.constant(f"{name}.step", threshold / levels)], name)
    if isinstance(layer, MaxPool2d):
        return graph.node("MaxPool", [x], name, **_pool_attributes(layer, shapes[0]))
    if isinstance(layer, AvgPool2d):
        return graph.node("AveragePool", [x], name, **_pool_attributes(layer, shapes[0]))
    if isinstance(layer, Flatten):
        return graph.node("Flatten", [x], name, axis=1)
    if isinstance(layer, Softmax):
        return graph.node("Softmax", [x], name, axis=1)
    if isinstance(layer, BatchNorm):
        params = [graph.constant(f"{name}.{key}", getattr(layer, key)) for key in ("gamma", "beta", "mean", "var")]
        return graph.node("BatchNormalization", [x] + params, name, epsilon=float(layer.eps))
    if isinstance(layer, Concat):
        return graph.node("Concat", sources, name, axis=1)
    if isinstance(layer, Channels):
        return graph.node("Gather", [x, graph.constant(f"{name}.index", layer.index, np.int64)], name, axis=1)
    if isinstance(layer, Add):
        terms = []
        for k, (source, weight, shape) in enumerate(zip(sources, layer.input_weights(len(sources)), shapes)):
            weight = np.asarray(weight, np.float32)
            if np.all(weight == 1):
                terms.append(source)
                continue
            if weight.ndim:  # one per channel, broadcast over the pixels
                weight = weight.reshape((-1,) + (1,) * (len(shape) - 1))
            terms.append(graph.node("Mul", [source, graph.constant(f"{name}.w{k}", weight)], f"{name}.in{k}"))
        return graph.node("Sum", terms, name)
    raise ValueError(f"cannot write {type(layer).__name__} '{layer.name}' to ONNX")


def to_onnx(net: Network):
    """The network as an ONNX ModelProto (input 'x' of shape (N, *input_shape), output 'y')."""
    onnx = require("onnx", "onnx", "writing ONNX files")
    numpy_helper = require("onnx.numpy_helper", "onnx", "writing ONNX files")
    graph = _Graph(onnx.helper, numpy_helper)
    names = {-1: "x"}
    for i, (layer, sources) in enumerate(zip(net.layers, net.inputs)):
        shapes = [net.input_shape if j < 0 else net.shapes[j] for j in sources]
        names[i] = _emit(graph, layer, [names[j] for j in sources], f"l{i}.{layer.name}", shapes)
    graph.nodes.append(onnx.helper.make_node("Identity", [names[len(net.layers) - 1]], ["y"], name="y"))
    float32 = onnx.TensorProto.FLOAT
    model = onnx.helper.make_model(onnx.helper.make_graph(
        graph.nodes, "eventsnn", [onnx.helper.make_tensor_value_info("x", float32, ["N", *net.input_shape])],
        [onnx.helper.make_tensor_value_info("y", float32, ["N", *net.output_shape])], graph.constants),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="eventsnn")
    onnx.checker.check_model(model)
    return model


def save_onnx(net: Network, path: str | os.PathLike) -> None:
    """Write the network as an ONNX file (through a temporary file: an old file is replaced whole or kept)."""
    from eventsnn.atomic import atomic_output

    data = to_onnx(net).SerializeToString()
    with atomic_output(path) as f:
        f.write(data)
