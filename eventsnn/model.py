"""A converted model: the folded ANN, its per-layer scales and simulation settings; one ``.npz`` file.

The file holds the parameters as named arrays and a JSON description in the array ``__model__``
(the architecture spec plus each affine layer's ``scale``, the percentile and the settings). It
loads with ``np.load(path, allow_pickle=False)``; nothing in it is executed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .atomic import atomic_output
from .connectivity import DEFAULT_MAX_BYTES
from .convert import (DEFAULT_PERCENTILE, bias_carrier, coarsened_scales, compute_scales, fold_batchnorm, normalize,
                      population_members, spiking_roles, unit_scales, with_params)
from .ir import ACTIVATIONS, QCFS, Network
from .rewrite import batchnorm_as_affine, resolve_concats, split_signed
from .snn import Chooser, SimulationConfig, SpikingNetwork, build_spiking, per_neuron
from .spec import SpecError, network_from_spec, network_to_spec

FORMAT = "eventsnn-model"
SHIFT_PREFIX = "__bias_shift__/"  # calibrated bias shifts, one array per population
POTENTIAL_PREFIX = "__potential_shift__/"  # calibrated offsets of V(0), one array per population
VERSION = 1


# what reading a damaged .npz can raise (zip, deflate, and numpy's header parser, which tokenizes Python)
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                   SyntaxError, tokenize.TokenError, OverflowError, MemoryError)


def npz_error(err: BaseException) -> str:
    """What went wrong reading an .npz, in eventsnn's words (numpy's suggests allow_pickle=True,
    which would run code from the file)."""
    if "allow_pickle" in str(err):
        return "it holds Python objects, which eventsnn never unpickles (save plain numeric arrays)"
    return f"{type(err).__name__}: {err}"


class ModelFileError(ValueError):
    """A model file is missing, malformed or truncated."""


@dataclass(frozen=True, eq=False)
class ConvertedModel:
    ann: Network  # batch-norm folded, original scale
    scales: tuple  # lambda per layer: a float, an array (one per channel), or None for layers without weights
    percentile: float | None  # None: not normalized (all scales 1)
    config: SimulationConfig
    bias_shift: dict[str, np.ndarray] = field(default_factory=dict)  # per population, per channel (normalized units)
    calibration: dict | None = None  # how the shifts were calibrated (method, steps, images), see ``calibrate``
    early_exit: dict | None = None  # the early-exit rule chosen for it (``early_exit.choose_exit``)
    potential_shift: dict[str, np.ndarray] = field(default_factory=dict)  # V(0) offsets, per population, per channel
    # per population, k: its spikes are each worth k / levels of its scale, levels / k levels per scale (``layer_levels``)
    coarsening: dict[str, int] = field(default_factory=dict)
    levels_choice: dict | None = None  # what ``layer_levels.choose_levels`` measured: its T, levels, grid

    def __post_init__(self):
        spiking_roles(self.ann)  # raises for a network that cannot become an SNN
        object.__setattr__(self, "scales", tuple(self.scales))
        channels_of = {layer.name: shape[0] for layer, shape in zip(self.ann.layers, self.ann.shapes)}
        for what, shifts in (("bias shift", self.bias_shift), ("potential shift", self.potential_shift)):
            for name, shift in shifts.items():
                channels = channels_of.get(name)
                if channels is None or np.shape(shift) != (channels,) or not np.all(np.isfinite(shift)):
                    raise ValueError(f"{what} '{name}' must be {channels or 'a layer of the network with'} finite "
                                     "values, one per channel")
        populations = population_members(self.ann)
        for name, k in self.coarsening.items():
            if name not in populations:
                raise ValueError(f"coarsening '{name}': not a spiking population of the network "
                                 f"(one of {', '.join(populations)})")
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"coarsening '{name}' must be a positive integer, not {k!r}")

    def normalized(self, levels: int = 1) -> Network:
        """The normalized network, with any calibrated bias shifts added; ``levels`` L: in units of
        spikes worth 1/L of each layer's scale (see ``convert.normalize``), k/L for a population
        coarsened by k."""
        net = normalize(self.ann, coarsened_scales(self.ann, self.scales, self.coarsening), levels)
        if not self.bias_shift:
            return net
        layers = list(net.layers)
        for i, layer in enumerate(net.layers):
            if layer.name in self.bias_shift:
                j = bias_carrier(net, i)
                shift = levels * self.bias_shift[layer.name]
                layers[j] = with_params(layers[j], layers[j].weight, layers[j].bias + shift)
        return net.replace_layers(layers)

    def build(self, max_bytes: int = DEFAULT_MAX_BYTES, path: str = "auto", choose: Chooser | None = None,
              **overrides) -> SpikingNetwork:
        """The spiking network, with any simulation setting overridden (e.g. ``reset="zero"``);
        ``path``, ``max_bytes`` and ``choose`` pick the conv connectivity (see ``snn.build``;
        ``engine.fastest_projection`` times the candidates here)."""
        config = self.config.updated(**overrides)
        snn = build_spiking(self.normalized(config.spike_levels), config, max_bytes, path, choose)
        if not self.potential_shift:
            return snn
        stages = tuple(dataclasses.replace(s, potential=per_neuron(self.potential_shift[s.name], s.size))
                       if s.name in self.potential_shift else s for s in snn.stages)
        return dataclasses.replace(snn, stages=stages)


def convert(net: Network, x_calib: np.ndarray | None, percentile: float | None = DEFAULT_PERCENTILE,
            config: SimulationConfig | None = None, batch_size: int = 128,
            progress: Callable[[int, int], None] | None = None, scale_per: str = "layer",
            clip_scale: str = "data") -> ConvertedModel:
    """Fold batch-norm (one that cannot be folded becomes a depthwise 1x1 conv of its own), resolve
    channel concatenations, split layers without an activation into their positive and negative
    parts, and compute the data-based scales
    (``percentile=None``: no normalization; ``scale_per="channel"``: one scale per channel of each
    hidden population)."""
    folded = split_signed(batchnorm_as_affine(resolve_concats(fold_batchnorm(net, keep_unfoldable=True))))
    if percentile is None:
        scales = unit_scales(folded)
    else:
        if x_calib is None:
            raise ValueError("data-based normalization needs calibration data")
        scales = compute_scales(folded, x_calib, percentile, batch_size, progress, scale_per, clip_scale)
    return ConvertedModel(folded, tuple(scales), percentile, config or default_config(folded))


def default_config(net: Network) -> SimulationConfig:
    """The default settings, except that a net whose activations are all QCFS with L levels gets
    levels = max_spikes = L: one graded step then reproduces its quantized ANN exactly."""
    levels = {layer.levels for layer in net.layers if isinstance(layer, QCFS)}
    plain = any(isinstance(layer, ACTIVATIONS) and not isinstance(layer, QCFS) for layer in net.layers)
    if len(levels) == 1 and not plain:
        (qcfs_levels,) = levels
        return SimulationConfig(levels=qcfs_levels, max_spikes=qcfs_levels)
    return SimulationConfig()


def save(model: ConvertedModel, path: str | os.PathLike) -> None:
    spec, params = network_to_spec(model.ann)
    for entry, scale in zip(spec["layers"], model.scales):
        if scale is not None:
            entry["scale"] = np.asarray(scale).tolist()  # a number, or a list (one per channel)
    description = {"format": FORMAT, "version": VERSION, "percentile": model.percentile,
                   "simulation": dataclasses.asdict(model.config), "calibration": model.calibration,
                   "early_exit": model.early_exit, "coarsening": model.coarsening,
                   "levels_choice": model.levels_choice, **spec}
    if "__model__" in params:
        raise ValueError("a layer may not be called '__model__'")
    params.update({SHIFT_PREFIX + name: shift for name, shift in model.bias_shift.items()})
    params.update({POTENTIAL_PREFIX + name: shift for name, shift in model.potential_shift.items()})
    with atomic_output(path) as f:  # exactly this path (np.savez would append .npz to a name), never half written
        np.savez_compressed(f, __model__=np.array(json.dumps(description)), **params)


def load(path: str | os.PathLike) -> ConvertedModel:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "__model__" not in f.files:
                raise ModelFileError(f"{path}: not an eventsnn model file (no '__model__' description)")
            description = json.loads(str(f["__model__"]))
            params = {k: f[k] for k in f.files
                      if k != "__model__" and not k.startswith((SHIFT_PREFIX, POTENTIAL_PREFIX))}
            shifts = {k[len(SHIFT_PREFIX):]: f[k] for k in f.files if k.startswith(SHIFT_PREFIX)}
            potentials = {k[len(POTENTIAL_PREFIX):]: f[k] for k in f.files if k.startswith(POTENTIAL_PREFIX)}
    except ModelFileError:
        raise
    except NPZ_READ_ERRORS as err:
        raise ModelFileError(f"{path}: cannot read model file ({npz_error(err)})") from err
    if description.get("format") != FORMAT or description.get("version") != VERSION:
        raise ModelFileError(f"{path}: unsupported format {description.get('format')!r} version {description.get('version')!r}")
    try:
        net = network_from_spec(description, params)
        scales = [_scale(entry.get("scale")) for entry in description["layers"]]
        # files written before graded spikes existed simulate binary spikes
        config = SimulationConfig(**{"spikes": "binary", "levels": 1, **description.get("simulation", {})})
        return ConvertedModel(net, tuple(scales), description.get("percentile"), config, shifts,
                              description.get("calibration"), _early_exit(description.get("early_exit")), potentials,
                              _coarsening(description.get("coarsening")), description.get("levels_choice"))
    except (SpecError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: {err}") from err


def _scale(value):
    """A stored scale: None, a number, or a list of numbers (one per channel)."""
    if isinstance(value, list):
        return np.asarray(value, np.float64)
    return value


def _coarsening(value) -> dict:
    """A stored coarsening: population names and positive integers (``ConvertedModel`` checks them)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"coarsening must map population names to integers, not {value!r}")
    return dict(value)


def _early_exit(rule) -> dict | None:
    """A stored early-exit rule, checked (the engine takes its two numbers as they are)."""
    if rule is None:
        return None
    if not isinstance(rule, dict) or not all(isinstance(rule.get(k), int) and not isinstance(rule.get(k), bool)
                                             and rule[k] >= 0 for k in ("stable_steps", "exit_margin")):
        raise ValueError(f"early_exit must give non-negative integers stable_steps and exit_margin, not {rule!r}")
    return rule
