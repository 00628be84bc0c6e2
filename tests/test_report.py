"""The efficiency report's latency figures on hand-built curves."""

from __future__ import annotations

import numpy as np
import pytest

from eventsnn.energy import PRESETS, break_even_step
from eventsnn.report import steps_to_within


@pytest.mark.parametrize("curve, ann, points, expected", [
    ([0.5, 0.9, 0.99, 0.99], 0.99, 0.5, 3),  # reaches the ANN at step 3 and stays
    ([0.99, 0.5, 0.99, 0.99], 0.99, 0.5, 3),  # a dip: counted from after the last step below
    ([0.99, 0.99], 0.99, 0.5, 1),  # within from the first step
    ([0.5, 0.99, 0.9], 0.99, 0.5, None),  # not within at the end: never
    ([0.5, 0.985, 0.98], 0.99, 1, 2),  # 0.98 is exactly 1 point below: within
    ([0.5, 0.985, 0.979], 0.99, 1, None),
    ([0.5, 0.97, 0.975], 0.99, 2, 2),
])
def test_steps_to_within(curve, ann, points, expected):
    assert steps_to_within(curve, ann, points) == expected


@pytest.mark.parametrize("curve, ann, expected", [
    ([1.0, 2.0, 3.0], 2.5, 2),  # the SNN's cumulative energy passes the ANN's after step 2
    ([1.0, 2.0, 3.0], 3.0, 3),  # at or below: still affordable at step 3
    ([4.0, 5.0], 3.0, None),  # even step 1 costs more
])
def test_break_even_step(curve, ann, expected):
    assert break_even_step(np.array(curve), ann) == expected


def test_sram_prices_follow_the_published_anchors():
    """Horowitz 2014: 10 / 20 / 100 pJ per 64-bit read of 8 KiB / 32 KiB / 1 MiB SRAM; a 32-bit word
    half, an 8-bit one an eighth; nothing without the memory terms."""
    memory, plain = PRESETS["fp32+memory"], PRESETS["fp32"]
    kib = 8 * 1024
    assert memory.sram_pj(8 * kib, 64) == pytest.approx(10.0)
    assert memory.sram_pj(32 * kib, 64) == pytest.approx(20.0)
    assert 90 < memory.sram_pj(1024 * kib, 64) < 120
    assert memory.sram_pj(8 * kib, 32) == pytest.approx(5.0) and memory.sram_pj(8 * kib, 8) == pytest.approx(1.25)
    assert plain.sram_pj(8 * kib, 32) == 0.0


def test_progress_lines_appear_without_a_terminal(monkeypatch):
    """Off a terminal (a batch job's log) progress is a plain line every LOG_EVERY seconds and at the
    end of a run that printed one; on a terminal one line is redrawn in place."""
    import io

    from eventsnn import progress

    log = io.StringIO()
    monkeypatch.setattr(progress, "LOG_EVERY", 0.0)
    show = progress.terminal_progress("simulating", log)
    for done in (1, 2, 3):
        show(done, 3)
    lines = log.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["simulating: 1/3", "simulating: 2/3", "simulating: 3/3"]
    quiet = io.StringIO()
    monkeypatch.setattr(progress, "LOG_EVERY", 3600.0)
    show = progress.terminal_progress("simulating", quiet)
    show(1, 2), show(2, 2)
    assert quiet.getvalue() == ""  # a short run says nothing


def test_progress_on_a_terminal_redraws_one_line():
    import io

    from eventsnn.progress import terminal_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    show = terminal_progress("x", screen)
    show(1, 2), show(2, 2)
    assert screen.getvalue().count("\r") == 2 and screen.getvalue().endswith("\n")
