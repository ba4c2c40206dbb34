"""Line charts as inline SVG for the backtest report: several series on one time axis, with
value and date ticks and a legend. Drawn here, no chart library, no script, no network."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 78, 12, 12, 28
MAX_POINTS = 600
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    points: Sequence[tuple[datetime, float]]  # oldest first


def _thin(points: Sequence[tuple[datetime, float]]) -> list[tuple[datetime, float]]:
    """At most MAX_POINTS points, evenly picked, the last always kept (the curve's end is its result)."""
    step = max(1, math.ceil(len(points) / MAX_POINTS))
    picked = list(points[::step])
    if picked[-1] is not points[-1]:
        picked.append(points[-1])
    return picked


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values spanning [low, high]: steps of 1, 2 or 5 times a power of ten."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def line_chart(series: Sequence[Series], label: Callable[[float], str], title: str,
               baseline: float | None = None, legend_below: bool = False) -> Markup:
    """The series on shared axes (values labelled with ``label``); ``baseline`` draws a dashed
    line; the legend sits at the top left, or the bottom left (``legend_below``: a drawdown's
    lines start at the top)."""
    drawn = [Series(s.name, _thin(s.points)) for s in series if len(s.points) >= 2]
    if not drawn:
        return Markup('<p class="muted">Not enough sessions for a chart.</p>')
    t0 = min(p[0][0] for p in (s.points for s in drawn)).timestamp()
    t1 = max(p[-1][0] for p in (s.points for s in drawn)).timestamp()
    values = [v for s in drawn for _, v in s.points] + ([baseline] if baseline is not None else [])
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.04
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ts: datetime) -> float:
        return LEFT + (ts.timestamp() - t0) / ((t1 - t0) or 1) * plot_w

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * plot_h

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{escape(title)}" '
             'font-family="sans-serif" font-size="11">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for v in ticks(low, high):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(label(v))}</text>')
    first_year, last_year = datetime.fromtimestamp(t0).year, datetime.fromtimestamp(t1).year
    years = list(range(first_year + 1, last_year + 1))
    every = max(1, math.ceil(len(years) / 10))
    tz = drawn[0].points[0][0].tzinfo
    for year in years[::every]:
        at = x(datetime(year, 1, 1, tzinfo=tz))
        parts.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>'
                     f'<text x="{at:.1f}" y="{HEIGHT - 10}" text-anchor="middle">{year}</text>')
    if not years:  # a run within one year: its first and last day
        for ts, anchor in ((drawn[0].points[0][0], "start"), (drawn[0].points[-1][0], "end")):
            parts.append(f'<text x="{x(ts):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">{ts:%Y-%m-%d}</text>')
    if baseline is not None:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(baseline):.1f}" y2="{y(baseline):.1f}" '
                     'stroke="#888" stroke-dasharray="4 3"/>')
    for i, s in enumerate(drawn):
        line = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in s.points)
        parts.append(f'<polyline fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.5" '
                     f'points="{line}"><title>{escape(s.name)}</title></polyline>')
    top = HEIGHT - BOTTOM - 12 - 15 * len(drawn) if legend_below else TOP + 4
    longest = max(len(s.name) for s in drawn)
    parts.append(f'<rect x="{LEFT + 4}" y="{top}" width="{26 + 7 * longest}" height="{8 + 15 * len(drawn)}" '
                 'fill="white" fill-opacity="0.85"/>')
    for i, s in enumerate(drawn):
        parts.append(f'<rect x="{LEFT + 8}" y="{top + 4 + i * 15}" width="10" height="10" '
                     f'fill="{COLOURS[i % len(COLOURS)]}"/>'
                     f'<text x="{LEFT + 22}" y="{top + 13 + i * 15}">{escape(s.name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
