"""Per-sample early exit chosen on calibration data for a stated accuracy loss (``--exit auto``).

A sample may stop once its decision has not changed for k steps ("stable k"), or, with a spiking
readout, once the leading class has m more output spikes than the runner-up ("margin m"); its
later decisions repeat the last one (``engine.simulate``). Which k or m is safe depends on the net
and the settings, so instead of guessing, ``choose_exit`` runs the calibration images for the full
T steps once (and once per margin candidate), and picks the rule with the fewest mean steps whose
decisions differ from the full run's final ones on at most half of ``max_loss`` of the images.
That share bounds the accuracy lost on those images (a changed decision can at most turn a right
answer wrong), and it needs no labels; half, because the share seen on a thousand images is
itself uncertain (on the MNIST demo, binary spikes at T = 100, the rule chosen for the whole
budget lost 0.3 points on the test set, the one chosen for half of it 0.1).
"""

from __future__ import annotations

import numpy as np

from .engine import simulate
from .model import ConvertedModel
from .progress import Progress

STABLE_CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64)
MARGIN_CANDIDATES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


def stable_exit_steps(decisions: np.ndarray, k: int) -> np.ndarray:
    """Per sample, the step (1-based) at which early exit with ``stable_steps=k`` stops (the
    first step whose decision, not -1, equals the k-1 before it), T if never."""
    n, steps = decisions.shape
    stop = np.full(n, steps)
    same = decisions >= 0
    for back in range(1, k):
        same[:, back:] &= decisions[:, back:] == decisions[:, :-back]
        same[:, :back] = False
    hit = same.any(axis=1)
    stop[hit] = np.argmax(same[hit], axis=1) + 1
    return stop


def choose_exit(model: ConvertedModel, x: np.ndarray, steps: int, max_loss: float = 0.002, seed: int = 0,
                batch_size: int = 256, progress: Progress | None = None) -> dict:
    """The early-exit rule for runs of ``steps`` steps (see the module docstring): a dict with
    ``stable_steps`` and ``exit_margin`` (0 = off; at most one is set, both 0 when no rule keeps
    the loss), and what was measured: ``changed`` (share of decisions that differ from the full
    run's), ``mean_stop_step``, the images, steps and target."""
    if not 0 <= max_loss < 1:
        raise ValueError(f"the accepted loss is a share of the images in [0, 1), not {max_loss}")
    if len(x) == 0:
        raise ValueError("choosing an early-exit rule needs calibration images")
    snn = model.build()
    full = simulate(snn, x, steps, seed=seed, batch_size=batch_size, progress=progress)
    final = full.decisions[:, -1]
    rows = np.arange(len(x))
    options = [(0, 0, 0.0, float(steps))]  # (stable, margin, changed, mean stop step): no early exit
    for k in (k for k in STABLE_CANDIDATES if k < steps):
        stop = stable_exit_steps(full.decisions, k)
        options.append((k, 0, float(np.mean(full.decisions[rows, stop - 1] != final)), float(stop.mean())))
    if snn.config.output != "membrane":  # margins count output spikes
        for m in MARGIN_CANDIDATES:
            run = simulate(snn, x, steps, seed=seed, batch_size=batch_size, exit_margin=m)
            stop = np.where(run.exit_step > 0, run.exit_step, steps)
            options.append((0, m, float(np.mean(run.decisions[:, -1] != final)), float(stop.mean())))
    stable, margin, changed, mean_stop = min((o for o in options if o[2] <= max_loss / 2), key=lambda o: (o[3], o[2]))
    return {"stable_steps": stable, "exit_margin": margin, "changed": changed, "mean_stop_step": mean_stop,
            "max_loss": max_loss, "images": len(x), "steps": steps}
