"""The watchdog's response to a run that died or hung: what cockpit-emergency.service does.

1. the halt-on-start latch (cockpit/watchdog/latch.py), first, so the next engine comes up
   halted even if this process dies half-way;
2. one audit row of the verdict, with the watchdog as actor (when it holds the state lock: a
   hung engine still holds it, and its store is left alone);
3. IBKR: the emergency flatten at IB Gateway with the watchdog's own client id, then its alert
   through the configured sinks (cockpit/direct_flatten/emergency.py: the very code of
   `cockpit flatten --all --direct --yes`); the paper broker holds nothing outside the
   engine: an alert only.
A run that went down with the machine (REBOOTED: cockpit/watchdog/reboot.py) gets 1 and 2 and
an alert, never the flatten.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime

from cockpit.direct_flatten.alert import Trigger, send_alert
from cockpit.direct_flatten.audit_sink import AuditSink
from cockpit.direct_flatten.emergency import emergency_flatten
from cockpit.halt_latch import HaltLatch, write_latch
from cockpit.run_record import RunRecord
from cockpit.watchdog import reboot
from cockpit.watchdog.verdict import DIED, REBOOTED
from core.alerts.model import Alert, Severity
from core.config import Settings

AUDIT_KIND = "watchdog.response"
PAPER_ALERT_KIND = "engine.error"  # routed like the engine's own errors (Discord and email by default)


def what_happened(record: RunRecord, verdict: str, hung_seconds: float) -> str:
    if verdict == REBOOTED:
        return reboot.what_happened(record)
    if verdict == DIED:
        ended = f"stopped with an error ({record.reason})" if record.reason else "was killed or crashed"
        return f"died without a clean stop ({ended})"
    return f"is hung: no answer on its control socket for {hung_seconds:g} s"


async def respond(settings: Settings, record: RunRecord, verdict: str, *, actor: str, lock_held: bool,
                  out: Callable[[str], None]) -> str:
    """The whole response; returns one line saying how it ended (kept in the watchdog's file)."""
    cfg = settings.watchdog
    happened = what_happened(record, verdict, cfg.hung_seconds)
    at = datetime.now(UTC)
    out(f"watchdog: {record.name()} {happened}: emergency response by {actor}")
    try:
        write_latch(settings.state_dir, HaltLatch(run=record.run, actor=actor, at=at.isoformat(timespec="seconds"),
                                                  reason=f"{record.name()} {happened}; the watchdog responded at "
                                                         f"{at:%Y-%m-%d %H:%M:%S} UTC"))
    except OSError as exc:
        out(f"watchdog: NOT latched (the next start will not be halted by the watchdog): {exc}")
    if lock_held:
        await _audit(settings, record, verdict, happened, actor, out)
    if verdict == REBOOTED:
        book = reboot.held_book(settings.state_dir)
        out(f"watchdog: no emergency flatten: a reboot is not an engine crash; the book per the store: {book}")
        await send_alert(reboot.reboot_alert(settings, record, actor, at, book), settings, out, lock_held=lock_held)
        return "rebooted: the machine restarted while the engine was trading: no flatten; the next start is halted"
    reason = f"watchdog: {record.name()} {happened}"
    if settings.broker.kind == "ibkr":
        trigger = Trigger(unit=record.name(), result=happened)
        result = await emergency_flatten(settings, actor=actor, out=out, client_id=cfg.client_id,
                                         wait_seconds=cfg.wait_seconds, reason=reason, trigger=trigger,
                                         lock_held=lock_held)
        if result.error:
            return f"{verdict}: emergency flatten FAILED: {result.error}"[:300]
        return f"{verdict}: emergency flatten " + ("done: flat" if result.flat else "NOT DONE")
    await send_alert(paper_alert(settings, record, happened, actor, at), settings, out, lock_held=lock_held)
    return f"{verdict}: paper broker, nothing outside the engine to flatten; the next start is halted"


def paper_alert(settings: Settings, record: RunRecord, happened: str, actor: str, at: datetime) -> Alert:
    """The paper broker's: nothing is open anywhere but in the engine's own book."""
    alert_id = f"watchdog-{secrets.token_hex(6)}"
    return Alert(kind=PAPER_ALERT_KIND, severity=Severity.CRITICAL, title=f"Engine {happened.split(':')[0]}",
                 text=f"{record.name()} {happened}.\nThe paper broker holds nothing outside the engine: nothing to "
                      "flatten. The next start comes up HALTED (`cockpit resume` trades again).",
                 key=f"{PAPER_ALERT_KIND}:watchdog:{record.run}", at=at, id=alert_id,
                 fields=(("by", actor), ("host", socket.gethostname()[:100]), ("run", record.run),
                         ("broker", settings.broker.kind)))


async def _audit(settings: Settings, record: RunRecord, verdict: str, happened: str, actor: str,
                 out: Callable[[str], None]) -> None:
    sink = AuditSink(settings.state_dir, actor, out, lock_held=True)
    await sink.open()
    try:
        sink.record(AUDIT_KIND, subject=record.run, verdict=verdict, what=happened, pid=record.pid, host=record.host,
                    started_at=record.started_at, trading_since=record.trading_since, state=record.state,
                    stop_reason=record.reason or None, boot_id=record.boot_id)
    finally:
        await sink.close()
