"""The efficiency report's latency figures on hand-built curves."""

from __future__ import annotations

import numpy as np
import pytest

from eventsnn.energy import break_even_step, sram_word_pj
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
    """Horowitz 2014: 10 / 20 / 100 pJ per 64-bit read of 8 KiB / 32 KiB / 1 MiB SRAM; a 32-bit word half."""
    assert sram_word_pj(8 * 1024) == pytest.approx(5.0)
    assert sram_word_pj(32 * 1024) == pytest.approx(10.0)
    assert 45 < sram_word_pj(1024 * 1024) < 60
