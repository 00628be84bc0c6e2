"""Flags several subcommands share, and how they become the library's arguments."""

from __future__ import annotations

import argparse

from .. import memory
from ..pipeline import DEFAULTS, build_options
from ..snn import ARITHMETICS, AVG_POOLS, CORRECTIONS, INPUTS, OUTPUTS, PATHS, RESETS, SHIFTS, SPIKES


def at_least(minimum: int):
    """An argparse type: an integer >= minimum (so --limit 0 or --batch -5 is refused, not misread)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


POSITIVE, NON_NEGATIVE = at_least(1), at_least(0)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows a flag's default where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = not (action.default is None or action.default is False or action.default is argparse.SUPPRESS
                     or action.default == [])
        if shown and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def add_global_options(parser: argparse.ArgumentParser, suppress_defaults: bool = False) -> None:
    """Options every command takes, before or after its name (after it they must not reset the
    value given before it, hence SUPPRESS there)."""
    default = {"default": argparse.SUPPRESS} if suppress_defaults else {}
    parser.add_argument("--debug", action="store_true", help="show the traceback of unexpected errors", **default)
    parser.add_argument("--memory-limit-mib", type=float,
                        help=f"refuse work estimated to need more memory than this (default: "
                             f"{100 * memory.DEFAULT_FRACTION:.0f}%% of the memory available, or ${memory.ENV})", **default)


# simulation settings: flag -> (choices or type, help); not given (None): what the model file says
# (run, analyze, export), or the defaults for the network (convert, demo; ``model.default_config``)
_SETTINGS = {
    "reset": (RESETS, "reset by subtraction or to zero"),
    "input": (INPUTS, "analog current or Poisson spikes"),
    "output": (OUTPUTS, "readout of the last layer"),
    "shift": (SHIFTS, "Deng & Gu: membranes start at threshold/2, or threshold/2T added to biases"),
    "softmax_rate": (float, "probability per step of the softmax trigger"),
    "maxpool_decay": (float, "decay of the max-pool gate's rate estimate (1 = spike count)"),
    "spikes": (SPIKES, "binary spikes; graded: one event carries floor(V / threshold) spikes; signed: binary, "
                       "plus a spike of -1 where V < 0 from a neuron that has spiked (no max-pooling)"),
    "max_spikes": (POSITIVE, "the most spikes one graded event carries (a new conversion: 16; a QCFS-L net: L)"),
    "levels": (POSITIVE, "graded spikes: each spike is worth 1/LEVELS of its layer's scale "
                         "(needs max-spikes >= levels; a new conversion: 8; a QCFS-L net: L)"),
    "avg_pool": (AVG_POOLS, "average pooling absorbed by the next layer's synapses (exact), or its own neurons"),
    "arithmetic": (ARITHMETICS, "float32, or int32: exact fixed-point sums, identical in any order (docs/precision.md)"),
    "correction": (CORRECTIONS, "offset: layer by layer, each population runs its T steps twice, the second time "
                                "from a V(0) corrected by the miscount of the first (no max-pooling)"),
}


def add_settings(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("simulation settings (default: the model's, see docs/usage.md)")
    for name, (kind, text) in _SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(kind, tuple):
            group.add_argument(flag, choices=kind, help=text)
        else:
            group.add_argument(flag, type=kind, help=text)


def settings(args: argparse.Namespace) -> dict:
    """The simulation settings given on the command line (None: not given)."""
    return {name: getattr(args, name) for name in _SETTINGS}


def add_connectivity(parser: argparse.ArgumentParser, limit: bool = True) -> None:
    parser.add_argument("--path", choices=PATHS, default=DEFAULTS.path,
                        help="conv connectivity: unrolled CSR, kernel-direct, or the faster one measured here")
    if limit:
        parser.add_argument("--max-connectivity-mib", type=float, default=DEFAULTS.max_connectivity_mib,
                            help="refuse an unrolled CSR layer larger than this")


def connectivity(args: argparse.Namespace, **more) -> dict:
    """``ConvertedModel.build`` keyword arguments from --path and --max-connectivity-mib."""
    return build_options(args.path, getattr(args, "max_connectivity_mib", DEFAULTS.max_connectivity_mib), **more)


def add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True,
                        help="labelled data (test split): .npz, MNIST IDX, CIFAR batches or image folders")
    parser.add_argument("--limit", type=POSITIVE, help="use a seeded sample of N samples, balanced over the classes")
    parser.add_argument("--steps", type=POSITIVE, help="simulation steps T (default: the T the model was calibrated "
                        f"for, else {DEFAULTS.steps_graded} with graded spikes, {DEFAULTS.steps_binary} with binary ones)")
    parser.add_argument("--batch", type=POSITIVE, default=DEFAULTS.batch, help="samples per batch")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the Poisson input and softmax streams")


def add_cluster(parser: argparse.ArgumentParser, chunk: bool = True) -> None:
    """Dask options; ``chunk=False`` where one task is one ``--batch`` (analyze keeps each batch's record)."""
    group = parser.add_argument_group("Dask cluster (extra 'dask')")
    group.add_argument("--scheduler", help="run on the Dask cluster at this address (tcp://host:port); "
                                           "the data path must be readable by the workers")
    group.add_argument("--workers", type=POSITIVE, help="run on a local Dask cluster of this many worker processes")
    if chunk:
        group.add_argument("--chunk", type=POSITIVE, default=DEFAULTS.cluster_chunk, help="samples per Dask task")
