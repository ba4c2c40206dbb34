"""The one path for operator commands: TUI keys, the CLI and the control API all land here.

Every command is audited with who, when, what it was before, what it is after and why,
whether it succeeded or was refused. A refusal (bad input, a state that does not allow
it) raises ``CommandRefused`` with a message that names the problem and the fix; the
callers turn it into a modal, a non-zero exit or a 4xx.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core.config import ConfigError
from core.execution.liquidation import LIQUIDATION, Liquidation, SymbolProgress
from core.domain.model import ZERO, OrderStatus, OrderType, Side, TimeInForce
from core.execution.reconcile import DiffKind
from core.risk.gate import OrderRequest, TradingState

if TYPE_CHECKING:
    from core.kernel.engine import Engine

log = logging.getLogger("cockpit.controls")


class CommandRefused(Exception):
    """An operator command that cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlattenPlan:
    """Exactly what a flatten will do, for the confirm modal and ``--json``."""

    symbols: list[str] | None  # None: everything
    cancel: list[dict[str, str]]
    close: list[dict[str, str]]
    notional: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "cancel": self.cancel, "close": self.close, "notional": str(self.notional)}


def parse_decimal(name: str, raw: str | Decimal | int, *, positive: bool = False) -> Decimal:
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise CommandRefused(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or (positive and value <= 0):
        raise CommandRefused(f"{name} must be a {'positive ' if positive else ''}finite number, got {raw!r}")
    return value


class Controls:
    """Operator commands against a running engine (same loop, no locks needed)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.liquidation: Liquidation | None = None
        self._jobs = 0

    # ---- helpers -------------------------------------------------------------------

    @property
    def _oms(self):  # noqa: ANN202 - the engine's OMS, present once started
        if self.engine.oms is None:
            raise CommandRefused("the engine is still starting: try again in a moment")
        return self.engine.oms

    def _audit(self, action: str, *, actor: str, reason: str | None, before: Any, after: Any, **detail: Any) -> None:
        self.engine.audit.operator(action, actor=actor, reason=reason, before=before, after=after, **detail)
        log.warning("operator %s by %s%s: %s -> %s", action, actor, f" ({reason})" if reason else "", before, after)

    def _refuse(self, action: str, actor: str, reason: str | None, message: str) -> CommandRefused:
        self.engine.audit.operator(action, actor=actor, reason=reason, before=None, after=None, refused=message)
        log.warning("operator %s by %s refused: %s", action, actor, message)
        return CommandRefused(message)

    def _symbol(self, raw: str) -> str:
        symbol = raw.strip().upper()
        if not symbol or not symbol.replace(".", "").replace("-", "").isalnum():
            raise CommandRefused(f"not a symbol: {raw!r}")
        return symbol

    # ---- trading state -------------------------------------------------------------

    async def halt(self, *, actor: str, reason: str | None = None) -> CommandResult:
        before = self.engine.gate.state
        self.engine.gate.set_state(TradingState.HALTED, reason=f"operator halt by {actor}" + (f": {reason}" if reason else ""))
        self._audit("halt", actor=actor, reason=reason, before=before, after=self.engine.gate.state)
        await self.engine.commit()
        return CommandResult(f"trading HALTED (was {before}); working orders stay: cancel them with cancel-all",
                             {"trading_state": str(self.engine.gate.state)})

    async def resume(self, *, actor: str, reason: str | None = None) -> CommandResult:
        gate = self.engine.gate
        before = gate.state
        try:
            gate.set_state(TradingState.ACTIVE, reason=f"operator resume by {actor}" + (f": {reason}" if reason else ""))
        except ValueError as exc:
            raise self._refuse("resume", actor, reason, str(exc)) from None
        stopped = None
        if self.liquidation is not None and not self.liquidation.done:
            self.liquidation.stopped = f"resumed by {actor}"
            stopped = self.liquidation.job_id
        gate.reduce_only_symbols.clear()
        self._audit("resume", actor=actor, reason=reason, before=before, after=gate.state, stopped_liquidation=stopped)
        self.engine.deadman.confirm(actor)  # whoever resumes is evidently present
        await self.engine.commit()
        return CommandResult(f"trading ACTIVE (was {before})", {"trading_state": str(gate.state)})

    # ---- orders --------------------------------------------------------------------

    def cancel_all_preview(self) -> list[dict[str, str]]:
        return [_order_brief(o) for o in self._oms.open_orders.values()]

    async def cancel_all(self, *, actor: str, reason: str | None = None) -> CommandResult:
        oms = self._oms
        targets = list(oms.open_orders.values())
        asked = [o.client_order_id for o in targets if oms.cancel(o.client_order_id)]
        self._audit("cancel_all", actor=actor, reason=reason, before=len(targets), after=len(oms.open_orders),
                    cancelled=asked)
        await self.engine.commit()
        return CommandResult(f"cancel requested for {len(asked)} order(s)", {"cancelled": asked})

    def flatten_preview(self, symbol: str | None) -> FlattenPlan:
        oms = self._oms
        symbols = None if symbol is None else [self._symbol(symbol)]
        cancel = [_order_brief(o) for o in oms.open_orders.values() if symbols is None or o.symbol in symbols]
        close, notional = [], ZERO
        for sym, pos in sorted(self.engine.portfolio.positions.items()):
            if pos.qty == ZERO or (symbols is not None and sym not in symbols):
                continue
            price = oms.last_prices.get(sym) or pos.last_price or pos.avg_cost
            value = abs(pos.qty) * price
            notional += value
            close.append({"symbol": sym, "side": "SELL" if pos.qty > 0 else "BUY", "qty": str(abs(pos.qty)),
                          "price": str(price), "notional": str(value.quantize(Decimal("0.01")))})
        return FlattenPlan(symbols, cancel, close, notional.quantize(Decimal("0.01")))

    async def flatten(self, symbol: str | None, *, actor: str, reason: str | None = None) -> CommandResult:
        """Flatten all: HALTED, cancel every order, close every position (the emergency
        liquidation). Flatten one symbol: that symbol goes reduce-only until resume, its
        orders are cancelled and its position closed; other symbols trade on."""
        oms = self._oms
        gate = self.engine.gate
        plan = self.flatten_preview(symbol)
        before = {"trading_state": str(gate.state), "positions": plan.close}
        if plan.symbols is None:
            gate.set_state(TradingState.HALTED, reason=f"flatten all by {actor}")
            targets = list(oms.open_orders.values())
        else:
            gate.reduce_only_symbols.update(plan.symbols)
            targets = [o for o in oms.open_orders.values() if o.symbol in plan.symbols]
        cancelled = [o.client_order_id for o in targets if oms.cancel(o.client_order_id)]
        self._jobs += 1
        job = Liquidation(
            job_id=f"flatten-{self._jobs}", started_at=self.engine.clock.now(), actor=actor,
            symbols={c["symbol"]: SymbolProgress(c["symbol"], Decimal(c["qty"])) for c in plan.close},
            cancelled=cancelled,
        )
        if self.liquidation is not None and not self.liquidation.done:
            self.liquidation.stopped = f"superseded by {job.job_id}"
        self.liquidation = job
        self._audit("flatten", actor=actor, reason=reason, before=before, after={"trading_state": str(gate.state)},
                    symbol=symbol or "ALL", job_id=job.job_id, cancelled=cancelled, plan=plan.as_dict())
        await self.step_liquidation()
        return CommandResult(
            f"{job.job_id}: cancel requested for {len(cancelled)} order(s), closing {len(plan.close)} position(s)"
            f" (notional {plan.notional:,})" + (", trading HALTED" if plan.symbols is None else
                                                f", {symbol} reduce-only until resume"),
            {"plan": plan.as_dict(), "job": job.summary()},
        )

    async def step_liquidation(self) -> None:
        job = self.liquidation
        if job is None or job.done or self.engine.oms is None:
            return
        if job.step(self.engine.oms, self.engine.portfolio, self.engine.quote_ts):
            await self.engine.oms.send_pending()
        if job.done:
            log.warning("%s finished: %s", job.job_id, job.summary()["symbols"])
            self.engine.audit.record("liquidation.done", actor=job.actor, subject=job.job_id, job=job.summary())
        await self.engine.commit()

    async def manual_order(self, side: str, symbol: str, qty: str | Decimal, limit: str | Decimal | None = None,
                           *, actor: str, reason: str | None = None) -> CommandResult:
        oms = self._oms
        try:
            side_ = Side(side.strip().upper())
        except ValueError:
            raise CommandRefused(f"side must be buy or sell, got {side!r}") from None
        sym = self._symbol(symbol)
        qty_ = parse_decimal("qty", qty, positive=True)
        limit_ = None if limit is None else parse_decimal("limit", limit, positive=True)
        req = OrderRequest("operator", sym, side_, qty_, OrderType.LIMIT if limit_ is not None else OrderType.MARKET,
                           limit_, source="operator")
        order = oms.submit(req, TimeInForce.DAY)
        if order is None:
            refusal = oms.last_refusal or "refused"
            self._audit("order", actor=actor, reason=reason, before=None, after=None, refused=refusal,
                        side=side_, symbol=sym, qty=qty_, limit=limit_)
            await self.engine.commit()
            raise CommandRefused(f"refused by the risk gate: {refusal}")
        self._audit("order", actor=actor, reason=reason, before=None, after=order.client_order_id,
                    side=side_, symbol=sym, qty=qty_, limit=limit_)
        await oms.send_pending()
        await self.engine.commit()
        return CommandResult(f"order {order.client_order_id} {side_} {qty_} {sym}"
                             + (f" @ {limit_}" if limit_ is not None else " at market"),
                             {"order_id": order.client_order_id, "status": str(order.status)})

    # ---- strategies, limits, positions ---------------------------------------------

    def strategies(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "enabled": s.enabled, "symbols": list(s.symbols)} for s in self.engine.strategies]

    async def set_strategy(self, name: str, enabled: bool, *, actor: str, reason: str | None = None) -> CommandResult:
        strategy = next((s for s in self.engine.strategies if s.name == name), None)
        if strategy is None:
            known = ", ".join(s.name for s in self.engine.strategies) or "none"
            raise CommandRefused(f"no strategy named {name!r} (known: {known})")
        before = strategy.enabled
        strategy.enabled = enabled
        cancelled: list[str] = []
        if not enabled and self.engine.oms is not None:
            oms = self.engine.oms
            cancelled = [o.client_order_id for o in list(oms.open_orders.values())
                         if o.strategy == name and oms.cancel(o.client_order_id)]
        self.engine.persist_setting(f"strategy.{name}.enabled", "true" if enabled else "false")
        self._audit("strategy", actor=actor, reason=reason, before=before, after=enabled, strategy=name,
                    cancelled=cancelled)
        await self.engine.commit()
        word = "enabled" if enabled else "disabled"
        extra = f"; cancel requested for its {len(cancelled)} working order(s)" if cancelled else ""
        return CommandResult(f"strategy {name} {word}{extra}", {"name": name, "enabled": enabled,
                                                                 "cancelled": cancelled})

    def risk_limits(self) -> dict[str, str]:
        return self.engine.gate.limits_dict()

    async def set_limit(self, key: str, value: str, *, actor: str, reason: str | None = None) -> CommandResult:
        try:
            old, new = self.engine.gate.set_limit(key, value)
        except ConfigError as exc:
            raise self._refuse("risk_set", actor, reason, str(exc)) from None
        shown = self.engine.gate.limits_dict()[key]
        self.engine.persist_setting(f"risk.{key}", shown)
        self._audit("risk_set", actor=actor, reason=reason, before=str(old), after=shown, key=key)
        await self.engine.commit()
        return CommandResult(f"risk.{key}: {old} -> {shown} (persisted)", {"key": key, "old": str(old), "new": shown})

    async def set_position(self, symbol: str, qty: str | Decimal, avg_cost: str | Decimal, *, actor: str,
                           reason: str | None) -> CommandResult:
        if not reason or not reason.strip():
            raise CommandRefused("a position override needs a reason (--reason TEXT): it is for when the book is "
                                 "known to be wrong, and the audit trail must say why")
        sym = self._symbol(symbol)
        qty_ = parse_decimal("qty", qty)
        cost = parse_decimal("avg-cost", avg_cost)
        if cost < 0 or (qty_ != 0 and cost == 0):
            raise CommandRefused(f"avg-cost must be positive for a nonzero position, got {avg_cost!r}")
        pos = self.engine.portfolio.position(sym)
        before = {"qty": str(pos.qty), "avg_cost": str(pos.avg_cost)}
        pos.qty, pos.avg_cost = qty_, (cost if qty_ != 0 else ZERO)
        self._oms.persist_position(sym)
        after = {"qty": str(pos.qty), "avg_cost": str(pos.avg_cost)}
        self._audit("position_set", actor=actor, reason=reason, before=before, after=after, symbol=sym)
        await self.engine.commit()
        return CommandResult(f"position {sym}: {before['qty']} @ {before['avg_cost']} -> {after['qty']} @ "
                             f"{after['avg_cost']}", {"symbol": sym, "before": before, "after": after})

    # ---- reconciliation breaks -------------------------------------------------------

    RESOLUTIONS = ("accept", "adopt", "flatten")

    async def reconcile(self, *, actor: str) -> CommandResult:
        result = await self.engine.reconciler.run(f"asked by {actor}")
        return CommandResult(str(result), {"pass": result.as_dict(), "breaks": self.engine.reconciler.views()})

    async def resolve_break(self, symbol: str, action: str, *, actor: str, reason: str | None = None) -> CommandResult:
        """Settle a reconciliation break on ``symbol``, then unblock it:

        - accept: the engine takes the broker's view: its position and average cost, its open
          orders (unknown ones adopted), and engine orders the broker does not have are cancelled;
        - adopt: only the broker's unknown open orders are adopted (the break stays if
          anything else differs);
        - flatten: accept, then flatten the symbol (its orders cancelled, position closed,
          the symbol reduce-only until resume).
        """
        sym = self._symbol(symbol)
        act = action.strip().lower()
        if act not in self.RESOLUTIONS:
            raise self._refuse("resolve", actor, reason,
                               f"resolution must be one of {', '.join(self.RESOLUTIONS)}, got {action!r}")
        rec = self.engine.reconciler
        brk = rec.breaks.get(sym)
        if brk is None:
            known = ", ".join(sorted(rec.breaks)) or "none"
            raise self._refuse("resolve", actor, reason, f"no reconciliation break on {sym} (breaks: {known})")
        broker = self.engine.broker
        if not broker.connected:
            raise self._refuse("resolve", actor, reason,
                               f"the broker is not connected ({broker.status}): its view cannot be read now")
        oms = self._oms
        broker_orders = [o for o in await broker.open_orders() if o.symbol == sym]
        adopted = []
        for order in broker_orders:
            if order.client_order_id not in oms.open_orders:
                taken = oms.adopt(order)
                if not broker.adopt_unknown(taken):
                    log.warning("broker could not track adopted order %s: its fills still reach the book "
                                "by exec id", taken.client_order_id)
                adopted.append(taken.client_order_id)
        done: dict[str, Any] = {"adopted": adopted}
        if act in ("accept", "flatten"):
            at_broker = {o.client_order_id for o in broker_orders}
            settled = [coid for coid, o in list(oms.open_orders.items())
                       if o.symbol == sym and coid not in at_broker and o.status is not OrderStatus.NEW
                       and oms.settle_missing(coid, f"not at the broker: {actor} accepted the broker's view")]
            theirs = {p.symbol: p for p in await broker.positions()}.get(sym)
            pos = self.engine.portfolio.position(sym)
            before = {"qty": str(pos.qty), "avg_cost": str(pos.avg_cost)}
            pos.qty = theirs.qty if theirs is not None else ZERO
            pos.avg_cost = theirs.avg_cost if theirs is not None and pos.qty else ZERO
            oms.persist_position(sym)
            accepted = [d.key for d in brk.differences if d.kind is DiffKind.MISSING_EXECUTION]
            rec.accepted_execs.update(accepted)
            done.update(cancelled_missing=settled, position_before=before, accepted_missing_execs=accepted,
                        position_after={"qty": str(pos.qty), "avg_cost": str(pos.avg_cost)})
        remaining = [d for d in brk.differences if d.kind is not DiffKind.UNKNOWN_ORDER] if act == "adopt" else []
        if remaining:
            brk.differences = remaining
            self._audit("resolve", actor=actor, reason=reason, before=brk.summary(), after="break stays",
                        symbol=sym, resolution=act, **done)
            await self.engine.commit()
            return CommandResult(f"{sym}: adopted {len(adopted)} order(s); the break stays: {brk.summary()} "
                                 f"(accept or flatten to settle it)", {"symbol": sym, "resolved": False, **done})
        rec.clear(sym)
        self._audit("resolve", actor=actor, reason=reason, before=brk.summary(), after="resolved", symbol=sym,
                    resolution=act, **done)
        message = f"{sym}: break resolved ({act})"
        if act == "flatten":
            flat = await self.flatten(sym, actor=actor, reason=reason or "resolving a reconciliation break")
            done["flatten"] = flat.data
            message += f"; {flat.message}"
        await self.engine.commit()
        return CommandResult(message, {"symbol": sym, "resolved": True, **done})

    # ---- presence ------------------------------------------------------------------

    async def confirm(self, *, actor: str) -> CommandResult:
        view = self.engine.deadman.confirm(actor)
        await self.engine.commit()
        left = f"{view.seconds_left:.0f}s left" if view.seconds_left is not None else str(view.phase)
        return CommandResult(f"presence confirmed: dead-man {view.phase}, {left}",
                             {"phase": str(view.phase), "seconds_left": view.seconds_left})


def _order_brief(o: Any) -> dict[str, str]:
    return {"id": o.client_order_id, "strategy": o.strategy, "symbol": o.symbol, "side": str(o.side),
            "qty": str(o.remaining), "type": str(o.order_type),
            "limit": "" if o.limit_price is None else str(o.limit_price)}


__all__ = ["LIQUIDATION", "CommandRefused", "CommandResult", "Controls", "FlattenPlan"]
