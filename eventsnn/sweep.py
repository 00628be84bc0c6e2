"""``eventsnn sweep SPEC.json``: a grid of conversion and simulation settings over checkpoints.

The spec (paths relative to the spec file)::

    {"checkpoints": [{"name": "demo", "checkpoint": "mnist_cnn.pt", "arch": "mnist_cnn.json",
                      "calib": "mnist_sample.npz", "calib_limit": 1000}],
     "data": "mnist_sample.npz", "limit": 500,
     "grid": {"percentile": [99.9, 99.99], "calibrate": ["none", "bias"], "steps": [4, 16],
              "spikes": ["graded", "binary"], "shift": ["membrane"], "seed": [0]}}

Grid keys: ``percentile``, ``calibrate`` (none | bias | potential), ``steps``, ``seed`` and any simulation
setting (``reset``, ``input``, ``output``, ``shift``, ``spikes``, ``max_spikes``, ``levels``,
``softmax_rate``, ``maxpool_decay``, ``avg_pool``, ``arithmetic``); a key left out takes its default. Every cell is the
product of one value per key. Each checkpoint is loaded once and each percentile's conversion done
once and shared by the cells; calibration, which depends on the settings and T, once per
such combination. A cell is exactly what ``eventsnn convert`` + ``eventsnn run`` with the same
settings give (same report).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

from .calibrate import METHODS, calibrate
from .convert import DEFAULT_PERCENTILE, fold_batchnorm
from .model import ConvertedModel, convert, default_config
from .pipeline import DEFAULTS, Log, ann_accuracy, load_data, load_network, run_report, simulate_model
from .snn import SimulationConfig

CONVERSION_KEYS = ("percentile", "calibrate")
RUN_KEYS = ("steps", "seed")
SETTING_KEYS = tuple(f.name for f in dataclasses.fields(SimulationConfig) if f.name != "threshold")
CELL_DEFAULTS = {"percentile": DEFAULT_PERCENTILE, "calibrate": "none", "steps": DEFAULTS.steps_graded,
                 "seed": DEFAULTS.seed}
CALIBRATION_IMAGES = DEFAULTS.calibrate_images  # as `eventsnn convert --calibrate bias`


class SweepError(ValueError):
    """A sweep spec that cannot be run."""


def read_spec(path: str | Path) -> dict:
    """The spec at ``path``, checked, with paths made absolute (relative to the spec's folder)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SweepError(f"{path}: cannot read the sweep spec ({err})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("checkpoints"), list) or not spec["checkpoints"] \
            or not isinstance(spec.get("data"), str):
        raise SweepError(f"{path}: a sweep spec needs 'checkpoints' (a non-empty list) and 'data' (a path)")
    grid = spec.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepError(f"{path}: 'grid' maps each setting to a non-empty list of values")
    unknown = set(grid) - set(CONVERSION_KEYS + RUN_KEYS + SETTING_KEYS)
    if unknown:
        raise SweepError(f"{path}: unknown grid keys {sorted(unknown)}; known: "
                         f"{sorted(CONVERSION_KEYS + RUN_KEYS + SETTING_KEYS)}")
    if not set(grid.get("calibrate", ["none"])) <= {"none", *METHODS}:
        raise SweepError(f"{path}: calibrate takes 'none', {', '.join(repr(m) for m in METHODS)}")
    _check_cells(path, spec, grid)
    base = path.resolve().parent
    checkpoints = []
    for i, entry in enumerate(spec["checkpoints"]):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("checkpoint", "calib")):
            raise SweepError(f"{path}: checkpoint {i} needs 'checkpoint' and 'calib' (paths; and 'arch' for a "
                             "state_dict)")
        entry = dict(entry)
        for key in ("checkpoint", "arch", "calib"):
            if entry.get(key) is not None:
                entry[key] = str(base / entry[key])
        entry.setdefault("name", Path(entry["checkpoint"]).stem)
        checkpoints.append(entry)
    return dict(spec, checkpoints=checkpoints, data=str(base / spec["data"]), grid=grid)


MAX_CELLS = 10_000


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_cells(path: Path, spec: dict, grid: dict) -> None:
    """Refuse, before any work, a grid too large to run, a value of the wrong type and settings
    that do not combine (so no cell fails after others have run)."""
    count = len(spec["checkpoints"]) * math.prod(len(values) for values in grid.values())
    if count > MAX_CELLS:
        raise SweepError(f"{path}: the grid has {count:,} cells, more than {MAX_CELLS:,}; sweep fewer values")
    for key in ("limit", "calib_limit"):
        for where in [spec, *[c for c in spec["checkpoints"] if isinstance(c, dict)]]:
            if key in where and not _positive_int(where[key]):
                raise SweepError(f"{path}: '{key}' must be a positive integer, not {where[key]!r}")
    for value in grid.get("percentile", []):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
            raise SweepError(f"{path}: percentile values lie in (0, 100], not {value!r}")
    for key in ("steps",):
        if not all(_positive_int(v) for v in grid.get(key, [])):
            raise SweepError(f"{path}: '{key}' values must be positive integers, not {grid[key]!r}")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in grid.get("seed", [])):
        raise SweepError(f"{path}: 'seed' values must be integers in [0, 2**63), not {grid['seed']!r}")
    for cell in cells(grid):
        try:
            SimulationConfig().updated(**{k: cell[k] for k in SETTING_KEYS if k in cell})
        except (ValueError, TypeError) as err:
            raise SweepError(f"{path}: the cell {_describe(cell)}: {err}") from None


def cells(grid: dict) -> list[dict]:
    """Every combination of one value per grid key, defaults filled in."""
    keys = sorted(grid)
    return [{**CELL_DEFAULTS, **dict(zip(keys, values))} for values in itertools.product(*(grid[k] for k in keys))]


def run_sweep(spec: dict, build: dict, batch: int = DEFAULTS.batch, threads: int | None = None, client=None,
              chunk: int = DEFAULTS.cluster_chunk, log: Log = print) -> dict:
    """All cells of a read spec, simulated in this process or on the Dask cluster of ``client``;
    ``build``: ``pipeline.build_options``."""
    x, y = load_data(spec["data"], spec.get("limit"))
    grid_cells = cells(spec["grid"])
    results = []
    for entry in spec["checkpoints"]:
        net = load_network(entry["checkpoint"], entry.get("arch"))
        x_calib = load_data(entry["calib"], entry.get("calib_limit", DEFAULTS.calib_images), split="train")[0]
        accuracy = ann_accuracy(fold_batchnorm(net, keep_unfoldable=True), x, y)
        conversions: dict[float, ConvertedModel] = {}
        calibrated: dict[tuple, ConvertedModel] = {}
        for cell in grid_cells:
            settings = {k: cell[k] for k in SETTING_KEYS if k in cell}
            config = default_config(net).updated(**settings)
            percentile = cell["percentile"]
            if percentile not in conversions:
                log(f"{entry['name']}: converting (percentile {percentile})")
                conversions[percentile] = convert(net, x_calib, percentile, config)
            model = dataclasses.replace(conversions[percentile], config=config)
            if cell["calibrate"] != "none":
                key = (percentile, config, cell["steps"], cell["calibrate"])
                if key not in calibrated:
                    log(f"{entry['name']}: calibrating {cell['calibrate']} for T={cell['steps']}")
                    calibrated[key] = calibrate(model, x_calib.spread(CALIBRATION_IMAGES), cell["steps"],
                                                cell["calibrate"])
                model = calibrated[key]
            log(f"{entry['name']}: {_describe(cell)}")
            snn = model.build(**build)
            result = simulate_model(model, snn, spec["data"], x, cell["steps"], build, cell["seed"], batch,
                                    engine_options={"threads": threads}, client=client, chunk=chunk)
            results.append({"checkpoint": entry["name"], "cell": cell,
                            "report": run_report(snn, result, y, accuracy)})
    return {"spec": spec, "cells": results}


def _describe(cell: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(cell.items()))


def summary_table(sweep: dict) -> str:
    """One markdown row per cell: the settings that vary, accuracy, ANN accuracy, SynOps, time."""
    varying = [k for k in sorted(sweep["spec"]["grid"]) if len(sweep["spec"]["grid"][k]) > 1]
    head = ["checkpoint", *varying, "accuracy", "ANN", "SynOps/sample", "samples/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sweep["cells"]:
        r = row["report"]
        rate = f"{r['samples_per_second']:.0f}" if r.get("samples_per_second") else "-"
        lines.append("| " + " | ".join([row["checkpoint"], *(str(row["cell"][k]) for k in varying),
                                        f"{r['accuracy']:.4f}", f"{r['ann_accuracy']:.4f}",
                                        f"{r['synops_per_sample']:.4g}", rate]) + " |")
    return "\n".join(lines)
