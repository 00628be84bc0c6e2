"""Differential testing: the same exported NIR graph in eventsnn and in a second simulator."""

from __future__ import annotations

import warnings
from typing import Callable, Mapping

import numpy as np

from ..engine import simulate
from ..snn import SpikingNetwork
from .checks import assert_same_spikes, spike_trains

Simulator = Callable[[object, np.ndarray, int], Mapping[str, np.ndarray]]


def nir_semantics_gaps(snn: SpikingNetwork) -> list[str]:
    """The settings of ``snn`` that a NIR IF node does not express (they live only in the graph's
    metadata, so a simulator reading plain NIR runs something else)."""
    from ..loaders.nir_graph import NIR_MEANING

    cfg = snn.config
    gaps = [f"{key}={getattr(cfg, key)!r} (NIR's IF node: {value!r})" for key, value in NIR_MEANING.items()
            if getattr(cfg, key) != value]
    if cfg.input == "analog":
        gaps.append("input='analog': the input is a constant current every step, not spikes")
    return gaps


def compare_with_nir_simulator(snn: SpikingNetwork, x: np.ndarray, steps: int, run_other: Simulator,
                               name: str = "other", seed: int = 0) -> dict[str, np.ndarray]:
    """Export ``snn`` to NIR, run it in eventsnn and with ``run_other(graph, x, steps)``, and
    assert that every layer the other simulator reports spiked identically.

    ``run_other`` returns {NIR node name: (N, T, *shape) spikes} for the IF nodes it can observe
    (node names are the layer names, '/' replaced by '.'). On a difference the AssertionError
    names the first differing step, layer and neuron, and lists the settings NIR cannot express
    (``nir_semantics_gaps``), the usual reason. Returns eventsnn's spike trains by node name.
    """
    from ..loaders.nir_graph import to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reset warning: reported below as a semantics gap
        graph = to_nir(snn)
    ours = {key.replace("/", "."): train for key, train in
            spike_trains(simulate(snn, x, steps, seed=seed, record=True), snn).items()}
    theirs = dict(run_other(graph, np.asarray(x), steps))
    unknown = sorted(set(theirs) - set(ours))
    if unknown or not theirs:
        raise ValueError(f"{name} must return spike trains of the graph's IF nodes {sorted(ours)}, "
                         f"got {sorted(theirs) if theirs else 'none'}")
    try:
        assert_same_spikes({k: ours[k] for k in theirs}, theirs, labels=("eventsnn", name))
    except AssertionError as err:
        gaps = nir_semantics_gaps(snn)
        hint = f"; settings plain NIR does not express: {'; '.join(gaps)}" if gaps else ""
        raise AssertionError(f"{err}{hint}") from None
    return ours
