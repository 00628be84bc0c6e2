"""The networks users bring: torchvision's classification CNNs through ``from_torch`` and through ONNX.

For every model (random weights, batch-norm statistics randomized, eval mode) and each route, the
result is "converted" or the one refusal the loader gives. For converted ones: the folded ANN
against torch (max |difference| / max |output|), and a T = 4 simulation of the converted SNN
(default settings) on one image. Writes model_zoo.json and model_zoo.md to --out (default
out/results; `--out docs/results` updates docs/model_zoo.md). The peers' table comes from
model_zoo_peers.json in the same folder (benchmarks/model_zoo_peers.py, in the peer environment).

    python benchmarks/model_zoo.py [--models resnet18,vgg16] [--quick]

Needs torch, onnx and torchvision's model definitions. torchvision's wheel that matches the CPU
torch on this machine (0.28.0 beside torch 2.13.0) fails to import for want of its C++ detection
ops; the model definitions do not use them, so the two schemas its import registers fakes for are
declared first (``_declare_detection_ops``). Install with ``pip install --no-deps torchvision==0.28.0``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eventsnn import ann, convert, simulate  # noqa: E402
from eventsnn.atomic import write_text  # noqa: E402
from outputs import add_out_option, page_path  # noqa: E402

# (torchvision constructor, input side): 224 where the model's adaptive pooling is the identity only
# there (VGG, AlexNet), otherwise small inputs to keep the run short
MODELS = [
    ("resnet18", 64), ("resnet34", 64), ("resnet50", 64),
    ("vgg11", 224), ("vgg11_bn", 224), ("vgg13", 224), ("vgg13_bn", 224), ("vgg16", 224), ("vgg16_bn", 224),
    ("vgg19", 224), ("vgg19_bn", 224), ("alexnet", 224),
    ("squeezenet1_0", 64), ("squeezenet1_1", 64), ("densenet121", 64), ("googlenet", 64),
    ("mobilenet_v2", 64), ("regnet_x_400mf", 64), ("shufflenet_v2_x1_0", 64),
    ("mobilenet_v3_small", 64), ("efficientnet_b0", 64), ("convnext_tiny", 64), ("regnet_y_400mf", 64),
    ("cifar_resnet18", 32),
]
STEPS = 4
TOLERANCE = 1e-5  # max |ANN - torch| / max |torch|


def _declare_detection_ops() -> None:
    import torch

    if not hasattr(torch.ops, "torchvision") or not hasattr(torch.ops.torchvision, "nms"):
        try:
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _declare_detection_ops.library = lib  # keep the definitions alive
        except RuntimeError:
            pass  # a torchvision with its C++ extension defined them already


def make_model(name: str):
    import torch
    from torchvision import models

    torch.manual_seed(0)
    if name == "cifar_resnet18":  # the CIFAR variant: 3x3 stem, no max-pool
        model = models.resnet18(num_classes=10)
        model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = torch.nn.Identity()
    elif name == "googlenet":
        model = models.googlenet(aux_logits=False, init_weights=True)
    else:
        model = getattr(models, name)()
    for module in model.modules():  # batch-norm statistics that fold into something other than the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def refusal(err: BaseException) -> str:
    """The loader's message, one line."""
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]


def check_route(model, net, x: np.ndarray) -> dict:
    """The folded ANN against torch, and a short SNN run."""
    import torch

    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = ann.forward(net, x)
    error = float(np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-30))
    began = time.perf_counter()
    try:
        snn = convert(net, x, 99.9).build()
    except ValueError as err:  # the IR loads but cannot become an SNN: the converter's refusal
        return {"status": "refused", "reason": refusal(err), "ann_relative_error": error}
    built = time.perf_counter() - began
    result = simulate(snn, x[:1], STEPS)
    return {"status": "converted", "ann_relative_error": error, "ann_matches": error <= TOLERANCE,
            "layers": len(net.layers), "neurons": int(snn.n_neurons), "build_seconds": round(built, 2),
            "snn_seconds": round(result.seconds, 2), "snn_synops": int(result.synops.sum())}


def fx_route(model, shape, x) -> dict:
    from eventsnn.loaders import from_torch

    try:
        net = from_torch(model, shape)
    except Exception as err:  # the refusal is the result
        return {"status": "refused", "reason": refusal(err)}
    return check_route(model, net, x)


def onnx_route(model, shape, x) -> dict:
    import torch

    from eventsnn.loaders import load_onnx

    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, on every model
        path = Path(folder) / "model.onnx"
        try:
            torch.onnx.export(model, torch.from_numpy(x[:1]), str(path), dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        except Exception as err:
            return {"status": "export failed", "reason": refusal(err)}
        try:
            net = load_onnx(path)
        except Exception as err:
            return {"status": "refused", "reason": refusal(err).replace(f"{path}: ", "")}
    return check_route(model, net, x)


def markdown(report: dict, peers: dict | None = None) -> str:
    lines = ["# The networks users bring: torchvision's CNNs", "",
             f"Generated by `python benchmarks/model_zoo.py` on {report['date']} (torch {report['torch']}, torchvision "
             f"{report['torchvision']}): random weights, randomized batch-norm statistics, eval mode. A converted "
             f"net's folded ANN is compared with torch (max |difference| / max |output|, target <= {TOLERANCE:g}), "
             f"and the SNN (default settings) runs T = {STEPS} steps on one image.", "",
             f"Converted through `from_torch`: {report['converted']['fx']} of {len(report['models'])}; through ONNX: "
             f"{report['converted']['onnx']} of {len(report['models'])}.", "",
             "| model | input | from_torch | ONNX | ANN vs torch | SNN neurons | build / T=4 run (s) |",
             "|---|---|---|---|---|---|---|"]
    for name, row in report["models"].items():
        cells = []
        for route in ("fx", "onnx"):
            r = row[route]
            cells.append("converted" if r["status"] == "converted" else f"{r['status']}: {r['reason']}".replace("|", "/"))
        done = next((row[r] for r in ("fx", "onnx") if row[r]["status"] == "converted"), None)
        error = f"{done['ann_relative_error']:.1e}" if done else "-"
        neurons = f"{done['neurons']:,}" if done else "-"
        seconds = f"{done['build_seconds']} / {done['snn_seconds']}" if done else "-"
        lines.append(f"| {name} | {row['input']} | {cells[0]} | {cells[1]} | {error} | {neurons} | {seconds} |")
    if peers:
        lines += peers_table(report, peers)
    return "\n".join(lines) + "\n"


def _peer_cell(r: dict) -> str:
    if r["status"] == "refused":
        return f"refused: {r['reason']}"[:160]
    cell = r["status"] + (f": {', '.join(r['analog'])}" if r.get("analog") else "")
    if r.get("maxpools"):
        cell += f"; {r['maxpools']} max-pool(s) on spikes"
    if not r.get("runs", True):
        cell += f"; the T = {STEPS} run failed ({r['run_error'][:80]})"
    return cell


def peers_table(report: dict, peers: dict) -> list[str]:
    """The same models in SpikingJelly and sinabs (benchmarks/model_zoo_peers.py, peer environment)."""
    v = peers["versions"]
    lines = ["", "## The same models in SpikingJelly and sinabs", "",
             f"`benchmarks/model_zoo_peers.py` ({peers['date']}; SpikingJelly {v['spikingjelly']}, sinabs {v['sinabs']}, "
             f"torch {v['torch']}): each peer's documented conversion call on the same models, then the converted "
             "module traced with torch.fx and every nonlinearity that is not one of its neurons listed (activation "
             "modules, functional activations in forward methods, tensor-by-tensor products). 'partly analog': the "
             "converted net still computes those on analog values; 'spiking': none is left. Both peers keep torch's "
             "max-pool, which on rate-coded spikes is not the max of the rates (eventsnn gates it by rate). eventsnn "
             "converts every layer into an event-driven one or refuses with the reason.", "",
             "| model | eventsnn (from_torch / ONNX) | SpikingJelly | sinabs |", "|---|---|---|---|"]
    for name, row in peers["models"].items():
        ours = report["models"].get(name)
        mine = " / ".join(ours[r]["status"] for r in ("fx", "onnx")) if ours else "-"
        lines.append(f"| {name} | {mine} | {_peer_cell(row['spikingjelly'])} | {_peer_cell(row['sinabs'])} |"
                     .replace("\n", " "))
    counts = {p: sum(r[p]["status"] == "spiking" for r in peers["models"].values()) for p in ("spikingjelly", "sinabs")}
    lines += ["", f"Fully spiking: SpikingJelly {counts['spikingjelly']}, sinabs {counts['sinabs']} of "
                  f"{len(peers['models'])}; eventsnn converts {report['converted']['fx']} through from_torch and "
                  f"{report['converted']['onnx']} through ONNX, and refuses the rest with one line each."]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated subset (default: all)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite model_zoo.md from the stored JSON files (with the peers' when present)")
    add_out_option(parser)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = args.out / "model_zoo.json", page_path(args.out, "model_zoo.md")
    peers_path = args.out / "model_zoo_peers.json"
    peers = json.loads(peers_path.read_text()) if peers_path.exists() else None
    if args.render_only:
        write_text(markdown_path, markdown(json.loads(json_path.read_text()), peers))
        print(f"wrote {markdown_path}")
        return 0
    _declare_detection_ops()
    import torch
    import torchvision

    chosen = [(n, s) for n, s in MODELS if not args.models or n in args.models.split(",")]
    report = {"date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "torchvision": torchvision.__version__,
              "steps": STEPS, "tolerance": TOLERANCE, "models": {}}
    for name, side in chosen:
        shape = (3, side, side)
        x = np.random.default_rng(0).random((2,) + shape, dtype=np.float32)
        began = time.perf_counter()
        model = make_model(name)
        row = {"input": f"3x{side}x{side}"}
        for route, run in (("fx", fx_route), ("onnx", onnx_route)):
            try:
                row[route] = run(model, shape, x)
            except Exception as err:  # a failure after loading is a bug of ours: record it, go on
                row[route] = {"status": "error", "reason": refusal(err), "traceback": traceback.format_exc()[-2000:]}
        report["models"][name] = row
        print(f"{name:20s} fx: {row['fx']['status']:10s} onnx: {row['onnx']['status']:10s} "
              f"({time.perf_counter() - began:.0f} s) {row['fx'].get('reason', '')[:90]}", flush=True)
    report["converted"] = {r: sum(row[r]["status"] == "converted" for row in report["models"].values())
                           for r in ("fx", "onnx")}
    write_text(json_path, json.dumps(report, indent=1))
    write_text(markdown_path, markdown(report, peers))
    print(f"converted: from_torch {report['converted']['fx']}, ONNX {report['converted']['onnx']} of "
          f"{len(report['models'])}; wrote {json_path} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
