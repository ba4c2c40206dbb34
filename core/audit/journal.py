"""The audit log's former single module: the names it offered, from where they now live.

``from core.audit.journal import AuditLog`` and ``from core.audit import journal as kinds``
(``kinds.SIGNAL`` ...) keep working. New code imports from the module with the job:
kinds, canonical, row, schema, writer, verify, export.
"""

from __future__ import annotations

from core.audit.canonical import canonical_json
from core.audit.export import export
from core.audit.kinds import (
    CONFIG_CHANGE,
    DEADMAN_ARMED,
    DEADMAN_CONFIRMED,
    DEADMAN_DISARMED,
    DEADMAN_MISSED,
    DEADMAN_WARNING,
    ENGINE_START,
    ENGINE_STOP,
    GATE_PASS,
    GATE_REFUSE,
    KINDS,
    LIMIT_CHANGE,
    OPERATOR,
    ORDER_ACK,
    ORDER_CANCELLED,
    ORDER_FILL,
    ORDER_REJECTED,
    ORDER_SENT,
    SIGNAL,
    STATE_CHANGE,
)
from core.audit.row import COLUMNS, GENESIS_HASH, AuditRow, format_ts, row_hash
from core.audit.schema import APPEND_ONLY, AUDIT_MIGRATIONS, COMPONENT, TRIGGERS, TRIGGERS_SQL
from core.audit.verify import Problem, Report, check, verify
from core.audit.writer import DEFAULT_ACTOR, AuditLog

__all__ = [
    "APPEND_ONLY", "AUDIT_MIGRATIONS", "COLUMNS", "COMPONENT", "CONFIG_CHANGE", "DEADMAN_ARMED", "DEADMAN_CONFIRMED",
    "DEADMAN_DISARMED", "DEADMAN_MISSED", "DEADMAN_WARNING", "DEFAULT_ACTOR", "ENGINE_START", "ENGINE_STOP",
    "GATE_PASS", "GATE_REFUSE", "GENESIS_HASH", "KINDS", "LIMIT_CHANGE", "OPERATOR", "ORDER_ACK", "ORDER_CANCELLED",
    "ORDER_FILL", "ORDER_REJECTED", "ORDER_SENT", "SIGNAL", "STATE_CHANGE", "TRIGGERS", "TRIGGERS_SQL",
    "AuditLog", "AuditRow", "Problem", "Report", "canonical_json", "check", "export", "format_ts", "row_hash",
    "verify",
]
