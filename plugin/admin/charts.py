"""Bar charts drawn on the server as SVG: no script, nothing a strict CSP blocks.

The workspace page's licence chart and the dashboard's charts are one
template macro (``billing/admin/chart_macros.html``) over :class:`Chart`,
which holds the geometry computed here.  A bar is *final* (invoiced, or a
month that is over), *partial* (the current month so far: lighter) or
*provisional* (a month not invoiced: lighter still, its figure computed
live); a month without a figure has no bar and says why under its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

FINAL, PARTIAL, PROVISIONAL, EMPTY = "final", "partial", "provisional", "empty"
#: Fill of each kind of bar (SVG presentation attributes, not CSS).
FILLS = {FINAL: "#4a7ab5", PARTIAL: "#a9c1de", PROVISIONAL: "#c9d3df", EMPTY: "none"}
BAR_WIDTH = 36
PLOT_HEIGHT = 120


@dataclass(frozen=True)
class Point:
    """One month of a chart: ``value`` sets the height, ``text`` is printed above."""

    label: str
    value: int | Decimal | None
    text: str
    title: str
    kind: str = FINAL
    note: str = ""


@dataclass(frozen=True)
class Bar:
    point: Point
    x: int
    height: int

    @property
    def fill(self) -> str:
        return FILLS[self.point.kind]

    @property
    def top(self) -> int:
        return PLOT_HEIGHT - self.height + 12


@dataclass(frozen=True)
class Chart:
    element_id: str
    label: str
    bars: tuple[Bar, ...]
    bar_width: int = BAR_WIDTH
    plot_height: int = PLOT_HEIGHT

    @property
    def width(self) -> int:
        return len(self.bars) * self.bar_width + 10

    @property
    def height(self) -> int:
        return self.plot_height + 52


def bar_chart(element_id: str, label: str, points: Sequence[Point]) -> Chart:
    """Heights scaled to the largest value (at least 1, so an empty chart draws no bar)."""
    top = max([point.value for point in points if point.value is not None] + [1])
    bars = tuple(
        Bar(
            point,
            index * BAR_WIDTH + 5,
            int(PLOT_HEIGHT * (point.value or 0) / top) if point.value is not None else 0,
        )
        for index, point in enumerate(points)
    )
    return Chart(element_id, label, bars)
