"""Differential testing through NIR: eventsnn against sinabs on the same exported graphs.

    /work/peer-venv/bin/python examples/differential_sinabs.py     # the peer environment (benchmarks/make_peer_env.sh)

Draws chains of conv/linear layers with dyadic weights (``eventsnn.testing.strategies``), exports
each as a NIR graph (binary IF neurons, V(0) = 0, analog input), runs it with ``sinabs.from_nir``
and compares every IF layer's spike train with eventsnn's run of the same net under several
readings of the graph (``eventsnn.testing.assert_same_spikes``). Writes
out/results/differential_sinabs.json (``-o``; the committed one is in docs/results): per reading, how many nets spiked identically, and the
first difference of a few that did not. The reading that matches says what sinabs does with
a NIR IF node; the rest of the differences are explained in docs/testing.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventsnn.atomic import write_text  # noqa: E402
from eventsnn.engine import simulate  # noqa: E402
from eventsnn.loaders.nir_graph import to_nir  # noqa: E402
from eventsnn.snn import SimulationConfig, build  # noqa: E402
from eventsnn.testing import assert_same_spikes, spike_trains  # noqa: E402
from eventsnn.testing import strategies as es  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "out" / "results" / "differential_sinabs.json"
READINGS = {  # ways to run the same graph in eventsnn: which one does sinabs implement?
    "as NIR writes it: binary spikes, reset to zero": dict(spikes="binary", reset="zero"),
    "eventsnn's metadata: binary spikes, reset by subtraction": dict(spikes="binary", reset="subtract"),
    "graded spikes (up to 255 per step), reset by subtraction": dict(spikes="graded", max_spikes=255, levels=1,
                                                                     reset="subtract"),
}


def run_sinabs(graph, x: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """Spike trains of every IF node when sinabs runs the graph on a constant input current."""
    import sinabs
    import torch

    model = sinabs.from_nir(graph, batch_size=len(x))
    recorded: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, sinabs.layers.IAFSqueeze):  # one per IF node, named after it
            module.register_forward_hook(lambda m, inp, out, name=name: recorded.__setitem__(name, out.detach()))
    frames = torch.from_numpy(np.repeat(x, steps, axis=0))  # (N * T, ...): sample-major, as sinabs squeezes
    with torch.no_grad():
        model(frames)
    return {name: spikes.reshape((len(x), steps) + spikes.shape[1:]).numpy().astype(np.uint8)
            for name, spikes in recorded.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", type=int, default=100)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("-o", "--output", default=str(OUT), help="the JSON file (default: %(default)s)")
    args = parser.parse_args()

    import sinabs

    ungrouped = es.networks_and_inputs(residual=False, pools=()).filter(  # NIR 1.0 cannot type grouped convs
        lambda net_x: all(getattr(layer, "groups", 1) == 1 for layer in net_x[0].layers))
    drawn = es.fixed_sample(ungrouped, args.nets)
    report = {"sinabs": sinabs.__version__, "nets": args.nets, "steps": args.steps, "readings": {}}
    theirs = []
    for net, x in drawn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reset by subtraction lives in the metadata: the point of this test
            graph = to_nir(build(net, SimulationConfig(spikes="binary", reset="subtract", shift="none",
                                                       output="spikes")))
        theirs.append(run_sinabs(graph, x, args.steps))
    for label, reading in READINGS.items():
        identical, spiking, below_floor, examples = 0, 0, 0, []
        for (net, x), sinabs_trains in zip(drawn, theirs):
            snn = build(net, SimulationConfig(shift="none", output="spikes", **reading))
            result = simulate(snn, x, args.steps, record=True)
            ours = {name.replace("/", "."): train for name, train in spike_trains(result, snn).items()}
            try:
                assert_same_spikes(ours, sinabs_trains, labels=("eventsnn", "sinabs"))
                identical += 1
                spiking += any(train.any() for train in ours.values())
            except AssertionError as err:
                # sinabs keeps V >= -threshold; eventsnn does not bound V from below
                below_floor += bool((result.membrane < -snn.config.threshold).any())
                if len(examples) < 3:
                    examples.append(str(err))
        report["readings"][label] = {
            "identical": identical, "identical_with_spikes": spiking, "differ": args.nets - identical,
            "differ_with_eventsnn_membrane_below_minus_threshold": below_floor, "first_differences": examples}
        print(f"{label}: {identical}/{args.nets} identical ({spiking} of them with spikes); of the "
              f"{args.nets - identical} others, {below_floor} end with some V < -threshold in eventsnn", flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_text(args.output, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
