"""ONNX files into the IR: exported by torch.onnx.export, and hand-built graphs for the odd cases."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

from eventsnn import ann  # noqa: E402
from eventsnn.cli import main  # noqa: E402
from eventsnn.ir import QCFS, Add, BatchNorm, Linear  # noqa: E402
from eventsnn.loaders import OnnxError, load_onnx  # noqa: E402

from .test_torch_module import Functional, Inception, TinyResNet, randomize_batchnorm, torch_forward  # noqa: E402


def export(module: nn.Module, shape, path) -> None:
    torch.onnx.export(module.eval(), torch.zeros((1,) + shape), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("make, shape", [(lambda: randomize_batchnorm(TinyResNet()), (3, 12, 12)),
                                         (Functional, (1, 8, 8))])
def test_exported_models_read_back_with_the_same_outputs(tmp_path, make, shape):
    torch.manual_seed(0)
    module = make().eval()
    export(module, shape, tmp_path / "m.onnx")
    net = load_onnx(tmp_path / "m.onnx")
    assert net.input_shape == shape
    assert any(isinstance(layer, Add) for layer in net.layers)
    x = np.random.default_rng(0).random((3,) + shape, dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("layers, shape", [
    ([nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)], (4, 9, 9)),
    ([nn.Conv2d(3, 3, 3, stride=2, padding=1, groups=3), nn.ReLU6(), nn.MaxPool2d(3, 2, ceil_mode=True)], (3, 13, 13)),
    ([nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2, 1, dilation=2, padding=1)], (2, 8, 8)),
    ([nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)], (2, 9, 9)),
    ([nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AvgPool2d(2, padding=1)], (2, 9, 9)),
])
def test_grouped_convs_and_pool_options_read_back_from_onnx(tmp_path, layers, shape):
    torch.manual_seed(0)
    module = nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(3)).eval()
    module(torch.zeros((1,) + shape))  # size the lazy layer
    export(module, shape, tmp_path / "m.onnx")
    net = load_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((4,) + shape, dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_channel_concatenation_reads_back_from_onnx(tmp_path):
    from eventsnn import convert, simulate

    torch.manual_seed(0)
    module = randomize_batchnorm(Inception()).eval()
    export(module, (3, 9, 9), tmp_path / "inception.onnx")
    net = load_onnx(tmp_path / "inception.onnx")
    x = np.random.default_rng(0).random((4, 3, 9, 9), dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)
    assert simulate(convert(net, x, 100.0).build(), x, 4).decisions.shape == (4, 4)


def test_onnx_refusals_name_the_one_attribute(tmp_path):
    model = _model([helper.make_node("Conv", ["x", "W"], ["y"], dilations=[2, 2], name="c")], {"W": np.ones((1, 1, 2, 2))},
                   in_shape=(1, 1, 6, 6))
    onnx.save(model, tmp_path / "d.onnx")
    with pytest.raises(OnnxError, match=r"dilations=\[2, 2\] is not supported \(only \[1, 1\]\)$"):
        load_onnx(tmp_path / "d.onnx")


def _model(nodes, initializers, in_shape=(1, 4), out_name="y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in initializers.items()])
    return helper.make_model(graph)


def test_matmul_plus_add_becomes_a_linear_layer_with_bias(tmp_path):
    w, b = np.arange(12, dtype=np.float32).reshape(4, 3) / 8, np.array([1.0, -2.0, 0.5], np.float32)
    model = _model([helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
                    helper.make_node("Add", ["h", "B"], ["z"], name="fc_bias"),
                    helper.make_node("Relu", ["z"], ["r"]),
                    helper.make_node("Gemm", ["r", "W2"], ["y"], transB=1, name="out")],
                   {"W": w, "B": b, "W2": np.ones((2, 3))})
    onnx.save(model, tmp_path / "mlp.onnx")
    net = load_onnx(tmp_path / "mlp.onnx")
    assert isinstance(net.layers[0], Linear) and len(net.layers) == 3
    x = np.random.default_rng(1).random((5, 4), dtype=np.float32)
    expected = np.maximum(x @ w + b, 0) @ np.ones((3, 2))
    np.testing.assert_allclose(ann.forward(net, x), expected, rtol=1e-5)


def test_unsupported_operator_is_named(tmp_path):
    model = _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc"),
                    helper.make_node("Sigmoid", ["h"], ["y"], name="squash")], {"W": np.ones((4, 2))})
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(OnnxError, match=r"node 'squash' \(Sigmoid\): unsupported operator Sigmoid"):
        load_onnx(tmp_path / "bad.onnx")


def test_truncated_and_garbage_files_are_refused(tmp_path):
    model = _model([helper.make_node("Gemm", ["x", "W"], ["y"], name="fc")], {"W": np.ones((4, 2))})
    data = model.SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[:len(data) // 2])
    (tmp_path / "junk.onnx").write_bytes(b"\xff\x00 not a model")
    for name in ("cut.onnx", "junk.onnx"):
        with pytest.raises(OnnxError, match=name):
            load_onnx(tmp_path / name)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_convert_an_onnx_file_from_the_command_line(tmp_path, demo, capsys):
    module = Functional().eval()
    export(module, (1, 8, 8), tmp_path / "f.onnx")
    x = np.random.default_rng(3).random((20, 1, 8, 8), dtype=np.float32)
    np.savez(tmp_path / "calib.npz", x=x, y=np.zeros(20, np.int64))
    assert main(["convert", str(tmp_path / "f.onnx"), "--calib", str(tmp_path / "calib.npz"),
                 "-o", str(tmp_path / "f_snn.npz")]) == 0
    assert "converted" in capsys.readouterr().out
    assert (tmp_path / "f_snn.npz").exists()


class PlainQCFS(nn.Module):
    """QCFS written another way round: multiply, shift, floor, clip, scale back."""

    def __init__(self, levels: int, threshold: float):
        super().__init__()
        self.levels, self.threshold = levels, threshold

    def forward(self, x):
        return torch.clamp(torch.floor(x * (self.levels / self.threshold) + 0.5), 0, self.levels) * (
            self.threshold / self.levels)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("activation", ["archnet", "plain"])
def test_qcfs_chains_read_back_as_one_qcfs_layer(tmp_path, activation):
    """torch exports QCFS as a chain of elementwise nodes (Div, Clip, Mul, Add, Floor, Sub, ...);
    the reader turns the chain back into one QCFS layer with the trained levels and threshold."""
    from examples.archnet import QCFS as TorchQCFS

    torch.manual_seed(0)
    act = TorchQCFS(4, 1.25) if activation == "archnet" else PlainQCFS(8, 0.75)
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), act, nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    randomize_batchnorm(module)
    export(module, (1, 8, 8), tmp_path / "q.onnx")
    net = load_onnx(tmp_path / "q.onnx")
    kinds = [type(layer).__name__ for layer in net.layers if not isinstance(layer, BatchNorm)]  # export may fold it
    assert kinds == ["Conv2d", "QCFS", "Flatten", "Linear"]
    qcfs = [layer for layer in net.layers if isinstance(layer, QCFS)][0]
    assert (qcfs.levels, qcfs.threshold) == ((4, 1.25) if activation == "archnet" else (8, 0.75))
    x = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)


def test_elementwise_chains_that_are_no_activation_are_refused(tmp_path):
    doubled = _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc"),
                      helper.make_node("Mul", ["h", "two"], ["d"], name="double"),
                      helper.make_node("Gemm", ["d", "W2"], ["y"], name="out")],
                     {"W": np.ones((4, 3)), "two": np.float32(2), "W2": np.ones((3, 2))})
    onnx.save(doubled, tmp_path / "double.onnx")
    with pytest.raises(OnnxError, match=r"elementwise operations from 'double' are not ReLU, clip\(0, y\) or QCFS"):
        load_onnx(tmp_path / "double.onnx")
    overflowing = _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc"),
                          helper.make_node("Mul", ["h", "huge"], ["d"], name="blow_up"),
                          helper.make_node("Gemm", ["d", "W2"], ["y"], name="out")],
                         {"W": np.ones((4, 3)), "huge": np.float32(1e38), "W2": np.ones((3, 2))})
    onnx.save(overflowing, tmp_path / "inf.onnx")  # infinite values must not pass as the identity
    with pytest.raises(OnnxError, match="elementwise operations from 'blow_up'"):
        load_onnx(tmp_path / "inf.onnx")
    squared = _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc"),
                      helper.make_node("Relu", ["h"], ["r"]),
                      helper.make_node("Mul", ["h", "r"], ["y"], name="square")], {"W": np.ones((4, 3))})
    onnx.save(squared, tmp_path / "square.onnx")
    with pytest.raises(OnnxError, match="two different tensors"):
        load_onnx(tmp_path / "square.onnx")
    per_channel = _model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc"),
                          helper.make_node("Mul", ["h", "s"], ["y"], name="scale")],
                         {"W": np.ones((4, 3)), "s": np.ones(3)})
    onnx.save(per_channel, tmp_path / "scale.onnx")
    with pytest.raises(OnnxError, match="only scalars"):
        load_onnx(tmp_path / "scale.onnx")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_trained_qcfs_net_through_onnx_equals_its_checkpoint_route(tmp_path):
    """The CIFAR-10 QCFS net of examples/, exported by torch to ONNX, reads back with the same
    QCFS layers and gives the same ANN and SNN decisions (T = 1 .. 8) as loaded from its .pt."""
    import json
    from pathlib import Path

    from eventsnn import convert, simulate
    from eventsnn.loaders import load_network
    from examples.archnet import ArchNet

    models = Path(__file__).resolve().parents[1] / "examples" / "models"
    module = ArchNet(json.loads((models / "cifar10_qcfs.json").read_text()))
    module.load_state_dict(torch.load(models / "cifar10_qcfs.pt", weights_only=True))
    export(module, (3, 32, 32), tmp_path / "qcfs.onnx")
    via_onnx, via_pt = load_onnx(tmp_path / "qcfs.onnx"), load_network(models / "cifar10_qcfs.pt",
                                                                        models / "cifar10_qcfs.json")
    onnx_qcfs, pt_qcfs = ([layer for layer in net.layers if isinstance(layer, QCFS)] for net in (via_onnx, via_pt))
    assert onnx_qcfs and [q.levels for q in onnx_qcfs] == [q.levels for q in pt_qcfs]
    np.testing.assert_allclose([q.threshold for q in onnx_qcfs], [q.threshold for q in pt_qcfs], rtol=0)
    with np.load(models / "cifar10_sample.npz", allow_pickle=False) as f:
        x = f["x"][:100].astype(np.float32) / 255
    np.testing.assert_array_equal(ann.forward(via_onnx, x).argmax(axis=1), ann.forward(via_pt, x).argmax(axis=1))
    runs = [simulate(convert(net, x).build(), x, 8).decisions for net in (via_onnx, via_pt)]
    np.testing.assert_array_equal(runs[0], runs[1])



@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_channel_split_and_shuffle_read_back_from_onnx(tmp_path):
    """torch's export of ShuffleNet's blocks: Shape/Gather/Div arithmetic, Reshape to 5-D, Transpose,
    Reshape back, Slice for chunk, ReduceMean for the pooling."""
    from eventsnn import convert, simulate
    from tests.test_torch_module import ShuffleUnit

    torch.manual_seed(0)
    module = randomize_batchnorm(ShuffleUnit()).eval()
    export(module, (3, 8, 8), tmp_path / "shuffle.onnx")
    net = load_onnx(tmp_path / "shuffle.onnx")
    x = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)
    assert simulate(convert(net, x, 100.0).build(), x, 4).decisions.shape == (4, 4)
