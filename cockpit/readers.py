"""Read-only views of the store for the CLI: no engine needed, safe while one runs (WAL).

A reader never fails on what it finds in a row: a value that is not a number, is NaN or
infinite, beyond any real amount, NULL where the engine always writes one, or of the wrong
type (a BLOB) is shown as ``?`` (text columns: as readable text) with a one-line warning on
stderr naming the table, the row and the stored value; totals that depend on it are ``?`` too.
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from core.domain.serialize import dec, money

ZERO = Decimal(0)
UNREADABLE = "?"
# Far beyond any amount the engine can book (commands cap qty x price at 1e16), and far inside
# what rounds to the cent in Decimal's 28 digits.
PLAUSIBLE = Decimal("1e18")
MAX_PLACES = 30  # the engine writes at most a broker's reported digits; 1e-999999 is not an amount
MAX_WARNINGS = 20
# Sums and products of plausible values, exact and rounded to money's places: 80 digits is
# more than twice what the largest of them (1e18 x 1e18, 8 places each) needs.
PRECISION = 80

Warn = Callable[[str], None]
P = ParamSpec("P")
R = TypeVar("R")


def _exact(func: Callable[P, R]) -> Callable[P, R]:
    """Run a reader in a decimal context wide enough that no sum or rounding can fail."""
    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext() as ctx:
            ctx.prec = PRECISION
            return func(*args, **kwargs)
    return run


exact = _exact  # for the readers in other modules (cockpit/capital_reader.py)


class NoState(Exception):
    """No store in the state dir yet."""


def connect_readonly(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise NoState(f"no cockpit state at {db.parent} (run `cockpit` first, or pass --state-dir DIR)")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    return conn


def stderr_warnings() -> Warn:
    """One line per odd value on stderr, at most MAX_WARNINGS of them, then a count."""
    seen = 0

    def warn(message: str) -> None:
        nonlocal seen
        seen += 1
        if seen <= MAX_WARNINGS:
            line = "".join(c if c.isprintable() else "?" for c in message)  # a stored newline stays on this line
            print(f"cockpit: warning: {line}", file=sys.stderr)
        elif seen == MAX_WARNINGS + 1:
            print("cockpit: warning: more unreadable values not listed", file=sys.stderr)

    return warn


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def number(value: Any, where: str, warn: Warn, *, nullable: bool = False) -> Decimal | None:
    """A stored amount as a Decimal, or None (with a warning) when it is not one a book can hold."""
    if value is None:
        if not nullable:
            warn(f"{where} is NULL: shown as {UNREADABLE}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        warn(f"{where} holds a {type(value).__name__} ({_shown(value)}), not a number: shown as {UNREADABLE}")
        return None
    try:
        parsed = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        warn(f"{where} holds {_shown(value)}, not a number: shown as {UNREADABLE}")
        return None
    if not parsed.is_finite():
        warn(f"{where} holds {_shown(value)}, not a finite number: shown as {UNREADABLE}")
        return None
    exponent = parsed.as_tuple().exponent
    if parsed.copy_abs() > PLAUSIBLE or (isinstance(exponent, int) and exponent < -MAX_PLACES):
        warn(f"{where} holds {_shown(value)}, beyond any real amount: shown as {UNREADABLE}")
        return None
    return parsed


def text(value: Any, where: str, warn: Warn, *, nullable: bool = False) -> str | None:
    """A stored text as text; NULL where the engine always writes one is ``?``, another type is
    shown readably; both with a warning."""
    if value is None:
        if nullable:
            return None
        warn(f"{where} is NULL: shown as {UNREADABLE}")
        return UNREADABLE
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        warn(f"{where} holds {len(value)} bytes of binary data, not text")
        return value.decode("utf-8", "replace")
    return str(value)


def _money(value: Decimal | None) -> str:
    return UNREADABLE if value is None else money(value)


def _dec(value: Decimal | None) -> str:
    return UNREADABLE if value is None else dec(value)


def _sum(values: list[Decimal | None]) -> Decimal | None:
    """The exact sum, or None when any part of it could not be read."""
    total = ZERO
    for v in values:
        if v is None:
            return None
        total += v
    return total


def _positions(conn: sqlite3.Connection, warn: Warn) -> list[dict[str, Any]]:
    """Every position row, numbers parsed (None where unreadable)."""
    out = []
    for r in conn.execute("SELECT * FROM positions ORDER BY symbol"):
        symbol = text(r["symbol"], "positions.symbol", warn) or UNREADABLE
        at = f"positions.{{}} of {symbol}"
        qty = number(r["qty"], at.format("qty"), warn)
        avg = number(r["avg_cost"], at.format("avg_cost"), warn)
        last = number(r["last_price"], at.format("last_price"), warn, nullable=True)
        known_last = r["last_price"] is None or last is not None
        market_value = last * qty if last is not None and qty is not None else None
        if last is None and known_last:
            unrealized: Decimal | None = ZERO  # no mark yet: nothing unrealized to show
        elif qty is not None and avg is not None and last is not None:
            unrealized = (last - avg) * qty if qty else ZERO
        else:
            unrealized = None
        out.append({"symbol": symbol, "qty": qty, "avg": avg, "last": last, "known_last": known_last,
                    "market_value": market_value, "unrealized": unrealized,
                    "realized": number(r["realized_pnl"], at.format("realized_pnl"), warn),
                    "commissions": number(r["commissions"], at.format("commissions"), warn)})
    return out


@_exact
def positions(conn: sqlite3.Connection, include_flat: bool = False, warn: Warn | None = None) -> list[dict[str, Any]]:
    warn = warn or stderr_warnings()
    out = []
    for p in _positions(conn, warn):
        if p["qty"] == 0 and not include_flat:
            continue
        out.append({
            "symbol": p["symbol"],
            "qty": _dec(p["qty"]),
            "avg_cost": _money(p["avg"]),
            "last": None if p["last"] is None and p["known_last"] else _dec(p["last"]),
            "market_value": None if p["last"] is None and p["known_last"] else _money(p["market_value"]),
            "unrealized_pnl": _money(p["unrealized"]),
            "realized_pnl": _money(p["realized"]),
            "commissions": _money(p["commissions"]),
        })
    return out


_ORDER_TEXT = ("client_order_id", "strategy", "symbol", "side", "order_type", "tif", "status", "broker_order_id",
               "reason", "created_at", "updated_at")
_ORDER_NULLABLE = ("broker_order_id", "reason")
_ORDER_NUMBERS = (("qty", False), ("limit_price", True), ("filled_qty", False), ("avg_fill_price", True))


def _checked(value: Any, where: str, warn: Warn, nullable: bool) -> str | None:
    """A number column of orders or fills as its exact stored text, or ``?`` if it is not one."""
    if value is None and nullable:
        return None
    parsed = number(value, where, warn, nullable=nullable)
    return UNREADABLE if parsed is None else value if isinstance(value, str) else dec(parsed)


@_exact
def orders(conn: sqlite3.Connection, only_open: bool = False, limit: int = 0,
           warn: Warn | None = None) -> list[dict[str, Any]]:
    warn = warn or stderr_warnings()
    sql = "SELECT * FROM orders"
    if only_open:
        sql += " WHERE status NOT IN ('FILLED', 'CANCELLED', 'REJECTED')"
    sql += " ORDER BY created_at DESC, rowid DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    out = []
    for r in conn.execute(sql):
        oid = text(r["client_order_id"], "orders.client_order_id", warn) or UNREADABLE
        row: dict[str, Any] = {k: text(r[k], f"orders.{k} of {oid}", warn, nullable=k in _ORDER_NULLABLE)
                               for k in _ORDER_TEXT if k != "client_order_id"}
        row["client_order_id"] = oid
        for key, nullable in _ORDER_NUMBERS:
            row[key] = _checked(r[key], f"orders.{key} of {oid}", warn, nullable)
        out.append({k: row[k] for k in ("client_order_id", "strategy", "symbol", "side", "qty", "order_type", "tif",
                                        "limit_price", "status", "filled_qty", "avg_fill_price", "broker_order_id",
                                        "reason", "created_at", "updated_at")})
    return out


@_exact
def fills(conn: sqlite3.Connection, limit: int = 0, warn: Warn | None = None) -> list[dict[str, Any]]:
    warn = warn or stderr_warnings()
    sql = "SELECT * FROM fills ORDER BY seq DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = []
    for r in conn.execute(sql):
        eid = text(r["exec_id"], "fills.exec_id", warn) or UNREADABLE
        at = f"fills.{{}} of {eid}"
        rows.append({
            "exec_id": eid, "client_order_id": text(r["client_order_id"], at.format("client_order_id"), warn),
            "strategy": text(r["strategy"], at.format("strategy"), warn),
            "symbol": text(r["symbol"], at.format("symbol"), warn), "side": text(r["side"], at.format("side"), warn),
            "qty": _checked(r["qty"], at.format("qty"), warn, False),
            "price": _checked(r["price"], at.format("price"), warn, False),
            "commission": _checked(r["commission"], at.format("commission"), warn, False),
            "realized_pnl": _money(number(r["realized_pnl"], at.format("realized_pnl"), warn)),
            "time": text(r["ts"], at.format("ts"), warn),
        })
    rows.reverse()
    return rows


@_exact
def pnl(conn: sqlite3.Connection, warn: Warn | None = None) -> dict[str, Any]:
    warn = warn or stderr_warnings()
    held = _positions(conn, warn)
    realized = _sum([p["realized"] for p in held])
    unrealized = _sum([p["unrealized"] for p in held])
    commissions = _sum([p["commissions"] for p in held])
    market_value = _sum([p["market_value"] if p["known_last"] and p["last"] is not None else
                         ZERO if p["known_last"] else None for p in held])
    acct: dict[str, Any] = {}
    for r in conn.execute("SELECT key, value FROM account"):
        key = text(r["key"], "account.key", warn)
        if key is not None:
            acct[key] = r["value"]
    cash = number(acct.get("cash", "0"), "account.cash", warn)
    starting = acct.get("starting_cash")
    starting_cash = None if starting is None else _checked(starting, "account.starting_cash", warn, False)
    net = _sum([realized, unrealized, None if commissions is None else -commissions])
    equity = _sum([cash, market_value])
    return {
        "realized": _money(realized),
        "unrealized": _money(unrealized),
        "commissions": _money(commissions),
        "net": _money(net),
        "cash": _money(cash),
        "equity": _money(equity),
        "starting_cash": starting_cash,
    }


# ---- performance metrics and daily reports (core/analytics) ---------------------------------


class UnknownStrategy(Exception):
    """``--strategy`` names no owner the store knows."""


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


has_table = _has_table


def _alert_row(r: sqlite3.Row, warn: Warn) -> dict[str, Any]:
    aid = text(r["id"], "alerts.id", warn) or UNREADABLE
    at = f"alerts.{{}} of {aid}"
    return {
        "id": aid, "at": text(r["at"], at.format("at"), warn), "kind": text(r["kind"], at.format("kind"), warn),
        "severity": text(r["severity"], at.format("severity"), warn), "title": text(r["title"], at.format("title"), warn),
        "text": text(r["text"], at.format("text"), warn), "count": r["count"] if isinstance(r["count"], int) else None,
        "resolved": bool(r["resolved"]) if isinstance(r["resolved"], int) else None, "deliveries": [],
    }


def _delivery_row(r: sqlite3.Row, warn: Warn) -> dict[str, Any]:
    at = f"alert_deliveries.{{}} of {text(r['alert_id'], 'alert_deliveries.alert_id', warn)}"
    return {"sink": text(r["sink"], at.format("sink"), warn), "status": text(r["status"], at.format("status"), warn),
            "tries": r["tries"] if isinstance(r["tries"], int) else None,
            "reason": text(r["reason"], at.format("reason"), warn, nullable=True),
            "updated_at": text(r["updated_at"], at.format("updated_at"), warn)}


def alerts(conn: sqlite3.Connection, limit: int = 50, warn: Warn | None = None) -> dict[str, Any]:
    """The newest ``limit`` alerts with their deliveries, every undelivered one (newest first, at
    most 1000), and each sink's latest test (``cockpit alerts test``; the go-live check reads it)."""
    warn = warn or stderr_warnings()
    if not _has_table(conn, "alerts"):
        return {"recent": [], "undelivered": [], "tests": []}
    limit = max(1, min(int(limit), 10_000))
    recent = [_alert_row(r, warn) for r in conn.execute(
        "SELECT * FROM alerts ORDER BY at DESC, rowid DESC LIMIT ?", (limit,))]
    by_id = {a["id"]: a for a in recent}
    if by_id:
        marks = ",".join("?" * len(by_id))
        for r in conn.execute(f"SELECT * FROM alert_deliveries WHERE alert_id IN ({marks}) ORDER BY sink",
                              tuple(by_id)):
            by_id[r["alert_id"]]["deliveries"].append(_delivery_row(r, warn))
    undelivered = []
    for r in conn.execute(
            "SELECT a.*, d.sink AS d_sink, d.status AS d_status, d.tries AS d_tries, d.reason AS d_reason,"
            " d.updated_at AS d_updated_at, d.alert_id AS d_alert_id FROM alert_deliveries d JOIN alerts a"
            " ON a.id = d.alert_id WHERE d.status = 'undelivered' ORDER BY d.updated_at DESC LIMIT 1000"):
        row = _alert_row(r, warn)
        del row["deliveries"]
        row.update({"sink": text(r["d_sink"], "alert_deliveries.sink", warn),
                    "tries": r["d_tries"] if isinstance(r["d_tries"], int) else None,
                    "reason": text(r["d_reason"], "alert_deliveries.reason", warn, nullable=True),
                    "given_up_at": text(r["d_updated_at"], "alert_deliveries.updated_at", warn)})
        undelivered.append(row)
    return {"recent": recent, "undelivered": undelivered, "tests": alert_tests(conn, warn)}


def alert_tests(conn: sqlite3.Connection, warn: Warn | None = None) -> list[dict[str, Any]]:
    """Per sink: its latest test alert's outcome, and when a test last reached it."""
    warn = warn or stderr_warnings()
    if not _has_table(conn, "alerts"):
        return []
    rows = conn.execute(
        "SELECT d.sink, d.status, d.reason, d.updated_at FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
        " WHERE a.kind = 'test' ORDER BY d.updated_at DESC, d.rowid DESC").fetchall()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        sink = text(r["sink"], "alert_deliveries.sink", warn) or UNREADABLE
        entry = out.get(sink)
        if entry is None:
            entry = out[sink] = {"sink": sink, "last_status": text(r["status"], "alert_deliveries.status", warn),
                                 "last_reason": text(r["reason"], "alert_deliveries.reason", warn, nullable=True),
                                 "last_at": text(r["updated_at"], "alert_deliveries.updated_at", warn),
                                 "last_delivered_at": None}
        if entry["last_delivered_at"] is None and r["status"] == "sent":
            entry["last_delivered_at"] = text(r["updated_at"], "alert_deliveries.updated_at", warn)
    return sorted(out.values(), key=lambda e: e["sink"])
def _stored_reports(conn: sqlite3.Connection, warn: Warn, day: str | None = None) -> list[dict[str, Any]]:
    from core.analytics.stored import report_rows

    if not _has_table(conn, "daily_reports"):
        return []  # an engine from before the daily reports, or one that never started
    if day is None:
        return report_rows(conn.execute("SELECT date, summary FROM daily_reports ORDER BY date"), warn)
    return report_rows(conn.execute("SELECT date, summary FROM daily_reports WHERE date = ?", (day,)), warn)


def _stored_curves(conn: sqlite3.Connection, warn: Warn) -> list[dict[str, Any]]:
    """``_stored_reports`` cut to what the equity curves read (``curve_rows``): the equity
    columns, and only the strategies of each summary parsed. A summary that is not JSON, or an
    SQLite without its JSON functions: every row read in full."""
    from core.analytics.stored import CURVES_SQL, curve_rows

    if not _has_table(conn, "daily_reports"):
        return []
    try:
        rows = conn.execute(CURVES_SQL).fetchall()
    except sqlite3.OperationalError:  # malformed JSON in some row, or no json_extract in this SQLite
        return _stored_reports(conn, warn)
    return curve_rows(rows, lambda day: conn.execute("SELECT date, summary FROM daily_reports WHERE date = ?",
                                                     (day,)).fetchall(), warn)


@_exact
def daily_reports(conn: sqlite3.Connection, day: str | None = None, warn: Warn | None = None) -> list[dict[str, Any]]:
    """The stored daily summaries, oldest first (one day with ``day``, an ISO date)."""
    return _stored_reports(conn, warn or stderr_warnings(), day)


def _points_days(conn: sqlite3.Connection, tz: Any, warn: Warn) -> list[Any]:
    """Without daily reports: the last equity point of each market date (the engine keeps one at
    most a minute and once per batch, so in a fast replay they are sparse: an approximation)."""
    from datetime import datetime

    from core.analytics.returns import EquityDay

    if not _has_table(conn, "equity_points"):
        return []
    last: dict[Any, tuple[Decimal, Decimal]] = {}
    for r in conn.execute("SELECT ts, equity, day_open FROM equity_points ORDER BY ts"):
        equity = number(r["equity"], f"equity_points.equity at {r['ts']}", warn)
        day_open = number(r["day_open"], f"equity_points.day_open at {r['ts']}", warn)
        try:
            day = datetime.fromisoformat(str(r["ts"])).astimezone(tz).date()
        except ValueError:
            warn(f"equity_points.ts {_shown(r['ts'])} is not a time: the point is left out")
            continue
        if equity is None or day_open is None:
            continue
        first_open = last[day][0] if day in last else day_open
        last[day] = (first_open, equity)
    days = []
    previous: Decimal | None = None
    for day, (day_open, close) in sorted(last.items()):
        days.append(EquityDay(day, previous if previous is not None else day_open, close))
        previous = close
    return days


_Figures = Callable[[], dict[str, Any]]
_Trades = tuple[list[Any], list[Any]]  # closed, still open (core/analytics/trades.py)


def _fills(conn: sqlite3.Connection, warn: Warn) -> _Trades:
    from core.analytics.stored import ALLOCATIONS_SQL, FILLS_SQL, fill_records
    from core.analytics.trades import round_trips

    fills = fill_records(conn.execute(FILLS_SQL), conn.execute(ALLOCATIONS_SQL) if _has_table(
        conn, "fill_allocations") else [], warn)
    return round_trips(fills)


def _curve_columns(conn: sqlite3.Connection) -> Any:
    """The stored curves from ``report_curves`` (core/analytics/report_curves.py): integer
    columns, no JSON. None when the store has no such table (an engine from before it has not
    opened it since) or some stored day has no clean row in it: then the summaries are read."""
    from core.analytics.report_curves import COLUMNS_SQL, read_columns

    if not _has_table(conn, "report_curves"):
        return None
    return read_columns(conn.execute(COLUMNS_SQL).fetchone())


def _scaled_scopes(columns: Any, scaled_base: int, trades: _Trades, tz: Any,
                   risk_free_rate: float) -> tuple[dict[str, _Figures], _Figures]:
    """Each owner's figures and the account's (as functions) from ``_curve_columns``: the same
    figures as ``_scopes`` (core/analytics/returns.py ``scaled_return_figures``)."""
    from core.analytics.performance import scaled_performance
    from core.analytics.report_curves import unscaled

    closed, still_open = trades
    curves = columns.owner_curves(scaled_base)
    days = columns.days
    account_inputs = (columns.opens, columns.closes, closed, still_open)
    account: list[dict[str, Any]] = []  # the account's figures, once computed

    def top() -> dict[str, Any]:
        if not account:
            account.append(scaled_performance(days, *account_inputs[:2], unscaled, closed, still_open, tz,
                                              risk_free_rate).to_json())
        return dict(account[0])

    def of(owner: str) -> _Figures:
        def figures() -> dict[str, Any]:
            opens, closes = curves.get(owner, ([], []))
            own = ([t for t in closed if t.owner == owner], [t for t in still_open if t.owner == owner])
            if opens and (opens, closes, *own) == account_inputs:
                return top()  # the whole account's curve and trades (one strategy on its capital): its figures
            return scaled_performance(days if opens else [], opens, closes, unscaled, *own, tz,
                                      risk_free_rate).to_json()
        return figures

    owners = set(curves) | {t.owner for t in closed} | {t.owner for t in still_open}
    return {o: of(o) for o in owners}, top


def _scopes(reports: list[dict[str, Any]], days: list[Any], base: Decimal, trades: _Trades, tz: Any,
            risk_free_rate: float) -> tuple[dict[str, _Figures], _Figures]:
    """Each owner's figures and the account's (as functions), from the stored summaries (or,
    without any, the account's from the equity points)."""
    from core.analytics.performance import performance as figures
    from core.analytics.returns import EquityDay
    from core.analytics.stored import owner_days

    closed, still_open = trades
    curves = owner_days(reports, base)

    def of(owner: str) -> _Figures:
        curve: list[EquityDay] = curves.get(owner, [])  # no daily reports: no curve per owner
        return lambda: figures(curve, [t for t in closed if t.owner == owner],
                               [t for t in still_open if t.owner == owner], tz, risk_free_rate).to_json()

    owners = set(curves) | {t.owner for t in closed} | {t.owner for t in still_open}
    return {o: of(o) for o in owners}, lambda: figures(days, closed, still_open, tz, risk_free_rate).to_json()


@_exact
def performance(conn: sqlite3.Connection, *, strategy: str | None = None, risk_free_rate: float = 0.0,
                market_tz: str = "America/New_York", warn: Warn | None = None,
                allocation: Mapping[str, Any] | None = None, strategies: Mapping[str, bool] | None = None,
                ) -> dict[str, Any]:
    """Performance of the account and of each owner (core/analytics/performance.py), as JSON.

    With ``allocation`` (the config's ``[allocation]``) and ``strategies`` (name -> enabled in
    the config), and an allocation in force for some strategy, it also has ``allocation``
    (cockpit/capital_reader.py), and each strategy's ``allocated`` (money) and
    ``allocation_used`` (its gross exposure over it, a fraction)."""
    from zoneinfo import ZoneInfo

    from core.analytics.report_curves import scaled, unscaled
    from core.analytics.returns import PERIODS_PER_YEAR
    from core.analytics.stored import account_days

    warn = warn or stderr_warnings()
    tz = ZoneInfo(market_tz)
    columns = _curve_columns(conn)
    reports = _stored_curves(conn, warn) if columns is None else None
    days = (account_days(reports) if reports else _points_days(conn, tz, warn)) if reports is not None else None
    trades = _fills(conn, warn)
    acct = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM account")}
    base = number(acct.get("starting_cash"), "account.starting_cash", warn, nullable=True)
    if columns is not None:
        if base is None:
            base = unscaled(columns.opens[0])
        scaled_base = scaled(base)
        if scaled_base is not None:
            source: str | None = "daily_reports"
            per_owner_of, top_of = _scaled_scopes(columns, scaled_base, trades, tz, risk_free_rate)
        else:  # a base of more than 8 places: the summaries (each one clean, so nothing to warn of)
            reports = _stored_curves(conn, warn)
            days = account_days(reports)
    if days is not None:
        assert reports is not None
        source = "daily_reports" if reports else "equity_points" if days else None
        if base is None:
            base = days[0].open if days else ZERO
        per_owner_of, top_of = _scopes(reports, days, base, trades, tz, risk_free_rate)
    assert base is not None  # set on either way above
    owners = sorted(per_owner_of)
    if strategy is not None and strategy not in owners:
        known = ", ".join(owners) or "none yet"
        raise UnknownStrategy(f"no strategy {strategy!r} in the store (known: {known})")
    per_owner = {o: per_owner_of[o]() for o in owners if strategy is None or o == strategy}
    top = per_owner[strategy] if strategy is not None else top_of()
    head: dict[str, Any] = {"scope": strategy or "account", "source": source,
                            "risk_free_rate": risk_free_rate, "periods_per_year": PERIODS_PER_YEAR,
                            "strategy_base_equity": money(base)}
    if allocation is None or strategies is None:
        return {**head, **top, "strategies": per_owner}
    from cockpit.capital_reader import capital_in_force

    report = capital_in_force(conn, allocation, strategies, warn)
    if report is None:
        return {**head, **top, "strategies": per_owner}  # none in force: the figures as they always were
    for name, figures_of in per_owner.items():
        row = report["strategies"].get(name)
        if row is not None:
            pct = row["used_pct"]
            figures_of.update(allocated=row["allocation"], allocation_used=None if pct is None else pct / 100)
    return {**head, **top, "strategies": per_owner, "allocation": report}
