"""CLI commands against a running engine, through its control API on the state dir's socket.

`status`, `flatten`, `cancel-all`, `halt`, `resume`, `strategy`, `risk`, `allocation`, `position set`,
`order`, `confirm`, `breaks`, `reconcile`, `resolve`. With no engine running, each says so and exits 1; a refused command
prints the engine's reason and exits 1; `--json` prints data as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

COMMANDS = ("status", "flatten", "cancel-all", "halt", "resume", "strategy", "risk", "allocation", "position", "order",
            "confirm", "breaks", "reconcile", "resolve")


def add_control_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    def parser(name: str, helptext: str, *, json_out: bool = False, reason: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext)
        common(p)
        if json_out:
            p.add_argument("--json", action="store_true", help="print JSON")
        if reason:
            p.add_argument("--reason", metavar="TEXT", help="why (recorded in the audit trail)")
        return p

    parser("status", "the running engine: trading state, broker, feeds, strategies, dead-man, limits",
           json_out=True, reason=False)
    p = parser("flatten", "cancel orders and close positions: one symbol, or --all (emergency liquidation)",
               json_out=True)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("symbol", nargs="?", metavar="SYMBOL", help="the symbol to flatten")
    target.add_argument("--all", action="store_true", help="everything: trading goes HALTED first")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--no-wait", action="store_true", help="return once started; do not wait until flat")
    p.add_argument("--wait", type=float, default=30.0, metavar="SECONDS", help="how long to wait for flat (30)")
    p.add_argument("--direct", action="store_true",
                   help="with --all: no engine; connect to IB Gateway, cancel every order, close every position")
    p.add_argument("--client-id", type=int, metavar="N",
                   help="with --direct: the API client id (default: ibkr.client_id; pick another if it is in use)")
    p = parser("cancel-all", "cancel every working order", json_out=True)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser("halt", "stop all new orders (cancels still pass); working orders stay", json_out=True)
    parser("resume", "leave HALTED/REDUCING: trade again (also confirms presence)", json_out=True)
    p = parser("strategy", "list, enable or disable strategies", json_out=True)
    p.add_argument("action", choices=("list", "enable", "disable"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p = parser("risk", "show or set risk limits (a change is persisted)", json_out=True)
    p.add_argument("action", choices=("show", "set"))
    p.add_argument("key", nargs="?", metavar="KEY")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p = parser("allocation", "show or set the capital each strategy may use (a change is persisted)", json_out=True)
    p.add_argument("action", nargs="?", choices=("show", "set"), default="show")
    p.add_argument("strategy", nargs="?", metavar="STRATEGY")
    p.add_argument("value", nargs="?", metavar="VALUE",
                   help='money (50000), a percentage of the equity at start ("25%%"), or none')
    p = parser("position", "override the engine's position for a symbol (when the book is known wrong)",
               json_out=True, reason=False)
    p.add_argument("action", choices=("set",))
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("qty", metavar="QTY")
    p.add_argument("--avg-cost", required=True, metavar="X", help="average cost per share")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why the book is wrong (audited)")
    p.add_argument("--new-symbol", action="store_true",
                   help="the symbol is not one the engine trades: override it anyway")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p = parser("order", "a manual order, through the risk gate like any other", json_out=True)
    p.add_argument("side", choices=("buy", "sell"))
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("qty", metavar="QTY")
    p.add_argument("--limit", metavar="PRICE", help="limit price (default: market order)")
    parser("confirm", "confirm presence to the dead-man switch", json_out=True, reason=False)
    parser("breaks", "reconciliation breaks: where the engine's book and the broker's differ", json_out=True,
           reason=False)
    parser("reconcile", "compare the engine's book with the broker's now", json_out=True, reason=False)
    p = parser("resolve", "settle a reconciliation break and unblock its symbol", json_out=True)
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("action", choices=("accept", "adopt", "flatten"),
                   help="accept the broker's view, adopt its unknown orders, or flatten the symbol")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


class ControlCliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def run_control(command: str, args: argparse.Namespace, socket_path: Any) -> int:
    from cockpit.control.client import ApiRefused, ControlClient, NoEngine

    try:
        with ControlClient(socket_path) as client:
            return _COMMANDS[command](client, args)
    except NoEngine as exc:
        raise ControlCliError(str(exc)) from None
    except ApiRefused as exc:
        raise ControlCliError(str(exc)) from None


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)
    return 0


def _confirm(args: argparse.Namespace, question: str) -> None:
    if getattr(args, "yes", False):
        return
    print(question)  # what would happen, even when we cannot ask
    if not sys.stdin.isatty():
        raise ControlCliError("refusing without confirmation: no terminal to ask on; pass --yes", 2)
    if input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes"):
        raise ControlCliError("cancelled: nothing was done")


def _planned(client: Any, args: argparse.Namespace, path: str, **body: Any) -> dict[str, Any]:
    """Ask the engine for the command's plan (bad input is refused here, before any question),
    show it, confirm, and send it with the plan's fingerprint: the engine runs it only if the
    plan still holds, else it answers with the new plan and we ask again."""
    from cockpit.control.client import ApiRefused

    if getattr(args, "yes", False):
        return client.post(path, **body)
    plan = client.post(f"{path}/plan", **body)
    while True:
        _confirm(args, "\n".join(plan["lines"]))
        try:
            return client.post(path, plan=plan["fingerprint"], **body)
        except ApiRefused as exc:
            if "the plan changed since it was shown" not in str(exc):
                raise
            print("the state moved while you decided; the command was not run.")
            plan = client.post(f"{path}/plan", **body)


def _feed_line(f: dict[str, Any], alone: bool) -> str:
    """One feed source: the active one with its event count, the others (standby) with their health."""
    health = "healthy" if f.get("healthy", True) else f"UNHEALTHY: {f.get('reason', '')}"
    quarantined = f", {f['quarantined']:,} quarantined" if f.get("quarantined") else ""
    if f.get("delayed"):
        quarantined += f", NOT LIVE: {f.get('not_live')}"
    if f.get("active", True):
        role = "" if alone else f" ACTIVE, {health}"
        if alone and not f.get("healthy", True):
            role = f" {health}"
        return f"feed      {f['name']} ({f['kind']}){role}: {f['events']:,} events, last {f['last_event_at']}{quarantined}"
    return f"          {f['name']} ({f['kind']}) standby, {health}{quarantined}"


def _status(client: Any, args: argparse.Namespace) -> int:
    s = client.get("/status")
    dm = s["deadman"]
    left = f", {dm['seconds_left']:.0f}s left" if dm["seconds_left"] is not None else ""
    lines = [
        *_refused_lines(s),
        f"trading   {s['trading_state']}" + (f" ({s['trading_reason']})" if s["trading_reason"] else ""),
        f"mode      {s['mode']}, broker {s['broker']['kind']} "
        f"{'connected' if s['broker']['connected'] else 'DISCONNECTED'}: {s['broker']['status']}",
        *(_feed_line(f, len(s["feeds"]) == 1)
          for f in sorted(s["feeds"], key=lambda f: not f.get("active", True))),  # the active one first
        "strategies " + ", ".join(f"{x['name']} {'on' if x['enabled'] else 'OFF'}"
                                  + (f" (quarantined on {', '.join(x['quarantined'])})" if x.get("quarantined") else "")
                                  for x in s["strategies"]),
        f"dead-man  {dm['phase']}{left} (every {dm['interval_seconds']}s, on miss: {dm['action']})",
        f"account   equity {_money(s['account']['equity'])}, day P&L {_money(s['account']['day_pnl'])}, "
        f"{len(s['positions'])} position(s), {s['open_orders']} open order(s)",
        "risk      " + ", ".join(f"{k}={v}" for k, v in s["risk"].items()),
        "allocation " + _allocation_summary(s["allocation"]),
    ]
    if s["reduce_only_symbols"]:
        lines.append("reduce-only " + ", ".join(s["reduce_only_symbols"]))
    if s["hold"]:
        lines.append(f"HOLD      {s['hold']}")
    if s.get("feed_hold"):
        lines.append(f"HELD      strategy orders {s['feed_hold']} (operator orders and flattens still go)")
    if s["breaks"]:
        lines.append("BREAKS    " + ", ".join(b["symbol"] for b in s["breaks"]) + " (blocked: `cockpit breaks`)")
    return _out(args, s, "\n".join(lines))


def _refused_lines(s: dict[str, Any]) -> list[str]:
    """A parked run (a LIVE start the go-live check refused) says so first."""
    if s.get("run_state") != "refused":
        return []
    failing = ", ".join((s.get("preflight") or {}).get("failing") or []) or "?"
    return [f"run       REFUSED: the go-live check fails ({failing}); parked: nothing is sent, no broker session, "
            "waiting for a stop (fix them: `cockpit preflight`; then restart)"]


def _flatten(client: Any, args: argparse.Namespace) -> int:
    symbol = None if args.all else args.symbol
    started = _planned(client, args, "/flatten", symbol=symbol, reason=args.reason)
    plan = started["plan"]
    job = started["job"]
    if not args.no_wait:
        deadline = time.monotonic() + args.wait
        while not job["done"] and time.monotonic() < deadline:
            time.sleep(0.2)  # polling a remote engine, not waiting on our own timer
            job = client.get("/flatten/job")
    lines = [started["message"]]
    for sym, p in job["symbols"].items():
        lines.append(f"  {sym}: {p['outcome']} (from {p['start_qty']}, {p['attempts']} attempt(s), orders "
                     f"{', '.join(p['orders']) or '-'})" + (f"; last refusal: {p['last_refusal']}"
                                                            if p["last_refusal"] else ""))
    if not job["done"]:
        lines.append(f"  still working after {args.wait:.0f}s: `cockpit status` shows progress")
    _out(args, {"plan": plan, "job": job}, "\n".join(lines))
    return 0 if job["done"] and all(p["outcome"] == "flat" for p in job["symbols"].values()) else 1


def _cancel_all(client: Any, args: argparse.Namespace) -> int:
    r = _planned(client, args, "/cancel-all", reason=args.reason)
    return _out(args, r, r["message"])


def _money(value: str) -> str:
    """Money from the API's exact text, to the cent, for people (core.domain.text.money)."""
    from decimal import Decimal, InvalidOperation

    from core.domain import text

    try:
        return text.money(Decimal(value))
    except (InvalidOperation, ArithmeticError, TypeError, ValueError):  # never a traceback over a shown value
        return str(value)


def _simple(path: str) -> Callable[[Any, argparse.Namespace], int]:
    def run(client: Any, args: argparse.Namespace) -> int:
        r = client.post(path, reason=getattr(args, "reason", None))
        return _out(args, r, r["message"])

    return run


def _strategy(client: Any, args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = client.get("/strategies")
        return _out(args, rows, "\n".join(
            f"{r['name']:<20} {'enabled' if r['enabled'] else 'DISABLED':<9} {', '.join(r['symbols'])}"
            + "".join(f"\n{'':<20} quarantined on {sym}: {err}" for sym, err in sorted(r.get("quarantined", {}).items()))
            for r in rows))
    if not args.name:
        raise ControlCliError(f"strategy {args.action} needs a NAME (see `cockpit strategy list`)", 2)
    r = client.post(f"/strategies/{args.name}", enabled=args.action == "enable", reason=args.reason)
    return _out(args, r, r["message"])


def _risk(client: Any, args: argparse.Namespace) -> int:
    if args.action == "show":
        limits = client.get("/risk")
        return _out(args, limits, "\n".join(f"{k:<36} {v}" for k, v in limits.items()))
    if not args.key or args.value is None:
        raise ControlCliError("risk set needs KEY and VALUE, e.g. `cockpit risk set max_order_qty 500`", 2)
    r = client.post("/risk", key=args.key, value=args.value, reason=args.reason)
    return _out(args, r, r["message"])


def _allocation_summary(a: dict[str, Any]) -> str:
    """One line: each strategy's used / allocation, and the ones no allocation covers."""
    parts = []
    for name, r in a["strategies"].items():
        if r["allocation"] is None:
            parts.append(f"{name} none (uses {_money(r['used']) if r['used'] is not None else '?'})")
        else:
            pct = f" {r['used_pct']:.1f}%" if r["used_pct"] is not None else ""
            given = f" ({r['given']})" if r["given"] and r["given"].endswith("%") else ""
            used = _money(r["used"]) if r["used"] is not None else "?"
            parts.append(f"{name} {used} of {_money(r['allocation'])}{given}{pct}")
    line = ", ".join(parts) or "no strategies"
    if a["uncovered"]:
        line += f"; not covered: {', '.join(a['uncovered'])}"
    return line


def _allocation_table(a: dict[str, Any]) -> str:
    base = a["equity_at_start"]
    lines = [f"equity at start {_money(base) if base is not None else '?'}"
             + (f" ({a['equity_source']})" if a["equity_source"] else ""),
             f"{'strategy':<20} {'allocation':>16} {'given':>10} {'used':>16} {'remaining':>16} {'used %':>7}"]
    def cell(value: str | None) -> str:
        return _money(value) if value is not None else "-"

    for name, r in a["strategies"].items():
        pct = f"{r['used_pct']:.1f}" if r["used_pct"] is not None else "-"
        off = "" if r["enabled"] else " (disabled)"
        lines.append(f"{name + off:<20} {cell(r['allocation']):>16} {r['given'] or 'none':>10} {cell(r['used']):>16} "
                     f"{cell(r['remaining']):>16} {pct:>7}")
    if a["uncovered"]:
        lines.append(f"not covered by an allocation (unlimited by one): {', '.join(a['uncovered'])}")
    return "\n".join(lines)


def _allocation(client: Any, args: argparse.Namespace) -> int:
    if args.action == "show":
        if args.strategy is not None:
            raise ControlCliError("allocation show takes no STRATEGY (it lists every one); to change one: "
                                  "`cockpit allocation set STRATEGY VALUE`", 2)
        a = client.get("/allocation")
        return _out(args, a, _allocation_table(a))
    if not args.strategy or args.value is None:
        raise ControlCliError('allocation set needs STRATEGY and VALUE, e.g. `cockpit allocation set sma_cross 50000` '
                              'or `... sma_cross 25%` (or none)', 2)
    r = client.post("/allocation", strategy=args.strategy, value=args.value, reason=args.reason)
    return _out(args, r, r["message"])


def _position(client: Any, args: argparse.Namespace) -> int:
    r = _planned(client, args, "/position", symbol=args.symbol, qty=args.qty, avg_cost=args.avg_cost,
                 reason=args.reason, new_symbol=args.new_symbol)
    return _out(args, r, r["message"])


def _order(client: Any, args: argparse.Namespace) -> int:
    r = client.post("/orders", side=args.side, symbol=args.symbol, qty=args.qty, limit=args.limit, reason=args.reason)
    return _out(args, r, r["message"])


def _break_lines(breaks: list[dict[str, Any]]) -> list[str]:
    lines = []
    for b in breaks:
        state = "" if b["present"] else " (no longer differs; still blocked until resolved)"
        lines.append(f"{b['symbol']}: BREAK since {b['found_at']}{state}")
        lines += [f"  {d['kind']} {d['key']}: engine {d['engine']}, broker {d['broker']}" for d in b["differences"]]
    return lines


def _breaks(client: Any, args: argparse.Namespace) -> int:
    r = client.get("/breaks")
    last = r["last_reconcile"]
    head = f"last reconcile: {last['at']} ({last['reason']})" if last else "no reconcile has run yet"
    lines = [head, *(_break_lines(r["breaks"]) or ["no breaks: the engine's book agrees with the broker's"])]
    return _out(args, r, "\n".join(lines))


def _reconcile(client: Any, args: argparse.Namespace) -> int:
    r = client.post("/reconcile")
    _out(args, r, "\n".join([r["message"], *_break_lines(r["breaks"])]))
    return 1 if r["breaks"] else 0


def _resolve(client: Any, args: argparse.Namespace) -> int:
    r = _planned(client, args, "/resolve", symbol=args.symbol, action=args.action, reason=args.reason)
    _out(args, r, r["message"])
    return 0 if r.get("resolved") else 1


_COMMANDS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "status": _status,
    "flatten": _flatten,
    "cancel-all": _cancel_all,
    "halt": _simple("/halt"),
    "resume": _simple("/resume"),
    "strategy": _strategy,
    "risk": _risk,
    "allocation": _allocation,
    "position": _position,
    "order": _order,
    "confirm": _simple("/confirm"),
    "breaks": _breaks,
    "reconcile": _reconcile,
    "resolve": _resolve,
}
