"""Tracing PyTorch modules with torch.fx into the IR (needs the torch extra)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from eventsnn import ann, convert, simulate  # noqa: E402
from eventsnn.ir import Add, AvgPool2d, Channels, ClipReLU  # noqa: E402
from eventsnn.loaders import TraceError, from_torch  # noqa: E402
from eventsnn.spec import network_from_spec, network_to_spec  # noqa: E402
from examples.train_mnist_resnet import Block  # noqa: E402  (relu(bn(conv(...))) + shortcut, 1x1 conv when needed)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return torch.softmax(self.fc(self.drop(x)), dim=1)


def randomize_batchnorm(module: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
    return module.eval()


def torch_forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x)).numpy()


def test_resnet_traces_to_a_graph_with_the_same_outputs():
    torch.manual_seed(0)
    module = randomize_batchnorm(TinyResNet())
    net = from_torch(module, (3, 12, 12))
    assert sum(isinstance(layer, Add) for layer in net.layers) == 2
    assert any(isinstance(layer, AvgPool2d) and layer.kernel_size == 6 for layer in net.layers)
    assert "layer2.shortcut.0" in [layer.name for layer in net.layers]
    x = np.random.default_rng(0).random((4, 3, 12, 12), dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-6)


def test_traced_spec_loads_the_modules_own_state_dict():
    module = randomize_batchnorm(TinyResNet())
    net = from_torch(module, (3, 12, 12))
    spec, _ = network_to_spec(net)
    params = {k: v.numpy() for k, v in module.state_dict().items()}
    again = network_from_spec(spec, params)
    x = np.random.default_rng(1).random((2, 3, 12, 12), dtype=np.float32)
    np.testing.assert_array_equal(ann.forward(again, x), ann.forward(net, x))


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        x = torch.clamp(self.conv(x), 0, 2.0)
        y = self.conv2(x)
        y += x
        x = F.max_pool2d(y.relu(), 2)
        return self.fc(x.view(x.size(0), -1))


def test_functional_forms_are_recognised():
    module = Functional().eval()
    net = from_torch(module, (1, 8, 8))
    assert isinstance(net.layers[1], ClipReLU) and net.layers[1].threshold == 2.0
    x = np.random.default_rng(2).random((3, 1, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-5, atol=1e-6)


def test_training_mode_is_restored():
    module = TinyResNet().train()
    from_torch(module, (3, 12, 12))
    assert module.training


class WithGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.fc(x))


@pytest.mark.parametrize("module, shape, message", [
    (WithGelu(), (4,), r"unsupported module GELU 'act': it has no integrate-and-fire equivalent.* \(graph line: .*act"),
    (nn.Sequential(nn.Conv2d(2, 2, 3, dilation=2)), (2, 5, 5), r"dilation=\(2, 2\) is not supported \(only 1\)"),
    (nn.Sequential(nn.Conv2d(2, 2, 3), nn.MaxPool2d(2, return_indices=True)), (2, 6, 6), "return_indices"),
    (nn.Sequential(nn.Conv2d(2, 2, 3), nn.AvgPool2d(2, divisor_override=3)), (2, 6, 6), "divisor_override=3"),
    (nn.Sequential(nn.Linear(4, 4), nn.Hardtanh(-1, 1)), (4,), "clamp"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(3)), (1, 6, 6), "not an ordinary pooling"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), (4,), "dim=1"),
])
def test_unsupported_parts_are_named(module, shape, message):
    with pytest.raises(TraceError, match=message):
        from_torch(module, shape)


@pytest.mark.parametrize("module, shape", [
    (nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.ReLU()), (4, 7, 7)),  # grouped
    (nn.Sequential(nn.Conv2d(3, 3, 3, stride=2, padding=1, groups=3), nn.ReLU6()), (3, 9, 9)),  # depthwise
    (nn.Sequential(nn.Conv2d(3, 6, 3, groups=3), nn.ReLU()), (3, 8, 8)),  # depthwise with a multiplier
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1)), (2, 9, 9)),  # ResNet's stem pool
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True)), (2, 10, 10)),  # GoogLeNet's
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2, 1, dilation=2, padding=1)), (2, 8, 8)),
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AvgPool2d(2, padding=1, ceil_mode=True)), (2, 9, 9)),
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1, count_include_pad=False)), (2, 9, 9)),
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d((7, 7))), (2, 9, 9)),  # VGG's, the identity
    (nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2)), (2, 10, 10)),
])
def test_grouped_convs_and_pools_with_torch_options_compute_what_torch_does(module, shape):
    torch.manual_seed(0)
    model = nn.Sequential(*module, nn.Flatten(), nn.LazyLinear(5)).eval()
    x = torch.rand((6,) + shape)
    with torch.no_grad():
        expected = model(x).numpy()
    net = from_torch(model, shape)
    np.testing.assert_allclose(ann.forward(net, x.numpy()), expected, rtol=1e-4, atol=1e-5)
    snn = convert(net, x.numpy(), 100.0).build()  # and it builds and runs as an SNN
    assert simulate(snn, x.numpy(), 4).decisions.shape == (6, 4)


class Inception(nn.Module):
    """GoogLeNet's block, small: four branches (one behind a padded ceil-mode max-pool) joined by torch.cat."""

    def __init__(self, c_in: int = 4):
        super().__init__()

        def conv(c_out: int, k: int, c: int = c_in) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        self.stem = conv(c_in, 3, 3)
        self.b1, self.b2 = conv(4, 1), nn.Sequential(conv(3, 1), conv(5, 3, 3))
        self.b3 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), conv(2, 1))
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.head = nn.Sequential(nn.Conv2d(11, 6, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Dropout(0.2), nn.Linear(6, 4))

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.pool(torch.cat([self.b1(x), self.b2(x), self.b3(x)], 1)))


def test_channel_concatenation_traces_converts_and_runs():
    torch.manual_seed(0)
    module = randomize_batchnorm(Inception()).eval()
    x = torch.rand(6, 3, 9, 9)
    net = from_torch(module, (3, 9, 9))
    np.testing.assert_allclose(ann.forward(net, x.numpy()), torch_forward(module, x.numpy()), rtol=1e-4, atol=1e-5)
    model = convert(net, x.numpy(), 100.0)
    np.testing.assert_allclose(ann.forward(model.ann, x.numpy()), torch_forward(module, x.numpy()), rtol=1e-4,
                               atol=1e-5)
    assert simulate(model.build(), x.numpy(), 4).decisions.shape == (6, 4)
    with pytest.raises(TraceError, match=r"torch.cat along dim=2 is not supported"):
        from_torch(Functional2(), (1, 4, 4))


class Functional2(nn.Module):
    def forward(self, x):
        return torch.cat([F.relu(x), F.relu(x)], 2)


def test_a_global_pooling_head_converts_and_decides_as_the_ann():
    """SqueezeNet's head: the class scores are the global average of the last conv's ReLU."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 5, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten()).eval()
    x = torch.rand(20, 1, 6, 6)
    net = from_torch(model, (1, 6, 6))
    np.testing.assert_allclose(ann.forward(net, x.numpy()), torch_forward(model, x.numpy()), rtol=1e-4, atol=1e-6)
    result = simulate(convert(net, x.numpy(), 100.0).build(), x.numpy(), 32)
    agree = np.mean(result.decisions[:, -1] == torch_forward(model, x.numpy()).argmax(axis=1))
    assert agree >= 0.8, agree


def test_qcfs_modules_trace_to_one_layer_with_the_same_outputs():
    from examples.archnet import QCFS as TorchQCFS

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), TorchQCFS(4, 1.25), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        model[2].threshold.fill_(0.75)  # a trained threshold
    net = from_torch(model, (1, 8, 8))
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Conv2d", "BatchNorm", "QCFS", "Flatten", "Linear"]
    assert (net.layers[2].levels, net.layers[2].threshold) == (4, 0.75)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(ann.forward(net, x.numpy()), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("module, message", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.SiLU()), r"SiLU '1': it has no integrate-and-fire equivalent; retrain with ReLU"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Hardswish()), "no integrate-and-fire equivalent"),
])
def test_activations_without_a_spiking_counterpart_are_refused_with_advice(module, message):
    with pytest.raises(TraceError, match=message):
        from_torch(module, (1, 5, 5))


def test_a_layer_without_an_activation_is_named_by_the_builder_and_split_by_conversion():
    from eventsnn.snn import build

    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(18, 2)).eval()
    net = from_torch(module, (1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d '0' has no activation of its own \(read by '1'\)"):
        build(net)  # the builder takes populations only
    x = np.random.default_rng(0).random((4, 1, 5, 5), dtype=np.float32)
    model = convert(net, x, 100.0)  # conversion splits conv '0' into its positive and negative parts
    assert {"0.pos", "0.neg"} <= {layer.name for layer in model.ann.layers}
    np.testing.assert_allclose(ann.forward(model.ann, x), torch_forward(module, x), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", ["resnet18", "mobilenet_v2", "inception"])
def test_the_family_nets_convert_and_their_folded_anns_equal_torch(family):
    """examples/families.py: ResNet-18 (padded max-pool stem, one ReLU module called twice per block),
    MobileNetV2 (depthwise convs, linear bottlenecks, adds without ReLU), Inception (torch.cat)."""
    from examples.families import FAMILIES

    torch.manual_seed(0)
    module = randomize_batchnorm(FAMILIES[family]()).eval()
    x = torch.rand(3, 3, 32, 32)
    model = convert(from_torch(module, (3, 32, 32)), x.numpy(), 99.9)
    np.testing.assert_allclose(ann.forward(model.ann, x.numpy()), torch_forward(module, x.numpy()), rtol=1e-4,
                               atol=1e-5)
    assert simulate(model.build(), x.numpy(), 2).decisions.shape == (3, 2)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2's blocks, small: a downsampling unit (two branches, one through a depthwise conv
    without activation), then a unit that splits its input with chunk; each ends in torchvision's
    channel shuffle (view, transpose, view); the head pools with x.mean([2, 3])."""

    def __init__(self):
        super().__init__()

        def conv(c_in: int, c_out: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
            layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
            return nn.Sequential(*layers, *([nn.ReLU()] if act else []))
        self.stem = conv(3, 8, 3)
        self.branch1 = nn.Sequential(conv(8, 8, 3, 2, groups=8, act=False), conv(8, 4))
        self.branch2 = nn.Sequential(conv(8, 4), conv(4, 4, 3, 2, groups=4, act=False), conv(4, 4))
        self.unit2 = nn.Sequential(conv(4, 4), conv(4, 4, 3, groups=4, act=False), conv(4, 4))
        self.fc = nn.Linear(8, 5)

    @staticmethod
    def shuffle(x, groups: int = 2):
        batch, channels, height, width = x.size()
        x = x.view(batch, groups, channels // groups, height, width)
        return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)

    def forward(self, x):
        x = self.stem(x)
        x = self.shuffle(torch.cat((self.branch1(x), self.branch2(x)), dim=1))
        x1, x2 = x.chunk(2, dim=1)
        x = self.shuffle(torch.cat((x1, self.unit2(x2)), dim=1))
        return self.fc(x.mean([2, 3]))


def test_channel_split_and_shuffle_trace_convert_and_run():
    torch.manual_seed(0)
    module = randomize_batchnorm(ShuffleUnit())
    x = torch.rand(6, 3, 8, 8).numpy()
    net = from_torch(module, (3, 8, 8))
    # the first shuffle composes into the two chunk parts read after it: three gathers in all
    assert sum(isinstance(layer, Channels) for layer in net.layers) == 3
    np.testing.assert_allclose(ann.forward(net, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)
    model = convert(net, x, 100.0)
    np.testing.assert_allclose(ann.forward(model.ann, x), torch_forward(module, x), rtol=1e-4, atol=1e-5)
    assert simulate(model.build(), x, 4).decisions.shape == (6, 4)


class MovesPixels(nn.Module):
    def forward(self, x):
        return F.relu(torch.transpose(x, 2, 3).reshape(x.size(0), -1))


class BatchArithmetic(nn.Module):
    def forward(self, x):
        return F.relu(x.view(x.size(0) * 2, -1))


@pytest.mark.parametrize("module, message", [
    (MovesPixels(), "moves values between pixels or axes"),
    (BatchArithmetic(), "arithmetic with the batch size"),
])
def test_reshapes_the_ir_cannot_express_are_refused(module, message):
    with pytest.raises(TraceError, match=message):
        from_torch(module, (2, 3, 4))
