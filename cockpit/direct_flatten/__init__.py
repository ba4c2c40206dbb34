"""`cockpit flatten --all --direct`: emergency liquidation straight at IB Gateway, no engine.

What the process watchdog runs when the engine is dead (or hung): cancel every client's
orders, close every US stock position at market, report per symbol. One module per job:

plan        what to cancel and close, computed from IB's answers (pure)
outcome     what was achieved, per symbol, and the exit code (pure)
audit_sink  the rows in the engine's audit log, through core.audit (when the state dir is free)
run         the session with IB Gateway: read, confirm, cancel, close, wait
cli         the command line: arguments, the confirmation prompt, printing
"""

from __future__ import annotations

from cockpit.direct_flatten.audit_sink import ORDER_PREFIX, AuditSink, default_actor
from cockpit.direct_flatten.cli import run_from_cli
from cockpit.direct_flatten.outcome import EXIT_FAIL, EXIT_OK, EXIT_REFUSED, DirectFlattenResult, SymbolOutcome
from cockpit.direct_flatten.plan import (
    CancelItem,
    CloseItem,
    Holding,
    NotConfirmed,
    Plan,
    Untradable,
    build_plan,
    chunks_of,
    split_positions,
)
from cockpit.direct_flatten.run import flatten_direct

__all__ = [
    "EXIT_FAIL", "EXIT_OK", "EXIT_REFUSED", "ORDER_PREFIX", "AuditSink", "CancelItem", "CloseItem",
    "DirectFlattenResult", "Holding", "NotConfirmed", "Plan", "SymbolOutcome", "Untradable", "build_plan",
    "chunks_of", "default_actor", "flatten_direct", "run_from_cli", "split_positions",
]
