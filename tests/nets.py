"""Networks of the standard families, as IR with random weights, for tests that need their shapes."""

from __future__ import annotations

import numpy as np

from eventsnn.ir import Add, AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU


def resnet18(input_shape: tuple[int, int, int] = (3, 32, 32), classes: int = 10, seed: int = 0) -> Network:
    """ResNet-18: four stages of two basic blocks, 64-512 channels, 1x1 projection shortcuts, global
    average pooling, batch-norm already folded. Inputs of 32x32 get the CIFAR stem (3x3 conv);
    larger ones the ImageNet stem (7x7 conv, stride 2, then a 2x2 pooling to a quarter)."""
    rng = np.random.default_rng(seed)
    layers, inputs = [], []

    def add(layer, *sources: int) -> int:
        layers.append(layer)
        inputs.append(sources)
        return len(layers) - 1

    def conv(c_in: int, c_out: int, k: int, stride: int, name: str, source: int) -> int:
        weight = (rng.normal(size=(c_out, c_in, k, k)) * np.sqrt(2 / (c_in * k * k))).astype(np.float32)
        return add(Conv2d(weight, np.zeros(c_out, np.float32), stride, k // 2, name), source)

    if input_shape[1] <= 32:
        x = add(ReLU("stem.relu"), conv(input_shape[0], 64, 3, 1, "stem", -1))
    else:  # torchvision's stem pools with a padded 3x3 max-pool; a 2x2 average gives the same shapes
        x = add(AvgPool2d(2, 2, "stem.pool"), add(ReLU("stem.relu"), conv(input_shape[0], 64, 7, 2, "stem", -1)))
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride, name = (2 if stage and not block else 1), f"layer{stage + 1}.{block}"
            h = add(ReLU(f"{name}.relu1"), conv(channels, width, 3, stride, f"{name}.conv1", x))
            h = conv(width, width, 3, 1, f"{name}.conv2", h)
            shortcut = conv(channels, width, 1, stride, f"{name}.downsample", x) if stride > 1 or channels != width else x
            x = add(ReLU(f"{name}.relu2"), add(Add(f"{name}.add"), h, shortcut))
            channels = width
    side = input_shape[1] // (8 if input_shape[1] <= 32 else 32)
    x = add(Flatten("flatten"), add(AvgPool2d(side, side, "avgpool"), x))
    add(Linear((rng.normal(size=(classes, channels)) * 0.05).astype(np.float32), np.zeros(classes, np.float32), "fc"), x)
    return Network(input_shape, tuple(layers), tuple(inputs))
