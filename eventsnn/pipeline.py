"""The work the commands share: reading data sets and models, the ANN's accuracy, simulating a data
set in chunks (in this process or on a Dask cluster), and the defaults, in one table.

The command line (``cli``) parses flags, calls these functions and prints; a script can call them
the same way. Progress goes to ``progress.terminal_progress``; one-line messages to ``log``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from . import ann, memory
from .calibrate import calibrate
from .connectivity import DEFAULT_MAX_BYTES
from .convert import DEFAULT_PERCENTILE
from .early_exit import choose_exit
from .layer_levels import choose_levels
from .engine import fastest_projection, simulate, simulation_bytes
from .ir import Network
from .model import ConvertedModel, convert, default_config, load
from .progress import terminal_progress
from .reference import simulate_reference
from .report import efficiency_report, mean_steps_run
from .scaleout import DEFAULT_CHUNK
from .snn import PATHS, SimulationResult, SpikingNetwork, check_spikes_fit

Log = Callable[[str], None]


@dataclass(frozen=True)
class Defaults:
    """What a command uses when a flag is not given (the help texts show these)."""
    percentile: float = DEFAULT_PERCENTILE  # normalization percentile
    steps_graded: int = 8  # T of a run with graded spikes, when the model was not calibrated for one
    steps_binary: int = 100  # ... with binary spikes
    batch: int = 256  # samples per compiled batch
    read_chunk: int = 4096  # samples read from disk, scaled and simulated at a time
    cluster_chunk: int = DEFAULT_CHUNK  # samples per Dask task
    path: str = "auto"  # conv connectivity
    max_connectivity_mib: float = DEFAULT_MAX_BYTES / 2**20  # the largest unrolled CSR layer
    calib_images: int = 2000  # training images the scales are computed on (a balanced sample of larger sets)
    calibrate_images: int = 256  # images for --calibrate bias|potential
    exit_loss_points: float = 0.2  # accuracy an --exit auto rule may cost
    exit_images: int = 1000  # images for --exit auto
    levels_loss_points: float = 0.2  # accuracy --choose-levels may cost
    levels_images: int = 1000  # images for --choose-levels
    seed: int = 0  # Poisson input and softmax streams
    demo_samples: int = 500
    demo_steps: int = 8


DEFAULTS = Defaults()


# --- data and models -------------------------------------------------------------------------------

def load_data(path: str, limit: int | None = None, split: str = "test", log: Log = print):
    """x as lazy Images (read from disk by slice where the format allows), y as an array; with a
    ``limit`` below the set's size, a seeded sample balanced over the classes (``x.rows`` holds
    its indices), said in one line."""
    from .loaders import load_dataset
    from .loaders.datasets import balanced_sample

    x, y = load_dataset(path, split, lazy=True)
    if not limit or limit >= len(x):
        return x, y
    rows = balanced_sample(y, limit, DEFAULTS.seed)
    classes = len(np.unique(y))
    log(f"{path}: {limit} of the {len(x)} {split} images, a seeded sample"
        + (f" balanced over {classes} classes" if classes > 1 else ""))
    return x.take(rows), y[rows]


def check_labels(y: np.ndarray, n_classes: int, path: str) -> None:
    """Labels must name an output of the net (a label it cannot output would count as wrong silently)."""
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{path}: labels must lie in [0, {n_classes - 1}] for this {n_classes}-class net, "
                         f"found [{y.min()}, {y.max()}]")


def load_network(checkpoint: str, arch: str | None = None) -> Network:
    """The IR of a state_dict checkpoint with its architecture spec, or of an ONNX file."""
    from .loaders import load_network as load_from_files

    if arch is None and not checkpoint.lower().endswith(".onnx"):
        raise ValueError(f"{checkpoint}: a state_dict checkpoint needs its architecture spec (--arch ARCH.json)")
    return load_from_files(checkpoint, arch)


def load_model(path: str) -> ConvertedModel:
    """A model file from ``eventsnn convert``, or a NIR graph (.nir, needs the nir extra)."""
    if path.lower().endswith(".nir"):
        from .loaders import load_nir

        return load_nir(path)
    return load(path)


def ann_accuracy(net: Network, x, y: np.ndarray) -> float:
    """The ANN's accuracy on a data set read in chunks (NaN for an empty set)."""
    chunk, progress = DEFAULTS.read_chunk, terminal_progress("ANN accuracy")
    predictions = []
    for start in range(0, len(x), chunk):
        predictions.append(ann.forward(net, x[start:start + chunk]).argmax(axis=1))
        progress(min(start + chunk, len(x)), len(x))
    return float(np.mean(np.concatenate(predictions) == y)) if predictions else float("nan")


# --- run lengths and early exit --------------------------------------------------------------------

def calibrated_steps(model: ConvertedModel) -> int | None:
    """The run length a model's biases were calibrated for (None: not calibrated)."""
    return (model.calibration or {}).get("steps")


def default_steps(model: ConvertedModel, settings: dict | None = None) -> tuple[int, str]:
    """T when none is given, and why: what the model was calibrated for, or its early exit chosen
    for, else the default for its spikes (graded spikes reach their ANN in a few steps, binary
    ones need many: docs/results.md, "Short latency")."""
    if calibrated_steps(model):
        return calibrated_steps(model), "the T the model was calibrated for"
    if (model.levels_choice or {}).get("steps"):
        return model.levels_choice["steps"], "the T its levels were chosen for"
    if (model.early_exit or {}).get("steps"):
        return model.early_exit["steps"], "the T the model's early exit was chosen for"
    spikes = model.config.updated(**(settings or {})).spikes
    if spikes == "graded":
        return DEFAULTS.steps_graded, "the default for graded spikes"
    return DEFAULTS.steps_binary, f"the default for {spikes} spikes"


def exit_rule_text(rule: dict) -> str:
    if rule["stable_steps"]:
        return f"stop once the decision is unchanged for {rule['stable_steps']} steps"
    if rule["exit_margin"]:
        return f"stop once the leading class is {rule['exit_margin']} output spikes ahead"
    return "none (no rule kept the loss within the budget)"


def early_exit_options(model: ConvertedModel, stable_steps: int | None, exit_margin: int | None,
                       settings: dict | None = None, log: Log = print, schedule: str = "step") -> dict:
    """The early-exit rule of a run: the values given, else the rule chosen at conversion (off where
    the run goes layer by layer). A margin counts output spikes, so it is refused with the membrane
    readout (it would never stop a sample)."""
    config = model.config.updated(**(settings or {}))
    if stable_steps is not None or exit_margin is not None or not model.early_exit:
        options = {"stable_steps": stable_steps or 0, "exit_margin": exit_margin or 0}
    elif config.correction == "offset" or schedule == "layer":
        why = "offset correction runs layer by layer" if config.correction == "offset" else \
            "--schedule layer runs a batch stage by stage"
        log(f"the early exit chosen at conversion is off: {why}")
        options = {"stable_steps": 0, "exit_margin": 0}
    else:
        log(f"early exit chosen at conversion: {exit_rule_text(model.early_exit)} (--exit-stable 0 turns it off)")
        options = {key: model.early_exit[key] for key in ("stable_steps", "exit_margin")}
    if options["exit_margin"] and config.output == "membrane":
        raise ValueError("an exit margin counts output spikes, and the membrane readout emits none: use "
                         "--exit-stable, or --output softmax or spikes")
    return options


# --- conversion ------------------------------------------------------------------------------------

def levels_summary(info: dict, loss_points: float) -> str:
    """One line on what ``choose_levels`` chose, and what it saves."""
    line = f"levels for T={info['steps']}: {info['levels']} (max spikes {info['max_spikes']})"
    after = info["synops_per_image"]["after"]
    if info["per_layer"]:
        per_population = "/".join(map(str, sorted(set(info["population_levels"].values()))))
        line += (f", per layer {per_population} ({after:.3g} SynOps per image, {info['synops_per_image']['before']:.3g} "
                 "before the per-layer levels)")
    else:
        line += f", {after:.3g} SynOps per image"
    return (f"{line}; the ANN's decision on all but {info['disagreement']['after']:.2%} of {info['images']} "
            f"calibration images (budget {loss_points} points)")


def calibration_summary(method: str, info: dict) -> str:
    """One line on what ``calibrate`` kept, and why it kept no shift when its decisions got worse."""
    agreement = info["agreement_with_ann"]
    line = (f"{method} calibration for T={info['steps']} on {info['images']} images: shifted "
            f"{', '.join(info['shifted']) or 'no layer'}")
    if agreement["calibrated"] < agreement["uncalibrated"]:
        return line + (f" (with the shifts the SNN decided as the ANN on {100 * agreement['calibrated']:.1f}% of "
                       f"the images, without on {100 * agreement['uncalibrated']:.1f}%: kept none)")
    return line + (f" (no gain, left alone: {', '.join(info['skipped'])})" if info["skipped"] else "")


@dataclass(frozen=True)
class ConversionOptions:
    """How ``convert_network`` converts: what ``eventsnn convert`` takes beyond its files."""
    percentile: float | None = DEFAULTS.percentile  # None: no normalization (all scales 1)
    scale_per: str = "layer"
    clip_scale: str = "data"  # a clipped ReLU's scale: its data percentile (at most the threshold) or the threshold
    settings: dict = dataclasses.field(default_factory=dict)  # simulation settings over the net's defaults
    calibrate: str = "none"  # none | bias | potential
    steps: int | None = None  # the run length to calibrate and choose an early exit for
    calibrate_images: int = DEFAULTS.calibrate_images
    exit: str = "none"  # none | auto
    exit_loss_points: float = DEFAULTS.exit_loss_points
    exit_images: int = DEFAULTS.exit_images
    choose_levels: bool = False  # the run length and levels with the fewest SynOps
    per_layer_levels: bool = False  # ... and then each population's levels
    levels_loss_points: float = DEFAULTS.levels_loss_points
    levels_images: int = DEFAULTS.levels_images

    def check(self) -> None:
        """Refuse combinations that cannot work, before any long step."""
        if self.calibrate != "none" and self.steps is None:
            raise ValueError(f"--calibrate {self.calibrate} needs --steps T, the run length to calibrate for")
        if self.calibrate != "none" and self.percentile is None:
            raise ValueError(f"--calibrate {self.calibrate} needs calibration data (--calib), not --no-normalization")
        if self.exit == "auto" and self.percentile is None:
            raise ValueError("--exit auto needs calibration data (--calib), not --no-normalization")
        if self.per_layer_levels and not self.choose_levels:
            raise ValueError("--per-layer-levels is a stage of --choose-levels: give both")
        if self.choose_levels and (self.steps is None or self.percentile is None):
            raise ValueError("--choose-levels needs --steps T, the longest run to consider, and calibration data "
                             "(--calib)")


def convert_network(net: Network, x_calib, options: ConversionOptions, log: Log = print) -> ConvertedModel:
    """Fold, normalize, and (as the options ask) choose the levels, calibrate, and choose an early exit."""
    options.check()
    config = default_config(net).updated(**options.settings)  # what the user gave, over the net's defaults
    model = convert(net, x_calib, options.percentile, config, progress=terminal_progress("computing scales"),
                    scale_per=options.scale_per, clip_scale=options.clip_scale)
    check_spikes_fit(model.ann, model.config)  # before calibrating: refused here, not at the first run
    steps = options.steps
    if options.choose_levels:
        model = choose_levels(model, np.asarray(x_calib.spread(options.levels_images)), options.steps,
                              options.levels_loss_points / 100, per_layer=options.per_layer_levels,
                              progress=terminal_progress(f"choosing the levels for T <= {options.steps}"))
        steps = model.levels_choice["steps"]
        check_spikes_fit(model.ann, model.config)
        log(levels_summary(model.levels_choice, options.levels_loss_points))
    if options.calibrate != "none":
        model = calibrate(model, x_calib.spread(options.calibrate_images), steps, options.calibrate,
                          progress=terminal_progress(f"calibrating {options.calibrate} for T={steps}"))
        log(calibration_summary(options.calibrate, model.calibration))
    if options.exit == "auto":
        steps = steps or default_steps(model)[0]
        rule = choose_exit(model, np.asarray(x_calib.spread(options.exit_images)), steps,
                           options.exit_loss_points / 100,
                           progress=terminal_progress(f"choosing the early exit for T={steps}"))
        model = dataclasses.replace(model, early_exit=rule)
        log(f"early exit for T={steps}: {exit_rule_text(rule)}, mean stop step {rule['mean_stop_step']:.1f}; "
            f"{rule['changed']:.2%} of {rule['images']} calibration decisions change "
            f"(budget {options.exit_loss_points} points)")
    return model


# --- building and simulating -----------------------------------------------------------------------

def build_options(path: str = DEFAULTS.path, max_connectivity_mib: float = DEFAULTS.max_connectivity_mib,
                  **settings) -> dict:
    """Keyword arguments of ``ConvertedModel.build``: with path 'auto' each conv layer gets the
    connectivity measured to be faster with this engine's kernels."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, not {path!r}")
    return {"path": path, "max_bytes": int(max_connectivity_mib * 2**20),
            "choose": fastest_projection if path == "auto" else None, **settings}


def simulate_dataset(snn: SpikingNetwork, x, steps: int, seed: int = DEFAULTS.seed, batch: int = DEFAULTS.batch,
                     engine: str = "event", label: str = "simulating", **engine_options) -> SimulationResult:
    """Simulate a data set read in chunks (``x``: an array or lazy Images); the random streams are
    keyed by the sample's index in the whole set, so chunking does not change the result."""
    progress = terminal_progress(label)
    n = len(x)
    memory.check(simulation_bytes(snn, n, steps, threads=engine_options.get("threads") or 1,
                                  schedule=engine_options.get("schedule", "step")),
                 f"simulating {n} samples for {steps} steps")
    chunk = DEFAULTS.read_chunk if engine == "event" else batch
    parts = []
    for start in range(0, n, chunk):
        xb = x[start:start + chunk]
        if engine == "event":
            parts.append(simulate(snn, xb, steps, seed=seed, batch_size=batch, first_sample=start,
                                  progress=lambda done, _, start=start: progress(start + done, n), **engine_options))
        else:
            parts.append(simulate_reference(snn, xb, steps, seed=seed, first_sample=start))
            progress(start + len(xb), n)
    return SimulationResult.concatenate(parts) if parts else simulate(snn, x[:0], steps, seed=seed)


def simulate_model(model: ConvertedModel, snn: SpikingNetwork, data: str, x, steps: int, build: dict,
                   seed: int = DEFAULTS.seed, batch: int = DEFAULTS.batch, engine: str = "event",
                   engine_options: dict | None = None, client=None,
                   chunk: int = DEFAULTS.cluster_chunk) -> SimulationResult:
    """Simulate the samples ``x`` read from ``data`` with ``snn`` (``model.build(**build)``), in this
    process, or on the Dask cluster of ``client`` (the workers read ``data`` and build it themselves)."""
    engine_options = dict(engine_options or {})
    if client is None:
        return simulate_dataset(snn, x, steps, seed, batch, engine, **(engine_options if engine == "event" else {}))
    if engine != "event":
        raise ValueError("a Dask cluster runs the event engine")
    from .scaleout import simulate_on_cluster

    engine_options.pop("threads", None)  # one thread per worker
    return simulate_on_cluster(client, model, data, len(x), steps, seed=seed, batch=batch, chunk=chunk,
                               build_options=build, engine_options=engine_options,
                               progress=terminal_progress("simulating"), rows=getattr(x, "rows", None))


def run_report(snn: SpikingNetwork, result: SimulationResult, y, ann_accuracy: float, engine: str = "event") -> dict:
    """The JSON report of one run: efficiency, accuracy, the engine and each stage's connectivity."""
    report = efficiency_report(snn, result, y, ann_accuracy)
    report["engine"] = engine
    report["connectivity"] = [{"name": s.name, "path": s.path, "bytes": s.connectivity_bytes} for s in snn.stages]
    if result.exit_step is not None and np.any(result.exit_step > 0):
        report["exit_step_mean"] = mean_steps_run(result)
    return report


@contextlib.contextmanager
def cluster(scheduler: str | None = None, workers: int | None = None, log: Log = print) -> Iterator[object]:
    """A Dask client when a scheduler address or a number of local workers is given (closed
    afterwards), else None: simulate in this process."""
    if not (scheduler or workers):
        yield None
        return
    from .scaleout import dask_client

    with dask_client(scheduler, workers) as client:
        where = scheduler or f"a local cluster of {workers} worker processes"
        log(f"simulating on {where} ({len(client.scheduler_info()['workers'])} workers)")
        yield client


def results_on_cluster(client, model: ConvertedModel, data: str, x, steps: int, seed: int, batch: int,
                       build: dict) -> Iterator[SimulationResult] | None:
    """Consecutive batches of per-neuron counts for ``analysis.analyze`` of the samples ``x`` read
    from ``data``, from the cluster (None: no cluster)."""
    if client is None:
        return None
    from .scaleout import results_in_order

    return results_in_order(client, model, data, len(x), steps, seed=seed, batch=batch, chunk=batch,
                            build_options=build, engine_options={"count_neurons": True},
                            rows=getattr(x, "rows", None))
