"""Alerts and their deliveries in the store: every alert that went (or should have gone) out, and
per sink whether it was sent, is being retried, or is undelivered (and why, after how many tries).

The alerts' own migration component (``alerts``), so it never collides with another part's
schema. Writes are the store's buffered ``append`` (the alert) and ``put`` (a delivery's
latest state): the router is their one writer; the next flush commits them with the rest.
"""

from __future__ import annotations

from datetime import datetime

from core.alerts.model import Alert, Severity
from core.domain.serialize import dt, json_text
from core.persistence.store import Store

COMPONENT = "alerts"

MIGRATIONS: list[str] = [
    # v1
    """
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity TEXT NOT NULL,
        key TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        fields TEXT NOT NULL,
        count INTEGER NOT NULL,
        window_seconds REAL NOT NULL,
        resolved INTEGER NOT NULL
    );
    CREATE INDEX alerts_at ON alerts(at);
    CREATE INDEX alerts_kind ON alerts(kind);
    CREATE TABLE alert_deliveries (
        alert_id TEXT NOT NULL,
        sink TEXT NOT NULL,
        status TEXT NOT NULL,
        tries INTEGER NOT NULL,
        reason TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (alert_id, sink)
    );
    CREATE INDEX alert_deliveries_status ON alert_deliveries(status);
    """,
]

#: A delivery's states: waiting in the sink's queue, an attempt failed and another will come,
#: the sink accepted it, or it never will (given up, refused for good, queue full, stopped).
QUEUED, FAILED, SENT, UNDELIVERED = "queued", "failed", "sent", "undelivered"

INSERT_ALERT = (
    "INSERT OR IGNORE INTO alerts (id, at, kind, severity, key, title, text, fields, count, window_seconds, resolved)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
PUT_DELIVERY = (
    "INSERT INTO alert_deliveries (alert_id, sink, status, tries, reason, updated_at) VALUES (?,?,?,?,?,?)"
    " ON CONFLICT(alert_id, sink) DO UPDATE SET status=excluded.status, tries=excluded.tries,"
    " reason=excluded.reason, updated_at=excluded.updated_at"
)


async def migrate(store: Store) -> None:
    await store.migrate(COMPONENT, MIGRATIONS)


_SEVERITY_TEXT = {s: str(s) for s in Severity}  # an IntEnum's str() reads its name each time


def record_alert(store: Store, alert: Alert) -> None:
    severity = alert.severity
    store.append(INSERT_ALERT, (
        alert.id, alert.at.isoformat(), alert.kind, _SEVERITY_TEXT.get(severity) or str(severity), alert.key,
        alert.title, alert.text, json_text([list(pair) for pair in alert.fields]), alert.count, alert.window_seconds,
        int(alert.resolved)))


def record_delivery(store: Store, alert_id: str, sink: str, status: str, tries: int, reason: str | None,
                    at: datetime) -> None:
    store.put(("alert_delivery", alert_id, sink), PUT_DELIVERY, (alert_id, sink, status, tries, reason, dt(at)))


async def undelivered_count(store: Store, since: datetime) -> int:
    """Deliveries given up on since ``since`` (the router's clock is UTC, so the text compares)."""
    row = await store.fetchone("SELECT COUNT(*) FROM alert_deliveries WHERE status = ? AND updated_at >= ?",
                               (UNDELIVERED, dt(since)))
    return int(row[0]) if row else 0
