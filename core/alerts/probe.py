"""`cockpit alerts test`: one test alert through each sink, one attempt each, side by side.

One attempt under the send timeout, so the operator learns at once whether the sink works
(retrying would hide the reason behind a backoff). The alert and each outcome are recorded in
the store; the go-live check asks it for a recent successful one (``last_success``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from core.alerts import records
from core.alerts.model import Alert, Severity
from core.alerts.sink import Sink, SinkError
from core.alerts.timing import ClockTimeout, within
from core.common.clock import Clock
from core.persistence.store import Store

KIND = "test"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    sink: str
    delivered: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"sink": self.sink, "delivered": self.delivered, "reason": self.reason}


def make_test_alert(clock: Clock, origin: str) -> Alert:
    at = clock.now()
    alert_id = f"test-{secrets.token_hex(6)}"
    return Alert(kind=KIND, severity=Severity.INFO, title="Cockpit test alert",
                 text=f"test alert from {origin} at {at:%Y-%m-%d %H:%M:%S %Z}: if you read this, this sink works",
                 key=f"{KIND}:{alert_id}", at=at, fields=(("origin", origin),), id=alert_id)


async def _one(sink: Sink, alert: Alert, clock: Clock, timeout: float) -> ProbeResult:
    try:
        await within(clock, timeout, sink.send(alert))
    except SinkError as exc:
        return ProbeResult(sink.name, False, " ".join(exc.reason.split())[:500] or "failed")
    except ClockTimeout:
        return ProbeResult(sink.name, False, f"no answer within send_timeout_seconds {timeout:g}")
    except Exception as exc:  # a sink's bug is a failure to report, not a crash of the command
        return ProbeResult(sink.name, False, " ".join(f"{type(exc).__name__}: {exc}".split())[:500])
    return ProbeResult(sink.name, True)


async def probe(sinks: Sequence[Sink], clock: Clock, timeout: float, store: Store | None, origin: str
                ) -> list[ProbeResult]:
    """Send one test alert through every sink in ``sinks`` at once; record it all in ``store``."""
    alert = make_test_alert(clock, origin)
    results = list(await asyncio.gather(*(_one(s, alert, clock, timeout) for s in sinks)))
    if store is not None:
        records.record_alert(store, alert)
        for r in results:
            records.record_delivery(store, alert.id, r.sink, records.SENT if r.delivered else records.UNDELIVERED,
                                    1, r.reason, clock.now())
    return results
