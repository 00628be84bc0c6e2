"""Small CIFAR-10 members of the standard CNN families, as PyTorch modules eventsnn converts through
``from_torch``: a ResNet-18 (torchvision's layout: the padded 3x3 max-pool stem, basic blocks that
call one ReLU module at two places), a MobileNetV2 (inverted residuals: depthwise convs, ReLU6 and
a linear bottleneck with no activation) and an Inception net (GoogLeNet's blocks: four branches,
one behind a padded ceil-mode max-pool, joined by torch.cat). Trained by ``train_families.py``."""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """torchvision's: one ReLU module, called after the first conv and after the add."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2, self.bn2 = conv_bn(c_out, c_out, 3)
        self.relu = nn.ReLU()
        self.downsample = nn.Sequential(*conv_bn(c_in, c_out, 1, stride)) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, widths=(16, 32, 64, 128), classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, widths[0], 3), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1))
        blocks, c_in = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(2):
                blocks.append(BasicBlock(c_in, width, 2 if stage and i == 0 else 1))
                c_in = width
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1 + ReLU6, depthwise 3x3 + ReLU6, project 1x1 with no activation
    (the linear bottleneck), and the residual add when the shape allows, with no activation after."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        self.residual = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(*conv_bn(c_in, hidden, 1), nn.ReLU6(), *conv_bn(hidden, hidden, 3, stride, hidden),
                                  nn.ReLU6(), *conv_bn(hidden, c_out, 1))

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = ((1, 16, 1, 1), (4, 24, 2, 1), (4, 32, 2, 2), (4, 64, 2, 2), (4, 96, 1, 1))  # expand, width, n, stride

    def __init__(self, classes: int = 10):
        super().__init__()
        layers, c_in = [*conv_bn(3, 32, 3), nn.ReLU6()], 32
        for expand, width, n, stride in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(c_in, width, stride if i == 0 else 1, expand))
                c_in = width
        layers += [*conv_bn(c_in, 256, 1), nn.ReLU6()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(256, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class Inception(nn.Module):
    """GoogLeNet's block: 1x1; 1x1 then 3x3; 1x1 then 3x3 (GoogLeNet's "5x5"); 3x3 max-pool then 1x1."""

    def __init__(self, c_in: int, b1: int, b2: tuple[int, int], b3: tuple[int, int], b4: int):
        super().__init__()

        def unit(c: int, c_out: int, k: int) -> nn.Sequential:
            return nn.Sequential(*conv_bn(c, c_out, k), nn.ReLU())
        self.branch1 = unit(c_in, b1, 1)
        self.branch2 = nn.Sequential(unit(c_in, b2[0], 1), unit(b2[0], b2[1], 3))
        self.branch3 = nn.Sequential(unit(c_in, b3[0], 1), unit(b3[0], b3[1], 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), unit(c_in, b4, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(3, 64, 3), nn.ReLU())
        self.inception3a = Inception(64, 32, (48, 64), (8, 16), 16)     # -> 128
        self.inception3b = Inception(128, 64, (64, 96), (16, 48), 32)   # -> 240
        self.pool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(240, 96, (48, 104), (8, 24), 32)   # -> 256
        self.pool4 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception5a = Inception(256, 128, (80, 160), (16, 48), 48)  # -> 384
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(384, classes)

    def forward(self, x):
        x = self.pool3(self.inception3b(self.inception3a(self.stem(x))))
        x = self.inception5a(self.pool4(self.inception4a(x)))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


FAMILIES = {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "inception": InceptionNet}
