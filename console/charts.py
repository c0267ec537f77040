"""Bar charts as geometry for inline SVG, drawn on the server (no chart library, no script).

``bar_chart(categories, series)`` returns where each bar, label and grid line goes; the
template ``console/chart.html`` turns that into ``<svg>`` with presentation attributes and the
classes of ``static/charts.css`` (the CSP allows no ``style=``). Several series are stacked.
A missing value (None: nothing to measure that day) draws no bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 26  # room for the value labels and the category labels
MAX_X_LABELS = 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    series: int  # the index of its series (its colour class)
    title: str  # the tooltip: category, series, value


@dataclass(frozen=True)
class Label:
    at: float  # x for category labels, y for value labels
    text: str


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    base: int = HEIGHT - BOTTOM  # the y of the zero line
    bars: list[Bar] = field(default_factory=list)
    x_labels: list[Label] = field(default_factory=list)
    y_labels: list[Label] = field(default_factory=list)
    legend: list[str] = field(default_factory=list)


def nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ value (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover (the loop always returns)


def number(value: float) -> str:
    """12, 12.5, 0.25: no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def bar_chart(
    categories: list[str],
    series: list[tuple[str, list[float | None]]],
    *,
    top: float | None = None,
    unit: str = "",
) -> Chart:
    """Bars per category (stacked when several series), scaled to ``top`` (default: a round
    number above the largest stack)."""
    chart = Chart(legend=[name for name, _ in series])
    if not categories:
        return chart
    stacks = [sum(values[i] or 0 for _, values in series) for i in range(len(categories))]
    top = top or nice_top(max(stacks, default=0))
    room = chart.base - TOP
    step = (chart.right - chart.left) / len(categories)
    width = max(step * 0.8, 1.0)
    every = max(1, math.ceil(len(categories) / MAX_X_LABELS))
    for i, category in enumerate(categories):
        x = chart.left + i * step + (step - width) / 2
        y = float(chart.base)
        for index, (name, values) in enumerate(series):
            value = values[i]
            if value is None or value <= 0:
                continue
            h = min(value, top) / top * room
            y -= h
            title = f"{category}: {number(value)}{unit}"
            if len(series) > 1:
                title = f"{category}, {name}: {number(value)}{unit}"
            chart.bars.append(Bar(round(x, 1), round(y, 1), round(width, 1), round(h, 1),
                                  index, title))  # fmt: skip
        if i % every == 0:
            chart.x_labels.append(Label(round(x + width / 2, 1), category))
    for fraction in (0, 0.5, 1):
        y = chart.base - fraction * room
        chart.y_labels.append(Label(round(y, 1), number(top * fraction) + unit))
    return chart
