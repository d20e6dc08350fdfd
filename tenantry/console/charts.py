"""Charts drawn by the server: the geometry is computed here (pure functions, tested with
hypothesis), the markup is a template (`_funnel_chart.html`, autoescaped). Series are told
apart by their place, their labels and a pattern fill each, never by colour alone."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Pattern fills defined in the chart's own <defs>, one per series, in order.
PATTERNS = ("solid", "hatch", "dots", "cross")

WIDTH = 720
LEFT = 48  # room for the y axis' numbers
RIGHT = 8
PANEL_HEIGHT = 150  # one small multiple: caption, plot, x labels
CAPTION = 22  # the panel's name and total, above its plot
VALUE_ROOM = 14  # above the tallest bar, for its value
X_LABELS = 20  # below the plot, for the days
GAP = 0.2  # share of a slot left between bars


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str  # the category (a day), in the title and under the bar

    @property
    def centre(self) -> float:
        return round(self.x + self.width / 2, 2)


@dataclass(frozen=True, slots=True)
class Panel:
    name: str
    total: int
    pattern: str
    top: float  # the caption's line
    plot_top: float
    plot_bottom: float  # the baseline
    bars: list[Bar]
    labelled: list[Bar]  # the bars whose category is written under them


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    right: int  # the plot's right edge
    peak: int  # the largest value: the top of every panel's scale
    empty: bool  # nothing to draw: the chart says so
    panels: list[Panel]


def small_multiples(
    series: Sequence[tuple[str, Sequence[int]]], categories: Sequence[str]
) -> Chart:
    """One bar chart per series, stacked, sharing one scale (so panels compare by height) and
    one x axis of `categories`. Bars fit in their panel's plot and are as tall as their value
    in proportion to the largest; when every value is 0 the chart is empty (no division)."""
    count = max(1, len(categories))
    peak = max((v for _, values in series for v in values), default=0)
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / count
    bar_width = round(slot * (1 - GAP), 2)
    every = math.ceil(count / 16)  # at most 16 day labels under a panel
    panels = []
    for index, (name, values) in enumerate(series):
        top = index * PANEL_HEIGHT
        plot_top = top + CAPTION + VALUE_ROOM
        plot_bottom = top + PANEL_HEIGHT - X_LABELS
        room = plot_bottom - plot_top
        bars = []
        for i, label in enumerate(categories):
            value = max(0, int(values[i])) if i < len(values) else 0
            height = round(room * value / peak, 2) if peak else 0.0
            x = round(LEFT + i * slot + (slot - bar_width) / 2, 2)
            bars.append(Bar(x, round(plot_bottom - height, 2), bar_width, height, value, label))
        panels.append(
            Panel(
                name=name,
                total=sum(b.value for b in bars),
                pattern=PATTERNS[index % len(PATTERNS)],
                top=top,
                plot_top=plot_top,
                plot_bottom=plot_bottom,
                bars=bars,
                labelled=[b for i, b in enumerate(bars) if i % every == 0],
            )
        )
    return Chart(
        width=WIDTH,
        height=max(1, len(series)) * PANEL_HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        peak=peak,
        empty=peak == 0,
        panels=panels,
    )


def percent(rate: float) -> str:
    """A share (0..1) as a percentage for people: one decimal, no trailing '.0'."""
    shown = f"{rate * 100:.1f}"
    return (shown[:-2] if shown.endswith(".0") else shown) + "%"
