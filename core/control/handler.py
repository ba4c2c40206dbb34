"""The one handler for operator commands: TUI keys, the CLI and the control API all land here.

Each command (``core.domain.commands``) is validated and planned from current state before
anyone is asked to confirm it; executing it re-plans and runs only if the effect is still what
was shown (``PlanChanged`` otherwise). Every execution and every refusal is audited with who,
when, before, after and why. A refusal raises ``CommandRefused`` with a message that names the
problem and the fix; the callers turn it into a modal, a non-zero exit or a 4xx.

The book changes only by fills: an override and an accepted break are booked as adjustment
fills through the order manager, so cash, P&L and the strategies' books follow them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core.config import ConfigError
from core.domain import serialize, text
from core.domain.commands import (
    Backup,
    CancelAll,
    Command,
    CommandRefused,
    CommandResult,
    ConfirmPresence,
    Flatten,
    Halt,
    ManualOrder,
    OverridePosition,
    Plan,
    PlanChanged,
    Reconcile,
    ResolveBreak,
    Resume,
    SetAllocation,
    SetLimit,
    SetStrategy,
)
from core.domain.events import AllocationChanged, BreakResolved, CommandHandled, LiquidationFinished, PreflightDecided
from core.domain.model import EXTERNAL, LIQUIDATION, OPERATOR, ZERO, Order, OrderStatus, OrderType, Side, TimeInForce
from core.execution.liquidation import Liquidation, SymbolProgress
from core.execution.oms import OrderManager
from core.execution.reconcile import DiffKind
from core.persistence.backup import MANUAL, BackupError
from core.portfolio.adjustment import adjustment_fills
from core.risk.gate import OrderRequest, TradingState

if TYPE_CHECKING:
    from core.control.services import EngineServices

log = logging.getLogger("cockpit.controls")

RESOLUTIONS = ("accept", "adopt", "flatten")


@dataclass(frozen=True, slots=True)
class FlattenPlan:
    """Exactly what a flatten will do, for the confirm modal and ``--json``."""

    symbols: list[str] | None  # None: everything
    cancel: list[dict[str, str]]
    close: list[dict[str, str]]
    notional: Decimal

    def as_dict(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "cancel": self.cancel, "close": self.close,
                "notional": text.money(self.notional)}


# What an operator may type. A share count beyond a billion or a price beyond ten million is a
# slip of the finger, and keeping every product (qty x price <= 1e16) far inside Decimal's
# 28 digits means the book, cash and P&L always round to the cent without an error.
MAX_QTY = Decimal("1e9")
MAX_PRICE = Decimal("1e7")
PRICE_PLACES = 8  # below any tick size; more digits are a typo or an attack on the arithmetic


def parse_decimal(name: str, raw: str | Decimal | int, *, positive: bool = False, whole: bool = False,
                  limit: Decimal = Decimal("1e12"), places: int | None = None) -> Decimal:
    """A number from an operator, checked for what it is: finite, sign, whole, magnitude, and
    at most ``places`` decimal places."""
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise CommandRefused(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite():
        raise CommandRefused(f"{name} must be a finite number, got {raw!r}")
    if positive and value <= 0:
        raise CommandRefused(f"{name} must be positive, got {raw!r}")
    if value.copy_abs() > limit:  # copy_abs: no context, so 1e9999999999 cannot overflow
        raise CommandRefused(f"{name} {raw!r} is beyond {text.qty(limit)}: check the number")
    if whole and value != value.to_integral_value():
        raise CommandRefused(f"{name} must be a whole number of shares, got {raw!r}")
    if places is not None and value != value.quantize(Decimal(1).scaleb(-places)):
        raise CommandRefused(f"{name} {raw!r} has more than {places} decimal places: check the number")
    return value


def parse_qty(name: str, raw: str | Decimal | int, *, positive: bool = False) -> Decimal:
    return parse_decimal(name, raw, positive=positive, whole=True, limit=MAX_QTY)


def parse_price(name: str, raw: str | Decimal | int, *, positive: bool = False) -> Decimal:
    return parse_decimal(name, raw, positive=positive, limit=MAX_PRICE, places=PRICE_PLACES)


class CommandHandler:
    """Plans and executes operator commands on the engine's loop (one writer, no locks)."""

    RESOLUTIONS = RESOLUTIONS

    def __init__(self, engine: EngineServices) -> None:
        self.engine = engine
        self.liquidation: Liquidation | None = None
        self._jobs = 0
        self._planners: dict[type[Command], Callable[[Any], Awaitable[Plan]]] = {
            Halt: self._plan_halt, Resume: self._plan_resume, CancelAll: self._plan_cancel_all,
            Flatten: self._plan_flatten, SetLimit: self._plan_set_limit, SetStrategy: self._plan_set_strategy,
            OverridePosition: self._plan_override, ManualOrder: self._plan_order, ResolveBreak: self._plan_resolve,
            Reconcile: self._plan_simple, ConfirmPresence: self._plan_simple,
            SetAllocation: self._plan_set_allocation, Backup: self._plan_backup,
        }
        self._runners: dict[type[Command], Callable[[Any, Plan], Awaitable[CommandResult]]] = {
            Halt: self._halt, Resume: self._resume, CancelAll: self._cancel_all, Flatten: self._flatten,
            SetLimit: self._set_limit, SetStrategy: self._set_strategy, OverridePosition: self._override,
            ManualOrder: self._order, ResolveBreak: self._resolve, Reconcile: self._reconcile,
            ConfirmPresence: self._confirm, SetAllocation: self._set_allocation, Backup: self._backup,
        }

    # ---- the one path ------------------------------------------------------------------

    async def plan(self, command: Command) -> Plan:
        """What ``command`` would do now, for a confirm; raises CommandRefused for bad input
        (before any confirm), and the refusal is audited."""
        try:
            return await self._plan(command)
        except CommandRefused as exc:
            self._audit_refusal(command, f"{exc} (when planned)")
            raise

    async def _plan(self, command: Command) -> Plan:
        if not command.actor or not command.actor.strip():
            raise CommandRefused("a command needs an actor (who is asking): none was given")
        if self.parked is not None:
            raise CommandRefused(f"the engine is parked: {self.parked}; it sends nothing and takes no command. Fix "
                                 "the checks (`cockpit preflight`), stop it and start it again")
        return await self._planners[type(command)](command)

    async def execute(self, command: Command, expected: Plan | str | None = None) -> CommandResult:
        """Re-plan, check the plan is the one shown (``expected``: a Plan or its fingerprint),
        audit and run. A refusal is audited too."""
        try:
            plan = await self._plan(command)
        except CommandRefused as exc:
            self._audit_refusal(command, str(exc))
            raise
        shown = expected.fingerprint if isinstance(expected, Plan) else expected
        if shown is not None and shown != plan.fingerprint:
            self._audit_refusal(command, "plan changed since it was shown")
            raise PlanChanged(plan)
        try:
            result = await self._runners[type(command)](command, plan)
        except CommandRefused as exc:
            self._audit_refusal(command, str(exc))
            await self.engine.commit()
            raise
        except Exception as exc:  # audited too, then the caller's error path (an internal error)
            self._audit_refusal(command, f"failed: {exc!r}")
            await self.engine.commit()
            raise
        await self.engine.commit()
        return result

    # ---- helpers -------------------------------------------------------------------

    @property
    def _oms(self) -> OrderManager:
        """The engine's OMS, present once started."""
        if self.engine.oms is None:
            raise CommandRefused("the engine is still starting: try again in a moment")
        return self.engine.oms

    def _audit(self, command: Command, *, before: Any, after: Any, message: str, **detail: Any) -> None:
        self.engine.bus.publish(CommandHandled(command.name, command.actor, command.reason, message, before, after,
                                               detail))
        log.warning("operator %s by %s%s: %s", command.name, command.actor,
                    f" ({command.reason})" if command.reason else "", message)

    def _audit_refusal(self, command: Command, message: str) -> None:
        actor = command.actor.strip() if command.actor and command.actor.strip() else "unknown"
        try:
            self.engine.bus.publish(CommandHandled(command.name, actor, command.reason, message, refused=message))
        except RuntimeError:  # the audit trail is not loaded yet (the engine is starting)
            log.warning("refusal not audited: the audit trail is not open yet")
        log.warning("operator %s by %s refused: %s", command.name, actor, message)

    def preflight_decided(self, outcome: str, failing: list[str], *, actor: str, reason: str | None = None) -> None:
        """How the start of a live account went against the go-live check: on the bus (audited).
        A refused start sends nothing on its way down: what the strategies queued at start is
        REJECTED here, not sent by the shutdown."""
        self.engine.bus.publish(PreflightDecided(outcome, tuple(failing), actor, reason))
        oms = self.engine.oms
        if outcome == "refused" and oms is not None:
            dropped = oms.reject_unsent("not sent: the go-live check refused this LIVE start")
            if dropped:
                log.warning("%d order(s) a strategy made at start were not sent: the LIVE start is refused", dropped)

    @property
    def parked(self) -> str | None:
        return self.engine.parked

    async def park(self, reason: str) -> None:
        """A refused LIVE start that waits for its stop instead of exiting (``[engine]
        on_refused_start = "wait"``): the engine parks (its broker session closed, nothing sent)
        and every command is refused from now on."""
        await self.engine.park(reason)

    def traded_symbols(self) -> list[str]:
        """Every symbol the engine trades or holds: the feed's, the strategies', the book's."""
        known = set(self.engine.feed.symbols)
        for strategy in self.engine.strategies:
            known.update(strategy.symbols)
        known.update(s for s, p in self.engine.portfolio.positions.items() if p.qty != ZERO)
        return sorted(known)

    def _symbol(self, raw: str, *, allow_new: bool = False) -> str:
        symbol = (raw or "").strip().upper()
        if (not symbol or len(symbol) > 16 or not symbol.isascii()
                or not symbol.replace(".", "").replace("-", "").isalnum()):
            raise CommandRefused(f"not a symbol: {raw!r}")
        traded = self.traded_symbols()
        if symbol not in traded and not allow_new:
            raise CommandRefused(f"unknown symbol {symbol} (traded: {', '.join(traded) or 'none'})")
        return symbol

    def _mark(self, symbol: str) -> Decimal | None:
        price = self._oms.last_prices.get(symbol)
        if price is None:
            pos = self.engine.portfolio.positions.get(symbol)
            price = pos.last_price if pos is not None else None
        return price

    def _working(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self._oms.open_orders.values() if symbol is None or o.symbol == symbol]

    # ---- plans ---------------------------------------------------------------------

    async def _plan_simple(self, command: Command) -> Plan:
        return Plan(command.name, {}, (f"{command.name.upper()}",))

    async def _plan_backup(self, command: Backup) -> Plan:
        cfg = self.engine.backups.config
        daily = f" and the newest of each of the last {cfg.keep_daily} days" if cfg.keep_daily else ""
        return Plan("backup", {}, (
            f"BACKUP the store now into {self.engine.backups.directory} (trading goes on; the copy is checked: "
            "SQLite integrity and the audit chain).",
            f"Then rotation keeps the {cfg.keep_recent} newest{daily}; pre-migration backups stay."))

    async def _plan_halt(self, command: Halt) -> Plan:
        state = self.engine.gate.state
        working = [o.client_order_id for o in self._working()]
        # Halting touches no order: the working ones are shown, not part of what is compared.
        return Plan("halt", {"from": str(state), "to": "HALTED"},
                    (f"HALT trading (now {state}): no new orders from any strategy or the operator.",
                     f"{len(working)} working order(s) stay working: cancel them with cancel-all."),
                    {"working_orders": working})

    async def _plan_resume(self, command: Resume) -> Plan:
        gate = self.engine.gate
        refusal = gate.state_refusal(TradingState.ACTIVE)
        if refusal is not None:
            raise CommandRefused(refusal)
        stopping = self.liquidation.job_id if self.liquidation is not None and not self.liquidation.done else None
        reduce_only = sorted(gate.reduce_only_symbols)
        lines = [f"RESUME trading (now {gate.state}): new orders may go again."]
        if reduce_only:
            lines.append(f"Reduce-only ends for {', '.join(reduce_only)}.")
        if stopping:
            lines.append(f"The liquidation {stopping} in progress stops.")
        return Plan("resume", {"from": str(gate.state), "to": "ACTIVE", "reduce_only_cleared": reduce_only,
                               "stops_liquidation": stopping}, tuple(lines))

    async def _plan_cancel_all(self, command: CancelAll) -> Plan:
        briefs = [_order_brief(o) for o in self._working()]
        lines = [f"CANCEL ALL {len(briefs)} working order(s)" + (":" if briefs else ": there are none.")]
        lines += [_brief_line(b) for b in briefs]
        return Plan("cancel_all", {"cancel": [b["id"] for b in briefs]}, tuple(lines), {"orders": briefs})

    def flatten_plan(self, symbol: str | None) -> FlattenPlan:
        symbols = None if symbol is None else [self._symbol(symbol)]
        cancel = [_order_brief(o) for o in self._working() if symbols is None or o.symbol in symbols]
        close, notional = [], ZERO
        for sym, pos in sorted(self.engine.portfolio.positions.items()):
            if pos.qty == ZERO or (symbols is not None and sym not in symbols):
                continue
            price = self._mark(sym) or pos.avg_cost
            value = abs(pos.qty) * price
            notional += value
            close.append({"symbol": sym, "side": "SELL" if pos.qty > 0 else "BUY", "qty": text.qty(abs(pos.qty)),
                          "price": text.price(price), "notional": text.money(value)})
        return FlattenPlan(symbols, cancel, close, notional)

    async def _plan_flatten(self, command: Flatten) -> Plan:
        fp = self.flatten_plan(command.symbol)
        what = "ALL" if fp.symbols is None else fp.symbols[0]
        lines = [f"FLATTEN {what}: cancel {len(fp.cancel)} order(s), close {len(fp.close)} position(s)"
                 f" (notional about {text.money(fp.notional)} at the last prices)."]
        lines += [f"  {c['side']} {c['qty']} {c['symbol']} at market (last {c['price']})" for c in fp.close]
        lines += [_brief_line(b) for b in fp.cancel]
        lines.append("Trading goes HALTED." if fp.symbols is None else f"{what} stays reduce-only until resume.")
        effect: dict[str, Any] = {"symbols": fp.symbols}
        if fp.symbols is not None:  # one symbol: exactly these orders and this position
            effect.update(cancel=[b["id"] for b in fp.cancel], close=[(c["symbol"], c["side"], c["qty"]) for c in fp.close])
        else:  # the emergency liquidation closes everything there is when it runs: churn never blocks it
            lines.append("(everything at the moment it runs: positions or orders that change meanwhile are included)")
        return Plan("flatten", effect, tuple(lines), {"flatten": fp.as_dict()})

    async def _plan_set_limit(self, command: SetLimit) -> Plan:
        gate = self.engine.gate
        try:
            old, new = gate.validate_limit(command.key, command.value)
        except ConfigError as exc:
            raise CommandRefused(str(exc)) from None
        shown_old = gate.limits_dict()[command.key]
        shown_new = gate.show_limit(new)
        return Plan("risk_set", {"key": command.key, "from": shown_old, "to": shown_new},
                    (f"SET risk.{command.key}: {shown_old} -> {shown_new} (persisted, survives a restart).",))

    async def _plan_set_allocation(self, command: SetAllocation) -> Plan:
        capital = self.engine.gate.capital
        oms = self._oms
        if capital.equity_at_start is None:
            raise CommandRefused("the engine is still starting (the equity at start is not known yet): try again in "
                                 "a moment")
        try:
            old, new = capital.validated(command.strategy, command.value)
        except ConfigError as exc:
            raise CommandRefused(str(exc)) from None
        name = command.strategy.strip()
        equity = capital.equity_at_start
        shown_old = old.describe(equity) if old is not None else "none"
        shown_new = new.describe(equity) if new is not None else "none (not limited by an allocation)"
        lines = [f"SET allocation.{name}: {shown_old} -> {shown_new} (persisted, survives a restart)."]
        if new is not None and new.percent is not None:
            lines.append(f"{new.given} of the equity at start {text.money(equity)} ({capital.equity_source}).")
        used = capital.exposure(name, oms.view)
        amount = new.amount(equity) if new is not None else None
        if amount is not None and used is not None and used > amount:
            lines.append(f"{name} already uses {text.money(used)}: until its gross exposure is within, only its "
                         f"orders that do not grow it pass.")
        return Plan("allocation_set", {"strategy": name, "from": old.given if old else None,
                                       "to": new.given if new else None},
                    tuple(lines), {"used": None if used is None else text.money(used)})

    async def _plan_set_strategy(self, command: SetStrategy) -> Plan:
        strategy = next((s for s in self.engine.strategies if s.name == command.strategy), None)
        if strategy is None:
            known = ", ".join(s.name for s in self.engine.strategies) or "none"
            raise CommandRefused(f"no strategy named {command.strategy!r} (known: {known})")
        cancel = [] if command.enabled else [o.client_order_id for o in self._working() if o.strategy == strategy.name]
        word = "ENABLE" if command.enabled else "DISABLE"
        lines = [f"{word} strategy {strategy.name} (now {'enabled' if strategy.enabled else 'disabled'})."]
        if cancel:
            lines.append(f"Its {len(cancel)} working order(s) are cancelled.")
        return Plan("strategy", {"strategy": strategy.name, "from": strategy.enabled, "to": command.enabled,
                                 "cancel": cancel}, tuple(lines))

    async def _plan_override(self, command: OverridePosition) -> Plan:
        if not command.reason or not command.reason.strip():
            raise CommandRefused("a position override needs a reason (--reason TEXT): it is for when the book is "
                                 "known to be wrong, and the audit trail must say why")
        sym = self._new_or_known(command.symbol, command.new_symbol)
        qty = parse_qty("qty", command.qty)
        cost = parse_price("avg-cost", command.avg_cost)
        if cost < 0 or (qty != 0 and cost == 0):
            raise CommandRefused(f"avg-cost must be positive for a nonzero position, got {command.avg_cost!r}")
        pos = self.engine.portfolio.positions.get(sym)
        held = pos.qty if pos is not None else ZERO
        delta = qty - held
        if delta == ZERO:
            raise CommandRefused(f"the book already holds {text.qty(held)} {sym}: nothing to override (the average "
                                 f"cost follows from the fills)")
        avg = pos.avg_cost if pos is not None else ZERO
        try:
            fills = adjustment_fills(held, avg, qty, cost)
        except ValueError as exc:
            raise CommandRefused(f"{sym}: {exc}") from None
        owners = self._owners_moved(OPERATOR, sym, delta)
        lines = [f"OVERRIDE {sym}: {text.qty(held)} @ {text.price(avg)} -> {text.qty(qty)}, booked as adjustment "
                 f"fill(s) with no commission and no realized P&L:"]
        lines += [f"  {_side(f.signed_qty)} {text.qty(abs(f.signed_qty))} @ {text.reported_price(f.price)}" for f in fills]
        if held and qty and (held > 0) == (qty > 0) and abs(qty) < abs(held) and cost != avg:
            lines.append(f"  the average cost stays {text.price(avg)}: a reduction books no P&L, so {text.price(cost)} "
                         "is not used")
        lines.append("Cash and the owners' books follow: " + _owners_line(owners) + ".")
        return Plan("position_set", {"symbol": sym, "from": text.qty(held), "to": text.qty(qty),
                                     "fills": [[str(f.signed_qty), str(f.price)] for f in fills], "owners": owners},
                    tuple(lines))

    def _new_or_known(self, raw: str, new_symbol: bool) -> str:
        try:
            return self._symbol(raw)
        except CommandRefused as exc:
            if new_symbol and str(exc).startswith("unknown symbol"):
                return self._symbol(raw, allow_new=True)
            if str(exc).startswith("unknown symbol"):
                raise CommandRefused(f"{exc}; to override a position in a symbol the engine does not trade, "
                                     f"add --new-symbol") from None
            raise

    def _owners_moved(self, owner: str, symbol: str, delta: Decimal) -> dict[str, str]:
        return {o: text.qty(q) for o, q in self.engine.portfolio.allocate(owner, symbol, delta)}

    async def _plan_order(self, command: ManualOrder) -> Plan:
        try:
            side = Side((command.side or "").strip().upper())
        except ValueError:
            raise CommandRefused(f"side must be buy or sell, got {command.side!r}") from None
        sym = self._symbol(command.symbol)
        qty = parse_qty("qty", command.qty, positive=True)
        limit = None if command.limit in (None, "") else parse_price("limit", command.limit, positive=True)
        req = self._request(side, sym, qty, limit)
        refusal = self.engine.gate.check(req, self._oms.view, admit=False)
        if refusal is not None:
            raise CommandRefused(f"refused by the risk gate: {refusal}")
        where = f"limit {text.price(limit)}" if limit is not None else "at market"
        mark = self._mark(sym)
        return Plan("order", {"side": str(side), "symbol": sym, "qty": text.qty(qty),
                              "limit": None if limit is None else str(limit)},
                    (f"ORDER {side} {text.qty(qty)} {sym} {where} (DAY), as the operator"
                     + (f"; last {text.price(mark)}." if mark is not None else "."),))

    def _request(self, side: Side, sym: str, qty: Decimal, limit: Decimal | None) -> OrderRequest:
        return OrderRequest(OPERATOR, sym, side, qty, OrderType.LIMIT if limit is not None else OrderType.MARKET,
                            limit, source="operator")

    async def _plan_resolve(self, command: ResolveBreak) -> Plan:
        sym = self._symbol(command.symbol)
        act = (command.action or "").strip().lower()
        if act not in RESOLUTIONS:
            raise CommandRefused(f"resolution must be one of {', '.join(RESOLUTIONS)}, got {command.action!r}")
        rec = self.engine.reconciler
        brk = rec.breaks.get(sym)
        if brk is None:
            raise CommandRefused(f"no reconciliation break on {sym} (breaks: {', '.join(sorted(rec.breaks)) or 'none'})")
        lines = [f"RESOLVE the {sym} break by {act.upper()}:"] + [f"  {d}" for d in brk.differences]
        effect: dict[str, Any] = {"symbol": sym, "action": act, "differences": [d.as_dict() for d in brk.differences]}
        broker = self.engine.broker
        if act != "adopt" and broker.connected:
            theirs = {p.symbol: p for p in await broker.positions()}.get(sym)
            effect["broker_qty"] = text.qty(theirs.qty if theirs is not None else ZERO)
            lines.append(f"The book's {sym} position becomes the broker's {effect['broker_qty']} (adjustment fills, no "
                         "realized P&L).")
        lines.append({"accept": "the engine takes the broker's position (an adjustment fill), orders and executions.",
                      "adopt": "the broker's unknown open orders are tracked as the engine's.",
                      "flatten": "accept the broker's view, then flatten the symbol (reduce-only until resume)."}[act])
        return Plan("resolve", effect, tuple(lines))

    # ---- execution -----------------------------------------------------------------

    async def _halt(self, command: Halt, plan: Plan) -> CommandResult:
        gate = self.engine.gate
        before = gate.state
        gate.set_state(TradingState.HALTED, reason=f"operator halt by {command.actor}"
                       + (f": {command.reason}" if command.reason else ""))
        message = f"trading HALTED (was {before}); working orders stay: cancel them with cancel-all"
        self._audit(command, before=before, after=gate.state, message=message)
        return CommandResult(message, {"trading_state": str(gate.state), "plan": plan.as_dict()})

    async def _resume(self, command: Resume, plan: Plan) -> CommandResult:
        gate = self.engine.gate
        before = gate.state
        try:
            gate.set_state(TradingState.ACTIVE, reason=f"operator resume by {command.actor}"
                           + (f": {command.reason}" if command.reason else ""))
        except ValueError as exc:
            raise CommandRefused(str(exc)) from None
        stopped = None
        if self.liquidation is not None and not self.liquidation.done:
            self.liquidation.stopped = f"resumed by {command.actor}"
            stopped = self.liquidation.job_id
        cleared = sorted(gate.reduce_only_symbols)
        self.engine.set_reduce_only(set())
        message = f"trading ACTIVE (was {before})" + (f"; reduce-only ended for {', '.join(cleared)}" if cleared else "")
        self._audit(command, before=before, after=gate.state, message=message, stopped_liquidation=stopped,
                    reduce_only_cleared=cleared)
        self.engine.deadman.confirm(command.actor)  # whoever resumes is evidently present
        return CommandResult(message, {"trading_state": str(gate.state)})

    async def _cancel_all(self, command: CancelAll, plan: Plan) -> CommandResult:
        oms = self._oms
        targets = list(oms.open_orders.values())
        asked = [o.client_order_id for o in targets if oms.cancel(o.client_order_id)]
        message = f"cancel requested for {len(asked)} order(s)"
        self._audit(command, before=len(targets), after=len(oms.open_orders), message=message, cancelled=asked)
        return CommandResult(message, {"cancelled": asked})

    async def _flatten(self, command: Flatten, plan: Plan) -> CommandResult:
        """Flatten all: HALTED, cancel every order, close every position (the emergency
        liquidation). Flatten one symbol: that symbol goes reduce-only until resume, its
        orders are cancelled and its position closed; other symbols trade on."""
        oms = self._oms
        gate = self.engine.gate
        fp = self.flatten_plan(command.symbol)
        before = {"trading_state": str(gate.state), "positions": fp.close}
        if fp.symbols is None:
            gate.set_state(TradingState.HALTED, reason=f"flatten all by {command.actor}")
            targets = list(oms.open_orders.values())
        else:
            self.engine.set_reduce_only(gate.reduce_only_symbols | set(fp.symbols))
            targets = [o for o in oms.open_orders.values() if o.symbol in fp.symbols]
        cancelled = [o.client_order_id for o in targets if oms.cancel(o.client_order_id)]
        self._jobs += 1
        job = Liquidation(
            job_id=f"flatten-{self._jobs}", started_at=self.engine.clock.now(), actor=command.actor,
            symbols={c["symbol"]: SymbolProgress(c["symbol"], Decimal(c["qty"])) for c in fp.close},
            cancelled=cancelled,
        )
        if self.liquidation is not None and not self.liquidation.done:
            self.liquidation.stopped = f"superseded by {job.job_id}"
        self.liquidation = job
        message = (f"{job.job_id}: cancel requested for {len(cancelled)} order(s), closing {len(fp.close)} "
                   f"position(s) (about {text.money(fp.notional)})"
                   + (", trading HALTED" if fp.symbols is None else f", {fp.symbols[0]} reduce-only until resume"))
        self._audit(command, before=before, after={"trading_state": str(gate.state)}, message=message,
                    symbol=command.symbol or "ALL", job_id=job.job_id, cancelled=cancelled, plan=fp.as_dict())
        await self.step_liquidation()
        return CommandResult(message, {"plan": fp.as_dict(), "job": job.summary()})

    async def step_liquidation(self) -> None:
        job = self.liquidation
        if job is None or job.done or self.engine.oms is None:
            return
        if job.step(self.engine.oms, self.engine.portfolio, self.engine.quote_ts):
            await self.engine.oms.send_pending()
        if job.done:
            outcome = ", ".join(f"{s} {p.outcome}" for s, p in job.symbols.items())
            log.warning("%s finished: %s", job.job_id, outcome or "nothing to close")
            self.engine.bus.publish(LiquidationFinished(job.job_id, job.actor, job.summary()))
        await self.engine.commit()

    async def _order(self, command: ManualOrder, plan: Plan) -> CommandResult:
        oms = self._oms
        e = plan.effect
        side, sym, qty = Side(e["side"]), e["symbol"], Decimal(e["qty"])
        limit = None if e["limit"] is None else Decimal(e["limit"])
        order = oms.submit(self._request(side, sym, qty, limit), TimeInForce.DAY)
        if order is None:
            raise CommandRefused(f"refused by the risk gate: {oms.last_refusal or 'refused'}")
        where = f" @ {text.price(limit)}" if limit is not None else " at market"
        message = f"sent order {order.client_order_id}: {side} {text.qty(qty)} {sym}{where}"
        self._audit(command, before=None, after=order.client_order_id, message=message, side=side, symbol=sym,
                    qty=qty, limit=limit)
        await oms.send_pending()
        return CommandResult(message, {"order_id": order.client_order_id, "status": str(order.status)})

    def strategies(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "enabled": s.enabled, "symbols": list(s.symbols),
                 "may_short": s.may_short} for s in self.engine.strategies]

    async def _set_strategy(self, command: SetStrategy, plan: Plan) -> CommandResult:
        strategy = next(s for s in self.engine.strategies if s.name == command.strategy)
        before = strategy.enabled
        strategy.enabled = command.enabled
        cancelled: list[str] = []
        if not command.enabled:
            oms = self._oms
            cancelled = [o.client_order_id for o in list(oms.open_orders.values())
                         if o.strategy == strategy.name and oms.cancel(o.client_order_id)]
        self.engine.persist_setting(f"strategy.{strategy.name}.enabled", "true" if command.enabled else "false")
        word = "enabled" if command.enabled else "disabled"
        extra = f"; cancel requested for its {len(cancelled)} working order(s)" if cancelled else ""
        message = f"strategy {strategy.name} {word} (was {'enabled' if before else 'disabled'}){extra}"
        self._audit(command, before=before, after=command.enabled, message=message, subject=strategy.name,
                    strategy=strategy.name, cancelled=cancelled)
        return CommandResult(message, {"name": strategy.name, "enabled": command.enabled, "cancelled": cancelled})

    def risk_limits(self) -> dict[str, str]:
        return self.engine.gate.limits_dict()

    async def _set_limit(self, command: SetLimit, plan: Plan) -> CommandResult:
        try:
            old, _new = self.engine.gate.set_limit(command.key, command.value)
        except ConfigError as exc:
            raise CommandRefused(str(exc)) from None
        shown = self.engine.gate.limits_dict()[command.key]
        self.engine.persist_setting(f"risk.{command.key}", shown)
        message = f"risk.{command.key}: {plan.effect['from']} -> {shown} (persisted)"
        self._audit(command, before=plan.effect["from"], after=shown, message=message, key=command.key)
        return CommandResult(message, {"key": command.key, "old": plan.effect["from"], "new": shown})

    async def _set_allocation(self, command: SetAllocation, plan: Plan) -> CommandResult:
        capital = self.engine.gate.capital
        try:
            _old, new = capital.validated(command.strategy, command.value)
        except ConfigError as exc:
            raise CommandRefused(str(exc)) from None
        name = plan.effect["strategy"]
        capital.replace(name, new)
        after = new.given if new is not None else None
        amount = capital.amount(name)
        self.engine.persist_setting(f"allocation.{name}", after or "none")
        self.engine.bus.publish(AllocationChanged(name, plan.effect["from"], after, amount, command.actor,
                                                  command.reason))
        shown = new.describe(capital.equity_at_start) if new is not None else "none"
        message = f"allocation.{name}: {plan.effect['from'] or 'none'} -> {shown} (persisted)"
        self._audit(command, before=plan.effect["from"], after=after, message=message, subject=name, strategy=name,
                    amount=amount)
        return CommandResult(message, {"strategy": name, "old": plan.effect["from"], "new": after,
                                       "allocation": None if amount is None else serialize.money(amount)})

    async def _override(self, command: OverridePosition, plan: Plan) -> CommandResult:
        sym = plan.effect["symbol"]
        book = self.engine.portfolio.position(sym)
        before = {"qty": text.qty(book.qty), "avg_cost": text.price(book.avg_cost)}
        booked = [self._oms.book_adjustment(sym, Decimal(q), Decimal(p), owner=OPERATOR, actor=command.actor,
                                            reason=command.reason or "position override")
                  for q, p in plan.effect["fills"]]
        after = {"qty": text.qty(book.qty), "avg_cost": text.price(book.avg_cost)}
        ids = [b.fill.exec_id for b in booked]
        message = (f"position {sym}: {before['qty']} @ {before['avg_cost']} -> {after['qty']} @ {after['avg_cost']} "
                   f"(adjustment fill {', '.join(ids)})")
        self._audit(command, before=before, after=after, message=message, subject=sym, symbol=sym, exec_ids=ids)
        return CommandResult(message, {"symbol": sym, "before": before, "after": after, "exec_id": ids[-1],
                                       "exec_ids": ids})

    async def _reconcile(self, command: Reconcile, plan: Plan) -> CommandResult:
        result = await self.engine.reconciler.run(f"asked by {command.actor}")
        return CommandResult(str(result), {"pass": result.as_dict(), "breaks": self.engine.reconciler.views()})

    async def _resolve(self, command: ResolveBreak, plan: Plan) -> CommandResult:
        """Settle a reconciliation break on the plan's symbol, then unblock it:

        - accept: the engine takes the broker's view: its position (booked as an adjustment
          fill at the broker's average cost, or the last price when the broker holds none),
          its open orders (unknown ones adopted), and engine orders the broker does not have
          are cancelled;
        - adopt: only the broker's unknown open orders are adopted (the break stays if
          anything else differs);
        - flatten: accept, then flatten the symbol (its orders cancelled, position closed,
          the symbol reduce-only until resume).
        """
        sym, act = plan.effect["symbol"], plan.effect["action"]
        rec = self.engine.reconciler
        brk = rec.breaks[sym]
        broker = self.engine.broker
        if not broker.connected:
            raise CommandRefused(f"the broker is not connected ({broker.status}): its view cannot be read now")
        oms = self._oms
        broker_orders = [o for o in await broker.open_orders() if o.symbol == sym]
        # Everything that can refuse is asked before anything changes: a refused resolve leaves
        # no adopted order, cancelled order or adjustment fill behind.
        theirs = None
        if act in ("accept", "flatten"):
            theirs = {p.symbol: p for p in await broker.positions()}.get(sym)
            if sym in broker.in_flight_symbols():
                raise CommandRefused(f"{sym}: a fill or an order is on its way at the broker; accept again in a "
                                     f"moment, once it has arrived")
            target = theirs.qty if theirs is not None else ZERO
            if text.qty(target) != plan.effect.get("broker_qty", text.qty(target)):
                raise PlanChanged(await self._plan(command))
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
                       and oms.settle_missing(coid, f"not at the broker: {command.actor} accepted the broker's view")]
            pos = self.engine.portfolio.position(sym)
            before = {"qty": text.qty(pos.qty), "avg_cost": text.price(pos.avg_cost)}
            target = theirs.qty if theirs is not None else ZERO
            cost = theirs.avg_cost if theirs is not None and theirs.qty and theirs.avg_cost > 0 else pos.avg_cost
            exec_id = None
            try:
                fills = adjustment_fills(pos.qty, pos.avg_cost, target, cost)
            except ValueError:
                fills = adjustment_fills(pos.qty, pos.avg_cost, ZERO, cost) + adjustment_fills(ZERO, ZERO, target, cost)
            for fill in fills:
                exec_id = oms.book_adjustment(sym, fill.signed_qty, fill.price, owner=EXTERNAL, actor=command.actor,
                                              reason=f"accepted the broker's view of {sym}").fill.exec_id
            accepted = [d.key for d in brk.differences if d.kind is DiffKind.MISSING_EXECUTION]
            rec.accepted_execs.update(accepted)
            done.update(cancelled_missing=settled, position_before=before, accepted_missing_execs=accepted,
                        adjustment=exec_id,
                        position_after={"qty": text.qty(pos.qty), "avg_cost": text.price(pos.avg_cost)})
        remaining = [d for d in brk.differences if d.kind is not DiffKind.UNKNOWN_ORDER] if act == "adopt" else []
        if remaining:
            brk.differences = remaining
            message = (f"{sym}: adopted {len(adopted)} order(s); the break stays: {brk.summary()} "
                       f"(accept or flatten to settle it)")
            self._audit(command, before=brk.summary(), after="break stays", message=message, subject=sym, symbol=sym,
                        resolution=act, **done)
            return CommandResult(message, {"symbol": sym, "resolved": False, **done})
        rec.clear(sym)
        self.engine.bus.publish(BreakResolved(sym, act, command.actor))
        message = f"{sym}: break resolved ({act})"
        self._audit(command, before=brk.summary(), after="resolved", message=message, subject=sym, symbol=sym,
                    resolution=act, **done)
        if act == "flatten":
            flat = await self.execute(Flatten(command.actor, command.reason or "resolving a reconciliation break",
                                              symbol=sym))
            done["flatten"] = flat.data
            message += f"; {flat.message}"
        return CommandResult(message, {"symbol": sym, "resolved": True, **done})

    async def _backup(self, command: Backup, plan: Plan) -> CommandResult:
        try:
            made = await self.engine.backups.take(MANUAL, command.actor)
        except BackupError as exc:
            raise CommandRefused(str(exc)) from None
        message = f"backup written: {made.path} ({made.size / 1e6:.1f} MB; integrity and audit chain checked)"
        self._audit(command, before=None, after=made.name, message=message, subject=made.name, size=made.size)
        return CommandResult(message, {"backup": {**made.as_dict(), "path": str(made.path), "verified": True},
                                       "pruned": list(self.engine.backups.last_pruned)})

    async def _confirm(self, command: ConfirmPresence, plan: Plan) -> CommandResult:
        view = self.engine.deadman.confirm(command.actor)
        left = f"{view.seconds_left:.0f}s left" if view.seconds_left is not None else str(view.phase)
        return CommandResult(f"presence confirmed: dead-man {view.phase}, {left}",
                             {"phase": str(view.phase), "seconds_left": view.seconds_left})

    # ---- the keyword forms the cockpit, the API and the tests call -------------------

    async def halt(self, *, actor: str, reason: str | None = None, plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(Halt(actor, reason), plan)

    async def resume(self, *, actor: str, reason: str | None = None, plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(Resume(actor, reason), plan)

    async def cancel_all(self, *, actor: str, reason: str | None = None,
                         plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(CancelAll(actor, reason), plan)

    def cancel_all_preview(self) -> list[dict[str, str]]:
        return [_order_brief(o) for o in self._working()]

    async def flatten(self, symbol: str | None, *, actor: str, reason: str | None = None,
                      plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(Flatten(actor, reason, symbol=symbol), plan)

    async def manual_order(self, side: str, symbol: str, qty: str | Decimal, limit: str | Decimal | None = None,
                           *, actor: str, reason: str | None = None, plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(ManualOrder(actor, reason, side=side, symbol=symbol, qty=qty, limit=limit), plan)

    async def set_strategy(self, name: str, enabled: bool, *, actor: str, reason: str | None = None,
                           plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(SetStrategy(actor, reason, strategy=name, enabled=enabled), plan)

    async def set_limit(self, key: str, value: str, *, actor: str, reason: str | None = None,
                        plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(SetLimit(actor, reason, key=key, value=value), plan)

    async def set_allocation(self, strategy: str, value: str, *, actor: str, reason: str | None = None,
                             plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(SetAllocation(actor, reason, strategy=strategy, value=value), plan)

    async def set_position(self, symbol: str, qty: str | Decimal, avg_cost: str | Decimal, *, actor: str,
                           reason: str | None, new_symbol: bool = False,
                           plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(OverridePosition(actor, reason, symbol=symbol, qty=qty, avg_cost=avg_cost,
                                                   new_symbol=new_symbol), plan)

    async def reconcile(self, *, actor: str) -> CommandResult:
        return await self.execute(Reconcile(actor))

    async def resolve_break(self, symbol: str, action: str, *, actor: str, reason: str | None = None,
                            plan: Plan | str | None = None) -> CommandResult:
        return await self.execute(ResolveBreak(actor, reason, symbol=symbol, action=action), plan)

    async def confirm(self, *, actor: str) -> CommandResult:
        return await self.execute(ConfirmPresence(actor))

    async def backup(self, *, actor: str, reason: str | None = None) -> CommandResult:
        return await self.execute(Backup(actor, reason))


def _order_brief(o: Order) -> dict[str, str]:
    return {"id": o.client_order_id, "strategy": o.strategy, "symbol": o.symbol, "side": str(o.side),
            "qty": text.qty(o.remaining), "type": str(o.order_type),
            "limit": "" if o.limit_price is None else text.price(o.limit_price)}


def _brief_line(b: dict[str, str]) -> str:
    where = f" @ {b['limit']}" if b["limit"] else ""
    return f"  cancel {b['id']}: {b['side']} {b['qty']} {b['symbol']} {b['type']}{where} ({b['strategy']})"


def _side(signed: Decimal) -> str:
    return "BUY" if signed > 0 else "SELL"


def _owners_line(owners: dict[str, str]) -> str:
    return ", ".join(f"{o} {q}" for o, q in owners.items())


Controls = CommandHandler  # the name the cockpit and the tests know

__all__ = ["LIQUIDATION", "MAX_PRICE", "MAX_QTY", "PRICE_PLACES", "CommandHandler", "CommandRefused", "CommandResult",
           "Controls", "FlattenPlan", "Plan", "PlanChanged", "parse_decimal", "parse_price", "parse_qty"]
