"""The status bar's text: what a trader checks first, most important on the left.

Mode, trading state and broker link come first so that a narrow terminal (80 columns,
where the bar wraps to two lines) still shows them. Alarming states are coloured and
bold, and read as words too (a 16-colour or monochrome terminal loses nothing).
"""

from __future__ import annotations

from rich.text import Text

from core.control.deadman import DeadmanPhase
from core.control.read_model import EngineSnapshot

SEP = " │ "


def status_line(snap: EngineSnapshot | None, engine_state: str) -> Text:
    text = Text(no_wrap=False, overflow="fold")
    if snap is None:
        text.append("PAPER" if engine_state else "", style="bold")
        text.append(f"{SEP}engine {engine_state}")
        return text
    parts: list[tuple[str, str]] = [
        (snap.mode, "bold reverse red" if snap.mode == "LIVE" else "bold green"),
        (snap.trading_state, "bold green" if snap.trading_state == "ACTIVE" else "bold reverse red"),
    ]
    if engine_state != "running":
        parts.append((f"engine {engine_state}", "bold yellow" if engine_state != "failed" else "bold red"))
    # A finished or stopped feed has no freshness to show (and snapshots stay stable).
    feed = snap.feed
    active = next((f for f in snap.feeds if f["active"]), None)
    if len(snap.feeds) > 1 and active is not None:
        feed = f"feed {active['name']}" + ("" if active["name"] == snap.feeds[0]["name"] else " (FAILOVER)")
    if active is not None and not active["healthy"] and engine_state == "running":
        parts.append((f"{feed} {active['reason']}"[:60], "bold reverse red"))
    elif snap.feed_age is not None and engine_state == "running":
        stale = snap.feed_age > 5
        parts.append((f"{feed} {'STALE' if stale else 'ok'} {snap.feed_age:.1f}s", "bold red" if stale else ""))
    else:
        parts.append((f"{feed} {snap.events_processed:,} ev", ""))
    parts.append((f"broker {snap.broker_kind} {'up' if snap.broker_connected else 'DOWN'}",
                  "" if snap.broker_connected else "bold reverse red"))
    if snap.breaks:
        parts.append((f"BREAK {','.join(snap.breaks)}: press b", "bold reverse red"))
    elif snap.hold and snap.broker_connected:
        parts.append(("RECONCILING", "bold reverse yellow"))
    if snap.feed_hold:  # the active feed is IB delayed or frozen data: strategy orders are refused
        parts.append((f"STRATEGIES HELD: {active['name'] if active else 'feed'} not live", "bold reverse yellow"))
    parts.append((snap.taken_at.astimezone(snap.market_tz).strftime("%Y-%m-%d %H:%M %Z"), ""))
    parts.append((f"equity {snap.equity:,.2f}", ""))
    parts.append((f"day {snap.day_pnl:+,.2f}", "red" if snap.day_pnl < 0 else "green"))
    parts.append(_deadman(snap))
    for n, (part, style) in enumerate(parts):
        if n:
            text.append(SEP, style="dim")
        text.append(part, style=style)
    return text


def _deadman(snap: EngineSnapshot) -> tuple[str, str]:
    dm = snap.deadman
    if dm is None or dm.phase in (DeadmanPhase.OFF, DeadmanPhase.DISARMED):
        return (f"dead-man {dm.phase if dm else 'off'}", "dim")
    if dm.phase is DeadmanPhase.MISSED:
        return ("dead-man MISSED: press d", "bold reverse red")
    left = int(dm.seconds_left or 0)
    text = f"dead-man {left // 60}:{left % 60:02d}"
    return (text, "bold reverse yellow" if dm.phase is DeadmanPhase.WARNING else "")
