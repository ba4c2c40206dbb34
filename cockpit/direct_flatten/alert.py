"""The direct flatten's alert: what was flattened, or what failed, through the configured sinks.

When this runs from systemd's ``OnFailure=`` the engine is dead, and its alert router with it.
So this process builds the sinks from the config itself (``cockpit.alerts.factory``: the log,
Discord, email), keeps to each sink's ``[alerts.routes]`` entry, and gives each sink at most
``MAX_TRIES`` attempts of ``alerts.send_timeout_seconds``. It runs after the flatten, never
before or around it: a failing or hung sink costs a few seconds at the end, never an order.
The alert and each sink's outcome go into the store (``cockpit alerts`` lists them) when the
state dir is free; that too is optional and never raises.

systemd hands an ``OnFailure=`` unit the failed unit's name and result (``$MONITOR_UNIT``,
``$MONITOR_SERVICE_RESULT``, ...; systemd.exec(5)); the alert says them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from cockpit.direct_flatten.outcome import DirectFlattenResult
from cockpit.direct_flatten.plan import qty_text
from core.alerts.lane import Route, backoff
from core.alerts.model import Alert, Severity
from core.alerts.sink import Sink, SinkError
from core.alerts.timing import ClockTimeout, sleep, within
from core.common.clock import Clock, LiveClock
from core.config import ConfigError, Settings

log = logging.getLogger("cockpit.direct_flatten")

KIND = "flatten.direct"
MAX_TRIES = 3  # per sink (and at most alerts.max_tries)
MAX_WAIT = 10.0  # seconds between two tries at most, whatever the backoff or a 429 asks
TEXT_LINES = 40  # per-symbol lines in the alert beyond this are counted, not listed


@dataclass(frozen=True, slots=True)
class Trigger:
    """The unit whose failure started this run, as systemd tells an ``OnFailure=`` unit."""

    unit: str
    result: str = ""
    exit_code: str = ""
    exit_status: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Trigger | None:
        unit = env.get("MONITOR_UNIT", "").strip()
        if not unit:
            return None
        return cls(unit[:200], env.get("MONITOR_SERVICE_RESULT", "")[:64], env.get("MONITOR_EXIT_CODE", "")[:64],
                   env.get("MONITOR_EXIT_STATUS", "")[:64])

    def line(self) -> str:
        """``cockpit.service failed (watchdog, killed ABRT)``."""
        how = ", ".join(p for p in (self.result, " ".join(x for x in (self.exit_code, self.exit_status) if x)) if p)
        return f"{self.unit} failed" + (f" ({how})" if how else "")


@dataclass(frozen=True, slots=True)
class Delivery:
    sink: str
    delivered: bool
    tries: int
    reason: str | None = None


def build_alert(result: DirectFlattenResult, settings: Settings, *, at: datetime, actor: str,
                trigger: Trigger | None) -> Alert:
    """One alert that says what the direct flatten did: flat, NOT flat (what is left), or failed."""
    left = dict(result.final_positions)
    if result.error:
        title = "Emergency flatten FAILED"
    elif result.flat:
        title = ("Emergency flatten: nothing was open" if result.plan is not None and result.plan.empty
                 else "Emergency flatten: everything cancelled and flat")
    else:
        title = "Emergency flatten NOT DONE"
    lines: list[str] = []
    if trigger is not None:
        lines.append(trigger.line() + ": the engine is down")
    if result.error:
        lines.append(result.error)
    cancels = result.plan.cancels if result.plan is not None else ()
    if cancels and not result.still_open and not result.error:  # (an error may come before the cancel)
        lines.append(f"{len(cancels)} open order(s) cancelled")
    outcomes = list(result.outcomes.values())
    lines += [o.line() for o in outcomes[:TEXT_LINES]]
    if len(outcomes) > TEXT_LINES:
        lines.append(f"... and {len(outcomes) - TEXT_LINES} more symbol(s)")
    if result.still_open:
        lines.append(f"{len(result.still_open)} order(s) still open at IB: "
                     + ", ".join(c.name for c in result.still_open[:TEXT_LINES]))
    if not result.error:
        lines.append("final positions: " + (", ".join(f"{s} {qty_text(q)}" for s, q in left.items()) or "none"))
    cfg = settings.ibkr
    fields: list[tuple[str, str]] = [
        ("gateway", result.plan.where if result.plan is not None else f"IB Gateway {cfg.host}:{cfg.port}"),
        ("by", actor),
        ("host", socket.gethostname()[:100]),
        ("exit code", str(result.exit_code)),
    ]
    if trigger is not None:
        fields.insert(0, ("trigger", trigger.line()))
    if result.audit:
        fields.append(("audit", result.audit))
    alert_id = f"{KIND}-{secrets.token_hex(6)}"
    return Alert(kind=KIND, severity=Severity.ERROR if result.flat else Severity.CRITICAL, title=title,
                 text="\n".join(lines), key=f"{KIND}:{alert_id}", at=at, fields=tuple(fields), id=alert_id)


async def announce(result: DirectFlattenResult, settings: Settings, out: Callable[[str], None], *, actor: str,
                   trigger: Trigger | None, sinks: Sequence[Sink] | None = None,
                   clock: Clock | None = None, lock_held: bool = False) -> list[Delivery]:
    """Send the flatten's alert through every sink whose route takes it; say each outcome in one line.

    ``sinks``: the config's (``make_sinks``) unless given; ``clock``: wall time unless given (the
    tries' timeouts and waits); ``lock_held``: the caller holds the state lock (the record is
    written under it). Never raises: the flatten is done.
    """
    clock = clock or LiveClock()
    try:
        alert = build_alert(result, settings, at=clock.now(), actor=actor, trigger=trigger)
    except Exception as exc:  # a bug here must not turn a finished flatten into a traceback
        log.exception("building the direct flatten's alert failed")
        out(f"alert: NOT sent: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        return []
    return await send_alert(alert, settings, out, sinks=sinks, clock=clock, lock_held=lock_held)


async def send_alert(alert: Alert, settings: Settings, out: Callable[[str], None], *,
                     sinks: Sequence[Sink] | None = None, clock: Clock | None = None,
                     lock_held: bool = False) -> list[Delivery]:
    """One alert, from a process without the engine's router (the emergency flatten, the watchdog),
    through every configured sink whose route takes it, at most ``MAX_TRIES`` each; then recorded
    in the store when it can be. Never raises."""
    clock = clock or LiveClock()
    try:
        if sinks is None:
            from cockpit.alerts.factory import make_sinks

            sinks = make_sinks(settings)
    except ConfigError as exc:
        out(f"alert: NOT sent: {exc}")
        return []
    except Exception as exc:  # a bug here must not turn a finished flatten into a traceback
        log.exception("building the direct flatten's alert failed")
        out(f"alert: NOT sent: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        return []
    routed = []
    for sink in sinks:
        if Route(settings.alerts.routes.get(sink.name)).accepts(alert):
            routed.append(sink)
        else:
            out(f"alert: {sink.name}: not sent ([alerts.routes.{sink.name}] leaves {alert.kind} out)")
    try:
        deliveries = list(await asyncio.gather(*(_deliver(s, alert, settings, clock) for s in routed)))
    finally:
        for sink in sinks:
            try:
                await sink.close()
            except Exception:  # closing a sink must not hide what it did
                pass
    for d in deliveries:
        out(f"alert: {d.sink}: delivered" if d.delivered else
            f"alert: {d.sink}: NOT delivered after {d.tries} tries: {d.reason}")
    await _record(alert, deliveries, settings, clock, out, lock_held)
    return deliveries


async def _deliver(sink: Sink, alert: Alert, settings: Settings, clock: Clock) -> Delivery:
    cfg = settings.alerts
    tries_allowed = min(cfg.max_tries, MAX_TRIES)
    reason = "not tried"
    for tries in range(1, tries_allowed + 1):
        retry_after: float | None = None
        try:
            await within(clock, cfg.send_timeout_seconds, sink.send(alert))
            return Delivery(sink.name, True, tries)
        except SinkError as exc:
            reason = " ".join(exc.reason.split())[:300] or "failed"
            if exc.permanent:
                return Delivery(sink.name, False, tries, reason)
            retry_after = exc.retry_after
        except ClockTimeout:
            reason = f"no answer within send_timeout_seconds {cfg.send_timeout_seconds:g}"
        except Exception as exc:  # a sink's bug: reported, never the end of the command
            return Delivery(sink.name, False, tries, " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        if tries < tries_allowed:
            await sleep(clock, min(backoff(cfg, tries, retry_after), MAX_WAIT))
    return Delivery(sink.name, False, tries_allowed, reason)


async def _record(alert: Alert, deliveries: Sequence[Delivery], settings: Settings, clock: Clock,
                  out: Callable[[str], None], lock_held: bool = False) -> None:
    """The alert and its deliveries in the store, if it exists and no engine holds the state dir."""
    from cockpit.state_lock import StateDirBusy, StateLock
    from core.alerts import records
    from core.persistence.store import DB_FILENAME, Store

    db = settings.state_dir / DB_FILENAME
    if not db.exists():
        return
    try:
        with contextlib.nullcontext() if lock_held else StateLock(settings.state_dir):
            store = Store(db)
            await store.open()
            try:
                await records.migrate(store)
                records.record_alert(store, alert)
                for d in deliveries:
                    records.record_delivery(store, alert.id, d.sink, records.SENT if d.delivered else records.UNDELIVERED,
                                            d.tries, d.reason, clock.now())
                await store.flush()
            finally:
                await store.close()
    except StateDirBusy:
        out("alert: not recorded in the store: an engine holds the state dir")
    except Exception as exc:  # the alert went out (or did not) either way; the record is a convenience
        log.warning("recording the direct flatten's alert in %s failed: %s", db, exc)
        out(f"alert: not recorded in the store: {' '.join(str(exc).split())[:200]}")
