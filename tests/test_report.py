"""The efficiency report's latency figures on hand-built curves."""

from __future__ import annotations

import pytest

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
