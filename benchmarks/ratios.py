"""Ratios to the hand-written floor, paired round by round.

Every round of a scenario runs each system once, back to back (`runner.py`), so a system's
time divided by the floor's time in the same round cancels what the machine was doing then;
the median of those per-round ratios moves much less between passes than the ratio of the
two medians (which pairs a fast moment of one with a slow moment of the other), and their
quartiles say how sure a verdict is. Pure; called by `report.py` and `chart.py`.
"""

from __future__ import annotations

import statistics
from typing import Any

__all__ = ["FLOOR", "Ratio", "ratio"]

FLOOR = "handwritten"

Ratio = tuple[float, float, float]
"""(median, first quartile, third quartile) of the per-round ratios."""


def ratio(figures: dict[str, Any], floor: dict[str, Any] | None) -> Ratio | None:
    """A system's per-round ratios to the floor in one scenario; None where either has no
    figures. Runs recorded without their rounds (older JSON, unequal counts) give the ratio
    of the medians, with no spread."""
    if floor is None or "na" in floor or "na" in figures or not floor.get("median"):
        return None
    mine, theirs = figures.get("times") or [], floor.get("times") or []
    if not mine or len(mine) != len(theirs) or not all(theirs):
        only = figures["median"] / floor["median"]
        return only, only, only
    per_round = sorted(a / b for a, b in zip(mine, theirs, strict=True))
    if len(per_round) < 4:
        middle = statistics.median(per_round)
        return middle, per_round[0], per_round[-1]
    first, _, third = statistics.quantiles(per_round, n=4)
    return statistics.median(per_round), first, third
