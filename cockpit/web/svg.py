"""The equity curve as an inline SVG, drawn on the server: no chart library, no script."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 600, 160, 4
MAX_POINTS = 300


def equity_svg(curve: Sequence[tuple[datetime, Decimal]]) -> Markup:
    """A polyline scaled to the curve's own range; at most MAX_POINTS points (evenly picked)."""
    if len(curve) < 2:
        return Markup('<p class="muted">No equity curve yet.</p>')
    step = max(1, len(curve) // MAX_POINTS)
    points = list(curve[::step])
    if points[-1] is not curve[-1]:
        points.append(curve[-1])
    values = [float(v) for _, v in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    xs = [PAD + i * (WIDTH - 2 * PAD) / (len(points) - 1) for i in range(len(points))]
    ys = [HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD) for v in values]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    label = escape(f"Equity from {points[0][0]:%Y-%m-%d} to {points[-1][0]:%Y-%m-%d}: low {low:,.2f}, high {high:,.2f}")
    return Markup(
        f'<svg class="curve" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" aria-label="{label}">'
        f'<polyline fill="none" stroke="currentColor" stroke-width="2" vector-effect="non-scaling-stroke" '
        f'points="{line}"/></svg>'
        f'<p class="muted small">{escape(f"{low:,.2f}")} – {escape(f"{high:,.2f}")} · '
        f'{points[0][0]:%Y-%m-%d} → {points[-1][0]:%Y-%m-%d}</p>')
