"""What SpikingJelly and sinabs make of torchvision's CNNs: the peers' columns of docs/model_zoo.md.

    VENV_DIR/bin/python benchmarks/model_zoo_peers.py [--models resnet18,vgg16] [--out DIR]

Runs in the peer environment (`bash benchmarks/make_peer_env.sh VENV_DIR`, which also installs
torchvision 0.28.0 with --no-deps). The same models as benchmarks/model_zoo.py (same constructors, seed and batch-norm
statistics), each converted by each peer's documented call:

- SpikingJelly 2.0: ``ann2snn.Converter(RateCodingRecipe(dataloader, mode='max')).convert(model)``
  (an FX-graph converter: it replaces the ReLUs it finds in the traced graph by IF neurons);
- sinabs 3.1: ``sinabs.from_model(model, input_shape)`` (swaps ``nn.ReLU`` modules for IAF neurons).

The converted module is then inspected, not trusted: with every module that has no children kept
whole, it is traced with torch.fx and each nonlinearity that is not one of the peer's neurons is
listed (activation modules such as ReLU6, SiLU, Hardswish, GELU, Sigmoid; functional ReLUs and
activations in a forward method; LayerNorm). Status: "refused" (the conversion raised),
"partly analog" (the converted net still computes those on analog values), or "spiking". Max-pools
are noted apart: both peers keep torch's max-pool, which on rate-coded spikes is not the max of the
rates. Finally the converted net runs T = 4 steps on one image. Writes model_zoo_peers.json to
--out (default out/results; `--out docs/results` for the committed one, which model_zoo.py's table
reads).
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import operator
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_zoo import MODELS, STEPS, _declare_detection_ops, make_model, refusal  # noqa: E402
from outputs import add_out_option  # noqa: E402

ANALOG_MODULES = ("ReLU", "ReLU6", "LeakyReLU", "SiLU", "Hardswish", "Hardsigmoid", "GELU", "Sigmoid", "Tanh",
                  "Hardtanh", "LayerNorm", "Softmax")
ANALOG_FUNCTIONS = ("relu", "relu6", "silu", "hardswish", "hardsigmoid", "gelu", "sigmoid", "tanh", "hardtanh",
                    "layer_norm", "softmax", "leaky_relu")


def _leafy_tracer():
    import torch.fx

    class Leafy(torch.fx.Tracer):
        """Keeps every module without children whole, so that the graph shows the forward methods'
        own functional calls and the modules by their class."""

        def is_leaf_module(self, module, name: str) -> bool:
            return not any(True for _ in module.children())

    return Leafy()


def _kinds_outside_neurons(module, neuron_classes: tuple):
    """Class names of a module and its descendants, not looking inside the peer's neurons."""
    if isinstance(module, neuron_classes):
        return
    yield type(module).__name__
    for child in module.children():
        yield from _kinds_outside_neurons(child, neuron_classes)


def analog_parts(module, neuron_classes: tuple) -> tuple[list[str], int]:
    """What the converted module still computes on analog values, and its max-pool count. An FX
    graph module (SpikingJelly's result) is read as it is, anything else traced first."""
    import torch.fx

    graph = module.graph if isinstance(module, torch.fx.GraphModule) else _leafy_tracer().trace(module)
    modules = dict(module.named_modules())
    found: dict[str, int] = {}
    maxpools = 0
    for node in graph.nodes:
        if node.op == "call_module":
            for kind in _kinds_outside_neurons(modules[node.target], neuron_classes):
                if kind in ANALOG_MODULES:
                    found[kind] = found.get(kind, 0) + 1
                maxpools += kind.startswith("MaxPool")
        elif node.op in ("call_function", "call_method"):
            name = getattr(node.target, "__name__", str(node.target)).strip("_")
            if name in ANALOG_FUNCTIONS:
                found[f"functional {name}"] = found.get(f"functional {name}", 0) + 1
            elif node.target is operator.mul and all(isinstance(a, torch.fx.Node) for a in node.args):
                found["tensor x tensor (gate)"] = found.get("tensor x tensor (gate)", 0) + 1
            maxpools += "max_pool" in name
    return [f"{count} {kind}" for kind, count in sorted(found.items())], maxpools


def spikingjelly(model, x):
    import torch
    from spikingjelly.activation_based import ann2snn, functional, neuron

    recipe = ann2snn.RateCodingRecipe(dataloader=[torch.from_numpy(x)], mode="max")
    snn = ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(model)).eval()

    def run():
        functional.reset_net(snn)
        with torch.no_grad():
            for _ in range(STEPS):
                snn(torch.from_numpy(x[:1]))

    return snn, (neuron.BaseNode,), run


def sinabs_route(model, x):
    import sinabs
    import sinabs.layers
    import torch

    net = sinabs.from_model(copy.deepcopy(model), input_shape=x.shape[1:], num_timesteps=STEPS).eval()

    def run():
        with torch.no_grad():
            net(torch.from_numpy(np.repeat(x[:1], STEPS, axis=0)))  # (batch x T, C, H, W), as sinabs takes it

    return net, (sinabs.layers.StatefulLayer,), run


PEERS = {"spikingjelly": spikingjelly, "sinabs": sinabs_route}


def try_peer(convert, model, x) -> dict:
    began = time.perf_counter()
    try:
        converted, neuron_classes, run = convert(model, x)
    except Exception as err:
        reason = re.sub(r" at 0x[0-9a-f]+", "", refusal(err))  # object addresses differ from run to run
        return {"status": "refused", "reason": reason, "traceback": traceback.format_exc()[-1500:]}
    row: dict = {"conversion_seconds": round(time.perf_counter() - began, 2)}
    try:
        analog, maxpools = analog_parts(converted, neuron_classes)
        row.update(status="partly analog" if analog else "spiking", analog=analog, maxpools=maxpools)
    except Exception as err:  # cannot be traced: say so rather than guess
        row.update(status="not inspected", reason=f"fx tracing failed: {refusal(err)}")
    try:
        run()
        row["runs"] = True
    except Exception as err:
        row.update(runs=False, run_error=refusal(err))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated subset (default: all)")
    add_out_option(parser)
    args = parser.parse_args()
    _declare_detection_ops()
    import torch

    torch.set_num_threads(2)
    report = {"date": time.strftime("%Y-%m-%d"), "steps": STEPS, "versions": {}, "models": {}}
    for dist in ("torch", "torchvision", "spikingjelly", "sinabs"):
        report["versions"][dist] = importlib.metadata.version(dist)
    for name, side in MODELS:
        if args.models and name not in args.models.split(","):
            continue
        x = np.random.default_rng(0).random((2, 3, side, side), dtype=np.float32)
        model = make_model(name)
        report["models"][name] = row = {peer: try_peer(convert, model, x) for peer, convert in PEERS.items()}
        print(f"{name:20s} " + "  ".join(f"{p}: {r['status']} {'; '.join(r.get('analog', []))[:60]}"
                                         for p, r in row.items()), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_zoo_peers.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'model_zoo_peers.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
