"""The direct flatten's rows in the engine's audit log, written through core.audit.

Optional and never in the way: rows are written only when the state dir's store exists and
its lock is free. When an engine holds the lock (alive but hung), the store is left alone
and that is said. Rows go through ``core.audit.writer.AuditLog``: the one hash formula, wall
time in ``ts`` (this process has no engine clock, so no ``engine_ts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cockpit.identity import operator_id
from core.audit import kinds
from core.domain.model import OrderType

if TYPE_CHECKING:
    from pathlib import Path

    from cockpit.direct_flatten.plan import CancelItem, CloseItem
    from cockpit.state_lock import StateLock
    from core.audit.writer import AuditLog
    from core.domain.model import Execution, OrderUpdate
    from core.persistence.store import Store

ORDER_PREFIX = "direct-flatten"
# The kinds of row only this command writes (the shared ones are in core.audit.kinds).
COMMAND = "flatten_direct"  # the operator row: kinds.OPERATOR + COMMAND
CANCEL_REQUESTED = "order.cancel_requested"
CANCEL_ALL_DONE = "cancel_all.done"
FLATTEN_DONE = "flatten_direct.done"


def default_actor() -> str:
    """Who ran it: ``direct-flatten:<user>@<host>``."""
    return operator_id(ORDER_PREFIX)


class AuditSink:
    """Rows in the engine's audit log, if the store exists and no engine holds the state dir."""

    def __init__(self, state_dir: Path, actor: str, out: Callable[[str], None], *,
                 lock_held: bool = False) -> None:
        self.state_dir = state_dir
        self.actor = actor
        self.out = out
        self._held = lock_held  # the caller holds the state lock already (the watchdog): never take or release it
        self.status = ""  # the last thing said about the audit trail (shown in the result)
        self.rows = 0
        self._lock: StateLock | None = None
        self._store: Store | None = None
        self._log: AuditLog | None = None

    async def open(self) -> None:
        from cockpit.state_lock import StateDirBusy, StateLock
        from core.audit.verify import copy_problems
        from core.audit.writer import AuditLog
        from core.common.clock import LiveClock
        from core.persistence.store import DB_FILENAME, Store

        db = self.state_dir / DB_FILENAME
        if not db.exists():
            self._say(f"audit: no state store at {db}: no audit rows written")
            return
        if not self._held:
            lock = StateLock(self.state_dir)
            try:
                lock.__enter__()
            except StateDirBusy:
                self._say(f"audit: NOT written: an engine holds the state dir {self.state_dir} (alive but hung?); "
                          "its store was left alone")
                return
            except OSError as exc:
                self._say(f"audit: NOT written: cannot take the state lock in {self.state_dir}: {exc}")
                return
            self._lock = lock
        store = Store(db, copy_checks=(copy_problems,))  # a pre-migration backup checks the chain too
        try:
            await store.open()
            audit_log = AuditLog(store, LiveClock())
            await audit_log.load()
        except Exception as exc:
            self._say(f"audit: NOT written: cannot open {db}: {exc}")
            await self._close_quietly(store)
            self._release()
            return
        self._store, self._log = store, audit_log

    # -- the rows --
    def command(self, reason: str | None, before: Any, after: Any, **detail: Any) -> None:
        """The operator's command (who, why, what there was, what it will do)."""
        if self._log is not None:
            self._log.operator(COMMAND, actor=self.actor, reason=reason, before=before, after=after, **detail)
            self.rows += 1

    def cancel_requested(self, c: CancelItem) -> None:
        self._record(CANCEL_REQUESTED, subject=c.name, via="reqGlobalCancel", client_id=c.client_id,
                     perm_id=c.perm_id, symbol=c.symbol, side=c.action, qty=c.qty)

    def cancels_done(self, still_open: list[CancelItem]) -> None:
        self._record(CANCEL_ALL_DONE, subject="reqGlobalCancel", still_open=[c.name for c in still_open])

    def order_sent(self, coid: str, close: CloseItem, qty: Decimal) -> None:
        """One market order of a close (the only kind of order this command sends)."""
        self._record(kinds.ORDER_SENT, subject=coid, broker="ibkr", symbol=close.symbol, side=close.side, qty=qty,
                     type=OrderType.MARKET, position=close.position)

    def fill(self, report: Execution) -> None:
        self._record(kinds.ORDER_FILL, subject=report.client_order_id, exec_id=report.exec_id, symbol=report.symbol,
                     side=report.side, qty=report.qty, price=report.price, commission=report.commission,
                     actor="broker")

    def order_ended(self, report: OrderUpdate, why: str, rejected: bool) -> None:
        kind = kinds.ORDER_REJECTED if rejected else kinds.ORDER_CANCELLED
        self._record(kind, subject=report.client_order_id, reason=why, actor="broker")

    def done(self, flat: bool, still_open: list[CancelItem], final_positions: Mapping[str, Decimal],
             symbols: Mapping[str, str]) -> None:
        self._record(FLATTEN_DONE, subject=ORDER_PREFIX, flat=flat, still_open=[c.name for c in still_open],
                     final_positions=dict(final_positions), symbols=dict(symbols))

    def record(self, kind: str, **detail: Any) -> None:
        """A row of another kind (the watchdog's verdict on a run), with this sink's actor."""
        self._record(kind, **detail)

    def _record(self, kind: str, **detail: Any) -> None:
        if self._log is not None:
            detail.setdefault("actor", self.actor)
            self._log.record(kind, **detail)
            self.rows += 1

    # -- committing and closing --
    async def flush(self) -> None:
        if self._store is None:
            return
        try:
            await self._store.flush()
        except Exception as exc:
            self._say(f"audit: writing failed ({exc}); later rows are not written")
            await self._close_quietly(self._store)
            self._store = self._log = None
            self._release()

    async def close(self) -> None:
        if self._store is not None:
            await self.flush()
        if self._store is not None:
            db = self._store.path
            await self._close_quietly(self._store)
            self._store = self._log = None
            if self.rows:
                self._say(f"audit: {self.rows} row(s) written to {db}")
        self._release()

    async def _close_quietly(self, store: Store) -> None:
        try:
            await store.close()
        except Exception as exc:
            self._say(f"audit: closing the store failed: {exc}")

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    def _say(self, text: str) -> None:
        self.status = text
        self.out(text)
