"""Build a PyTorch module from an eventsnn architecture spec (training examples only; needs torch).

The module's ``state_dict`` keys are exactly the spec's layer names (``conv1.weight``, ...), so a
trained model saves to a checkpoint that ``eventsnn convert --arch`` reads back.
"""

from __future__ import annotations

import torch
from torch import nn


class QCFS(nn.Module):
    """Quantization-clip-floor-shift activation (Bu et al., ICLR 2022) with a trainable threshold:
    a = threshold / L * clip(floor(z L / threshold + 1/2), 0, L); the floor passes gradients
    straight through, so both the weights and the threshold learn."""

    def __init__(self, levels: int, threshold: float):
        super().__init__()
        self.levels = levels
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = torch.clamp(x / self.threshold, 0, 1) * self.levels + 0.5
        floored = scaled + (torch.floor(scaled) - scaled).detach()  # straight-through floor
        return torch.clamp(floored, 0, self.levels) * self.threshold / self.levels


class ArchNet(nn.Module):
    def __init__(self, spec: dict, dropout: float = 0.0):
        super().__init__()
        channels, height, width = spec["input_shape"]
        shape = (channels, height, width)
        self.steps: list[tuple[str, object]] = []
        for i, layer in enumerate(spec["layers"]):
            kind = layer["type"]
            if kind == "conv2d":
                module = nn.Conv2d(shape[0], layer["out_channels"], layer["kernel_size"],
                                   layer.get("stride", 1), layer.get("padding", 0))
            elif kind == "linear":
                module = nn.Linear(shape[0], layer["out_features"])
                if dropout:  # training only: parameter-free, so the state_dict keys do not change
                    self.add_module(f"_dropout{i}", nn.Dropout(dropout))  # registered, so eval() turns it off
                    self.steps.append((f"_dropout{i}", getattr(self, f"_dropout{i}")))
            elif kind == "batchnorm":
                module = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0], eps=layer.get("eps", 1e-5))
            elif kind == "relu":
                module = nn.ReLU()
            elif kind == "clip_relu":
                module = nn.Hardtanh(0.0, float(layer["threshold"]))
            elif kind == "qcfs":
                module = QCFS(int(layer["levels"]), float(layer["threshold"]))
            elif kind == "maxpool2d":
                module = nn.MaxPool2d(layer["kernel_size"], layer.get("stride"))
            elif kind == "avgpool2d":
                module = nn.AvgPool2d(layer["kernel_size"], layer.get("stride"))
            elif kind == "flatten":
                module = nn.Flatten()
            elif kind == "softmax":
                continue  # trained with cross-entropy on the logits
            else:
                raise ValueError(f"layer {i}: unknown type {kind!r}")
            name = layer.get("name", f"_{kind}{i}")
            self.add_module(name, module)
            self.steps.append((name, module))
            with torch.no_grad():
                shape = tuple(module(torch.zeros(2, *shape)).shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, module in self.steps:
            x = module(x)
        return x
