"""A dense, time-stepped PyTorch simulation of a converted network: the baseline the engine must beat.

This is how PyTorch-based converters simulate (every layer, every step, all MACs): batched
convolutions and matrix products per step. Same equations as ``eventsnn.snn``; output readout
'membrane' or 'spikes' (the softmax readout needs the engine's random streams, so it is not
offered here). Chains only (one projection per stage). Needs torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from eventsnn.ir import AvgPool2d, Conv2d, Linear, MaxPool2d
from eventsnn.snn import GATE, IF, SpikingNetwork, stage_drive, stage_initial_membrane


def _windows(a: torch.Tensor, pool: MaxPool2d) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, k*k, windows)."""
    n, c = a.shape[:2]
    return F.unfold(a, pool.kernel_size, stride=pool.stride).reshape(n, c, pool.kernel_size ** 2, -1)


class TorchSimulator:
    def __init__(self, snn: SpikingNetwork):
        if snn.config.output == "softmax" or snn.config.input == "poisson" or snn.config.spikes != "binary":
            raise ValueError("the torch baseline simulates binary spikes, analog input, 'membrane' or 'spikes' readout")
        if any(len(s.projections) != 1 or s.projections[0].source != i - 1 for i, s in enumerate(snn.stages)):
            raise ValueError("the torch baseline simulates chains only")
        self.snn = snn
        self.layers = [s.projections[0].layer for s in snn.stages]
        self.weights = [torch.tensor(layer.weight) if isinstance(layer, (Conv2d, Linear)) else None
                        for layer in self.layers]

    def _synaptic(self, i: int, s: torch.Tensor) -> torch.Tensor:
        layer = self.layers[i]
        s = s.reshape((len(s),) + self.snn.stages[i].projections[0].in_shape)
        if isinstance(layer, Conv2d):
            return F.conv2d(s, self.weights[i], None, layer.stride, layer.padding)
        if isinstance(layer, Linear):
            return s @ self.weights[i].T
        if isinstance(layer, AvgPool2d):
            return F.avg_pool2d(s, layer.kernel_size, layer.stride)
        raise TypeError(type(layer))

    @torch.no_grad()
    def run(self, x: np.ndarray, steps: int) -> np.ndarray:
        """Decisions (N, steps) for a batch."""
        cfg, stages = self.snn.config, self.snn.stages
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        n = len(x)
        thr = float(cfg.threshold)
        v = [torch.from_numpy(stage_initial_membrane(s, cfg)).reshape(s.out_shape).repeat(n, *(1,) * len(s.out_shape))
             for s in stages]
        est = [(torch.zeros((n,) + s.projections[0].in_shape, dtype=torch.float64),
                torch.zeros((n,) + s.out_shape, dtype=torch.float64)) if s.kind == GATE else None for s in stages]
        drive = [torch.from_numpy(stage_drive(s, cfg, steps).reshape(s.out_shape)) for s in stages]
        first = self._synaptic(0, x) + drive[0]
        counts = torch.zeros(n, self.snn.n_classes, dtype=torch.int32)
        decisions = np.zeros((n, steps), np.int32)
        spiking_output = cfg.output == "spikes"
        for t in range(steps):
            s_in = None
            for i, stage in enumerate(stages):
                if stage.kind == GATE:
                    layer: MaxPool2d = self.layers[i]
                    est_in, est_out = est[i]
                    est_in.mul_(cfg.maxpool_decay).add_(s_in)
                    est_out.mul_(cfg.maxpool_decay)
                    above = (_windows(s_in, layer) > 0) & (_windows(est_in, layer) > est_out.flatten(2)[:, :, None])
                    s_in = above.any(dim=2).reshape(est_out.shape).float()
                    est_out.add_(s_in)
                    continue
                if i == 0:
                    v[i] += first
                else:
                    v[i] += self._synaptic(i, s_in).reshape(v[i].shape)
                    v[i] += drive[i]
                if stage.kind == IF or spiking_output:
                    fired = v[i] >= thr
                    if cfg.reset == "subtract":
                        v[i] -= thr * fired
                    else:
                        v[i][fired] = 0.0
                    s_in = fired.float()
            if spiking_output:
                counts += s_in.int()
                top = torch.where(counts == counts.max(1, keepdim=True).values, v[-1], -torch.inf).argmax(1)
                decisions[:, t] = torch.where(counts.sum(1) > 0, top, -1).numpy()
            else:
                decisions[:, t] = v[-1].argmax(1).numpy()
        return decisions
