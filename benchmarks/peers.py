"""Accuracy vs time step of the peer ANN-to-SNN converters (SpikingJelly 2.0, sinabs 3.1) on
this repository's checkpoints. Runs in the separate environment made by make_peer_env.sh; it is
never a dependency of eventsnn.

    /work/peer-venv/bin/python benchmarks/peers.py --arch eventsnn/data/mnist_cnn.json \
        --checkpoint eventsnn/data/mnist_cnn.pt --data eventsnn/data/mnist_sample.npz \
        --calib eventsnn/data/mnist_sample.npz --limit 1000 --calib-limit 1000 --steps 64 \
        --systems spikingjelly,sinabs --json docs/results/peers_mnist_cnn.json

Notes on the peer settings (read off the installed sources, SpikingJelly 2.0.0 and sinabs 3.1.3)
-------------------------------------------------------------------------------------------------
Both peers get the same torch module: examples/archnet.py's ArchNet(spec) with the checkpoint
loaded, re-wrapped as an nn.Sequential of the very same modules (ArchNet.forward walks a private
list, so a converter that swaps child modules by attribute, as sinabs does, needs a Sequential).
A residual spec (``inputs``/``add`` layers, e.g. examples/models/mnist_resnet.json) becomes this
script's GraphNet instead; only SpikingJelly converts it (its FX tracer records the adds).
Both are fed the SAME analog image at every step (constant input current into the first layer;
no Poisson or other spike encoding), as eventsnn does. The decision at step t is the argmax of
the network outputs summed over steps 1..t (ties go to the lowest class index). State is reset
between batches (spikingjelly.activation_based.functional.reset_net; sinabs Network.reset_states).

spikingjelly_99.9% / spikingjelly_max: ``ann2snn.Converter(ann2snn.RateCodingRecipe(dataloader,
  mode=...))``. In 2.0 the 0.x call ``Converter(mode='99.9%', dataloader=...)`` became this recipe
  object; ``Converter`` is the FX-graph converter. It fuses Conv+BatchNorm2d (a Linear followed by
  BatchNorm1d is not fused: the BN stays as a per-step affine map), records per ReLU one
  layer-wise scale over the calibration batches (torch.quantile at 99.9 %, or the max; batches of
  100 images combined by an exponential moving average with momentum 0.1, the first batch taken
  as is), and replaces each ReLU by VoltageScaler(1/s) -> IFNode(v_threshold=1, v_reset=None,
  i.e. reset by subtraction, membrane starts at 0, one spike per step at most, no lower bound on
  the membrane) -> VoltageScaler(s). Max-pooling stays where it was, i.e. a max over the scaled
  spikes of each step. The last Linear has no neuron: its analog output is what is summed over
  time. Single-step mode, T calls per batch.
spikingjelly_ltb: ``ann2snn.Converter(ann2snn.LocalThresholdBalancingRecipe(dataloader))``, the
  other recipe SpikingJelly 2.0's MNIST example runs: channel-wise thresholds grown from the
  calibration data, ReLU -> MaxPool2d patterns rewritten so the max-pool acts BEFORE the neuron
  (on analog currents), and HalfThresholdIFNode (membrane starts at threshold/2, soft reset).
  Its thresholds grow by 2 x the mean overflow per calibration batch, so it needs many batches:
  it gets the same calibration images in batches of 10 (with batches of 100, i.e. 10 updates,
  mnist7 drops from 89 % at T=1 to 57 % from T=4 on). On cifar10_relu more updates do not help
  (6 passes of batches of 10: 42 % instead of 51 % at T=32 on 100 images).
sinabs_multispike / sinabs_singlespike: ``sinabs.utils.normalize_weights(ann, calib_images,
  output_layers=<every ReLU>, param_layers=<the parametric layer feeding it: the BatchNorm where
  there is one, else the conv/linear>, percentile=99.9)`` on a copy of the ANN (sequential,
  layer by layer: each layer's parameters, BN weight and bias included, are divided by the
  99.9th percentile of its ReLU output over all calibration images at once, measured with the
  earlier layers already rescaled; the output layer is not rescaled), then ``sinabs.from_model(
  ann, input_shape, add_spiking_output=True, num_timesteps=T)`` as in sinabs' MNIST weight-
  transfer tutorial: every ReLU becomes IAFSqueeze(spike_threshold=1, reset by subtraction
  (MembraneSubtract), min_v_mem=-1: the membrane is clipped at -1 every step), and an IAF layer is
  appended after the last Linear, so the output is a spike count (many ties at small t).
  spike_fn MultiSpike (sinabs' default: floor(v/threshold) spikes per step) or SingleSpike (at
  most one). BatchNorm is not folded; it runs as a per-step affine map. Max-pooling stays a max
  over spikes. The input is (batch, T, C, H, W) flattened to (batch*T, C, H, W) (sinabs'
  FlattenTime convention) and one forward pass simulates all T steps. sinabs' own weight-scaling
  notes suggest additionally scaling the first layer's weights up by 2-10 by hand; that tuning
  is not done here. Semantic catch: normalize_weights divides ALL parameters of a layer (bias,
  BN shift) by the measured percentile while its input was already divided by the previous
  layer's, so with biases or BatchNorm (sinabs' tutorials use bias-free nets) the rescaled ANN
  is no longer a scaled copy of the original; its accuracy is recorded as
  settings.normalized_ann_accuracy. (Folding each BatchNorm into its conv first changes nothing:
  scaling the folded conv equals scaling the BN's weight and bias; tried, same accuracies.) Residual graphs: skipped (normalize_weights assumes a chain).
sinabs_multispike_analogout: the same without the appended output IAF (add_spiking_output=False):
  the last Linear's analog output is summed over steps, as SpikingJelly's readout is. Not a sinabs
  recommendation; it separates the readout's effect from the conversion's.
Timing: samples_per_second is the whole T-step simulation of the test images (conversion and
calibration excluded, reported separately in "settings"), torch.set_num_threads(2), CPU. As that
is at the mercy of other load on the machine (seen here: torch's 2-thread kernels ran 10 to 45
times slower while another process kept one core busy), each setting is also re-timed best-of-3 on 100 samples at 2 threads and
at 1 thread; the load average at start and end is recorded. With another busy process on the
machine, OMP_WAIT_POLICY=PASSIVE in the environment avoids most of that slowdown (recorded too).
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from eventsnn.loaders import load_dataset  # noqa: E402
from examples.archnet import ArchNet  # noqa: E402

REPORT_STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SYSTEM_SETTINGS = {
    "spikingjelly": ("spikingjelly_99.9%", "spikingjelly_max", "spikingjelly_ltb"),
    "sinabs": ("sinabs_multispike", "sinabs_singlespike", "sinabs_multispike_analogout"),
}


# --------------------------------------------------------------------------------------------
# model and data

class GraphNet(nn.Module):
    """A spec with ``inputs``/``add`` layers (residual blocks) as a torch module: each layer is a
    child module (``.`` in a layer name becomes ``__``), looked up by name at every call so that a
    converter may swap it (sinabs replaces ReLU children in place), and ``add`` is a plain ``+``
    (weighted if the spec gives ``weights``), which SpikingJelly's FX tracer records as such. If a
    converter appends a ``spike_output`` child (sinabs' add_spiking_output), it is applied last."""

    def __init__(self, spec: dict):
        super().__init__()
        shapes = {"input": tuple(spec["input_shape"])}
        self.plan: list[tuple[str, str | None, list[str], list[float] | None]] = []  # name, attr, inputs, weights
        self.renames: dict[str, str] = {}
        previous = "input"
        for i, layer in enumerate(spec["layers"]):
            kind = layer["type"]
            if kind == "softmax":
                continue
            name = layer.get("name", f"_{kind}{i}")
            sources = layer.get("inputs", [previous])
            shape = shapes[sources[0]]
            if kind == "add":
                self.plan.append((name, None, sources, layer.get("weights")))
            else:
                if len(sources) != 1:
                    raise SystemExit(f"layer {name}: only 'add' takes several inputs")
                attr = name.replace(".", "__")
                module = _layer_module(layer, shape)
                self.add_module(attr, module)
                self.renames[name] = attr
                self.plan.append((name, attr, sources, None))
                with torch.no_grad():
                    shape = tuple(module(torch.zeros(2, *shape)).shape[1:])
            shapes[name] = shape
            previous = name
        self.output = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        for name, attr, sources, weights in self.plan:
            if attr is not None:
                values[name] = getattr(self, attr)(values[sources[0]])
                continue
            out = None
            for k, source in enumerate(sources):
                term = values[source] if weights is None else weights[k] * values[source]
                out = term if out is None else out + term
            values[name] = out
        out = values[self.output]
        if hasattr(self, "spike_output"):
            out = self.spike_output(out)
        return out

    def load_spec_state_dict(self, state: dict) -> None:
        for name, attr in self.renames.items():  # bias-free layers (conv before batch-norm)
            module = getattr(self, attr)
            if isinstance(module, (nn.Conv2d, nn.Linear)) and f"{name}.bias" not in state:
                module.register_parameter("bias", None)
        renamed = {}
        for key, value in state.items():
            layer, _, field = key.rpartition(".")
            renamed[f"{self.renames.get(layer, layer)}.{field}"] = value
        self.load_state_dict(renamed, strict=True)


def _layer_module(layer: dict, shape: tuple) -> nn.Module:
    kind = layer["type"]
    if kind == "conv2d":
        return nn.Conv2d(shape[0], layer["out_channels"], layer["kernel_size"], layer.get("stride", 1),
                         layer.get("padding", 0))
    if kind == "linear":
        return nn.Linear(shape[0], layer["out_features"])
    if kind == "batchnorm":
        return (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0], eps=layer.get("eps", 1e-5))
    if kind == "relu":
        return nn.ReLU()
    if kind == "clip_relu":
        return nn.Hardtanh(0.0, float(layer["threshold"]))
    if kind == "maxpool2d":
        return nn.MaxPool2d(layer["kernel_size"], layer.get("stride"))
    if kind == "avgpool2d":
        return nn.AvgPool2d(layer["kernel_size"], layer.get("stride"))
    if kind == "flatten":
        return nn.Flatten()
    raise SystemExit(f"unknown layer type {kind!r}")


def build_model(spec: dict, checkpoint: str) -> nn.Module:
    """The spec's network with the checkpoint loaded, in eval mode: a chain as an nn.Sequential of
    ArchNet's modules (same names as ArchNet's state_dict), a residual graph as a GraphNet."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if any(layer["type"] == "add" or "inputs" in layer for layer in spec["layers"]):
        net = GraphNet(spec)
        net.load_spec_state_dict(state)
        return net.eval()
    net = ArchNet(spec)
    net.load_state_dict(state, strict=True)
    model = nn.Sequential(OrderedDict(net.steps))
    return model.eval()


def load_calibration(path: str, limit: int, select: str) -> np.ndarray:
    """Calibration images, float32 in [0, 1]: an npz's ``x_calib`` if it has one, else the train
    split of the data set (the first ``limit`` images, or ``limit`` evenly spread ones)."""
    if path.endswith(".npz"):
        with np.load(path) as f:
            if "x_calib" in f.files:
                x = f["x_calib"]
                x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
                return x[:limit]
    x, _ = load_dataset(path, "train", lazy=True)
    if select == "spread" and len(x) > limit:
        index = np.linspace(0, len(x) - 1, limit).round().astype(np.int64)
        return np.asarray(x[index], dtype=np.float32)
    return np.asarray(x[:limit], dtype=np.float32)


def batches(x: np.ndarray, y: np.ndarray, size: int):
    for start in range(0, len(x), size):
        yield torch.from_numpy(np.ascontiguousarray(x[start:start + size])), torch.from_numpy(y[start:start + size])


@torch.no_grad()
def ann_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    correct = 0
    for xb, yb in batches(x, y, batch):
        correct += int((model(xb).argmax(1) == yb).sum())
    return correct / len(x)


class Unsupported(Exception):
    """A peer cannot convert this network as documented."""


def relu_and_param_layers(model: nn.Sequential) -> tuple[list[str], list[str]]:
    """For sinabs.utils.normalize_weights: each ReLU and the last parametric layer before it."""
    outputs, params, last_param = [], [], None
    for name, module in model.named_children():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
            last_param = name
        elif isinstance(module, nn.ReLU):
            if last_param is None:
                raise SystemExit(f"ReLU {name} has no parametric layer before it")
            outputs.append(name)
            params.append(last_param)
    return outputs, params


# --------------------------------------------------------------------------------------------
# the peers

def convert_spikingjelly(setting: str, model: nn.Sequential, calib: np.ndarray, steps: int, batch: int):
    """The converted net as ``simulate(x, y) -> correct-per-step counts``, and its settings."""
    from spikingjelly.activation_based import ann2snn, functional

    # LTB grows its thresholds a little per calibration batch (threshold += 2 * mean overflow), so
    # it needs many batches: its own example runs the 60,000 MNIST train images in batches of 100.
    # Our 1,000 images in batches of 100 (10 updates) leave thresholds far too low (mnist7: 57 %
    # at T=32); batches of 10 (100 updates) recover the ANN. Rate coding keeps batches of 100.
    calib_batch = 10 if setting == "spikingjelly_ltb" else 100
    calib_loader = [torch.from_numpy(calib[i:i + calib_batch]) for i in range(0, len(calib), calib_batch)]
    if setting == "spikingjelly_ltb":
        recipe = ann2snn.LocalThresholdBalancingRecipe(dataloader=calib_loader)
        settings = {"converter": "ann2snn.Converter(LocalThresholdBalancingRecipe(dataloader))",
                    "neuron": "HalfThresholdIFNode, channel-wise thresholds, soft reset",
                    "maxpool": "moved before the neuron (analog)"}
    else:
        mode = setting.split("_", 1)[1]
        recipe = ann2snn.RateCodingRecipe(dataloader=calib_loader, mode=mode)
        settings = {"converter": f"ann2snn.Converter(RateCodingRecipe(dataloader, mode={mode!r}))",
                    "mode": mode, "momentum": 0.1, "neuron": "IFNode(v_threshold=1, v_reset=None): reset by subtraction",
                    "maxpool": "on scaled spikes"}
    start = time.perf_counter()
    snn = ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(model))
    snn.eval()
    settings["conversion_seconds"] = round(time.perf_counter() - start, 3)
    settings.update({"calibration_images": len(calib), "calibration_batch": calib_batch,
                     "input": "analog image every step",
                     "readout": "sum over steps of the last layer's analog output", "batch": batch,
                     "step_mode": "s (one call per step)"})

    @torch.no_grad()
    def simulate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        correct = np.zeros(steps, np.int64)
        for xb, yb in batches(x, y, batch):
            functional.reset_net(snn)
            total = None
            for t in range(steps):
                out = snn(xb)
                total = out if total is None else total + out
                correct[t] += int((total.argmax(1) == yb).sum())
        functional.reset_net(snn)
        return correct

    return simulate, settings


SINABS_SETTINGS = {  # spike_fn, spiking output layer
    "sinabs_multispike": ("MultiSpike", True),
    "sinabs_singlespike": ("SingleSpike", True),
    "sinabs_multispike_analogout": ("MultiSpike", False),
}


def convert_sinabs(setting: str, model: nn.Sequential, calib: np.ndarray, steps: int, batch: int, input_shape,
                   x: np.ndarray, y: np.ndarray):
    import sinabs
    import sinabs.activation

    if not isinstance(model, nn.Sequential):
        raise Unsupported("sinabs.utils.normalize_weights rescales one parametric layer per ReLU along a chain; "
                          "on a residual graph that would unbalance the two branches of each add")
    spike_fn_name, spiking_output = SINABS_SETTINGS[setting]
    spike_fn = getattr(sinabs.activation, spike_fn_name)
    percentile = 99.9
    start = time.perf_counter()
    ann = copy.deepcopy(model)
    outputs, params = relu_and_param_layers(ann)
    sinabs.utils.normalize_weights(ann, torch.from_numpy(calib), output_layers=outputs, param_layers=params,
                                   percentile=percentile)
    seconds = time.perf_counter() - start
    normalized_accuracy = ann_accuracy(ann.eval(), x, y, batch)  # the rescaled ANN, before conversion
    start = time.perf_counter()
    net = sinabs.from_model(ann, input_shape=tuple(input_shape), add_spiking_output=spiking_output,
                            spike_fn=spike_fn, num_timesteps=steps)
    net.eval()
    # one forward pass holds batch*T samples; keep that to a few thousand
    sub = max(1, min(batch, 4096 // steps))
    settings = {"converter": f"sinabs.utils.normalize_weights(percentile={percentile}) + sinabs.from_model("
                             f"add_spiking_output={spiking_output}, spike_fn={spike_fn_name})",
                "normalized_layers": dict(zip(outputs, params)), "neuron": "IAFSqueeze(spike_threshold=1, "
                "MembraneSubtract, min_v_mem=-1)", "spike_fn": spike_fn_name, "maxpool": "on spikes",
                "conversion_seconds": round(seconds + time.perf_counter() - start, 3),
                "calibration_images": len(calib), "normalized_ann_accuracy": normalized_accuracy,
                "input": "analog image every step, (batch*T, C, H, W)", "batch": sub,
                "readout": "output IAF spike counts" if spiking_output else
                           "sum over steps of the last Linear's analog output (no output IAF)"}

    @torch.no_grad()
    def simulate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        correct = np.zeros(steps, np.int64)
        for xb, yb in batches(x, y, sub):
            net.reset_states()
            n = len(xb)
            data = xb.unsqueeze(1).expand(n, steps, *xb.shape[1:]).reshape(n * steps, *xb.shape[1:])
            total = net(data).reshape(n, steps, -1).cumsum(1)
            correct += (total.argmax(2) == yb[:, None]).sum(0).numpy()
        net.reset_states()
        return correct

    return simulate, settings


def timed(simulate, x, y) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    correct = simulate(x, y)
    return correct, time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# report

def steps_within(accuracy: list[float], ann: float, points: float) -> int | None:
    """First step t from which accuracy stays >= ann - points (percentage points) up to T."""
    first = None
    for t, acc in enumerate(accuracy, 1):
        if acc >= ann - points / 100.0 - 1e-12:
            first = t if first is None else first
        else:
            first = None
    return first


def print_table(result: dict, steps: int) -> None:
    shown = [t for t in REPORT_STEPS if t <= steps]
    ann = result["ann_accuracy"]
    print(f"\nANN accuracy {100 * ann:.2f} % on {result['samples']} samples; accuracy (%) of the decision at step T")
    print(f"{'setting':<28}" + "".join(f"{'T=' + str(t):>7}" for t in shown)
          + f"{'<=0.5pt':>8}{'<=1pt':>7}{'smp/s':>8}{'best2t':>8}{'best1t':>8}")
    for name, entry in result.items():
        if not isinstance(entry, dict) or "accuracy_per_step" not in entry:
            continue
        acc = entry["accuracy_per_step"]
        row = f"{name:<28}" + "".join(f"{100 * acc[t - 1]:>7.2f}" for t in shown)
        for key in ("steps_within_0.5pt", "steps_within_1pt"):
            row += f"{(str(entry[key]) if entry[key] else '>' + str(steps)):>{8 if '0.5' in key else 7}}"
        row += f"{entry['samples_per_second']:>8.1f}"
        for threads in (2, 1):
            best = [v for k, v in entry.items() if k.startswith("samples_per_second_best") and k.endswith(f"_{threads}thread")]
            row += f"{best[0]:>8.1f}" if best else f"{'-':>8}"
        print(row)
    print("<=0.5pt / <=1pt: first step from which accuracy stays within 0.5 / 1 point of the ANN up to T; "
          "smp/s: samples/s of the whole run; best2t/best1t: best-of-N rerun on a few samples at 2 / 1 threads")


def versions() -> dict:
    out = {"python": sys.version.split()[0], "torch": torch.__version__}
    for dist in ("spikingjelly", "sinabs", "numpy", "nir", "nirtorch"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, help="eventsnn architecture spec (JSON)")
    parser.add_argument("--checkpoint", required=True, help="state_dict (.pt) whose keys are the spec's layer names")
    parser.add_argument("--data", required=True, help="test data, anything eventsnn.loaders.load_dataset reads")
    parser.add_argument("--calib", help="calibration data: an npz with x_calib, or a data set's train split "
                                        "(default: --data)")
    parser.add_argument("--limit", type=int, default=1000, help="test images (the first N)")
    parser.add_argument("--calib-limit", type=int, default=1000, help="calibration images")
    parser.add_argument("--calib-select", choices=("first", "spread"), default="first",
                        help="the first M train images, or M spread evenly over the split (class-sorted folders)")
    parser.add_argument("--steps", type=int, default=64, help="time steps T")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--systems", default="spikingjelly,sinabs",
                        help="comma-separated systems (spikingjelly, sinabs) or settings (e.g. spikingjelly_max)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timing-samples", type=int, default=100,
                        help="extra best-of-N timing runs on this many samples (0: none)")
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = json.loads(Path(args.arch).read_text())
    model = build_model(spec, args.checkpoint)
    x, y = load_dataset(args.data, "test")
    x, y = np.ascontiguousarray(x[:args.limit], np.float32), np.asarray(y[:args.limit], np.int64)
    calib = np.ascontiguousarray(load_calibration(args.calib or args.data, args.calib_limit, args.calib_select))

    settings = []
    for item in args.systems.split(","):
        item = item.strip()
        if item in SYSTEM_SETTINGS:
            settings.extend(SYSTEM_SETTINGS[item])
        elif any(item in names for names in SYSTEM_SETTINGS.values()):
            settings.append(item)
        elif item:
            raise SystemExit(f"unknown system or setting {item!r}")

    ann = ann_accuracy(model, x, y, args.batch)
    result = {"ann_accuracy": ann, "samples": len(x), "steps": args.steps, "arch": args.arch,
              "checkpoint": args.checkpoint, "data": args.data, "calib": args.calib or args.data,
              "calibration_images": len(calib), "threads": args.threads, "versions": versions(),
              "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
              "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    print(f"ANN accuracy {100 * ann:.2f} % ({len(x)} samples); calibration on {len(calib)} images", flush=True)
    for setting in settings:
        try:
            if setting.startswith("spikingjelly"):
                simulate, info = convert_spikingjelly(setting, model, calib, args.steps, args.batch)
            else:
                simulate, info = convert_sinabs(setting, model, calib, args.steps, args.batch, spec["input_shape"],
                                                x, y)
        except Unsupported as why:
            result[setting] = {"skipped": str(why)}
            print(f"{setting}: skipped: {why}", flush=True)
            continue
        correct, seconds = timed(simulate, x, y)
        accuracy = [round(float(c) / len(x), 6) for c in correct]
        entry = {"accuracy_per_step": accuracy, "samples_per_second": round(len(x) / seconds, 2),
                 "simulation_seconds": round(seconds, 3),
                 "steps_within_0.5pt": steps_within(accuracy, ann, 0.5),
                 "steps_within_1pt": steps_within(accuracy, ann, 1.0), "settings": info}
        # the whole-run figure above suffers from whatever else the machine runs; a best-of-N
        # rerun on a few samples, at the run's thread count and at one thread, is steadier
        n = min(args.timing_samples, len(x))
        if n and args.timing_repeats:
            for threads in sorted({args.threads, 1}, reverse=True):
                torch.set_num_threads(threads)
                best = min(timed(simulate, x[:n], y[:n])[1] for _ in range(args.timing_repeats))
                entry[f"samples_per_second_best_of_{args.timing_repeats}_{threads}thread"] = round(n / best, 2)
            torch.set_num_threads(args.threads)
            entry["timing_samples"] = n
        result[setting] = entry
        print(f"{setting}: T={args.steps} accuracy {100 * accuracy[-1]:.2f} %, {len(x) / seconds:.1f} samples/s "
              f"(whole run)", flush=True)
    result["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    print_table(result, args.steps)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
