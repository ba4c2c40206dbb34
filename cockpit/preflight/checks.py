"""The go-live checks: the seed's checklist read from the store and the config.

Each check is a pure reading (nothing is written) that ends in PASS or FAIL, with what it
found and, for a FAIL, the exact thing to do. A store that does not exist yet makes every
store-backed check FAIL with "run the engine in paper first", never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.config import RiskConfig, Settings

#: The checks of the risk gate, each named by the limit its refusal quotes.
RISK_CHECKS = tuple(k for k in RiskConfig.model_fields if k not in ("daily_loss_action", "allowed_symbols"))
#: Every other refusal kind the gate has: a strategy past its capital allocation.
EXTRA_CHECKS = ("allocation",)
WALKFORWARD_TABLE = "walkforward_reports"  # written by `cockpit walkforward` (the research issue)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # what was found
    fix: str  # what to do when it fails ("" when it passes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Context:
    settings: Settings
    conn: sqlite3.Connection | None  # read-only; None: no store yet
    now: datetime
    env: dict[str, str] | None = None

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if self.conn is None or not self.has_table(sql.split(" FROM ")[1].split()[0]):
            return []
        return self.conn.execute(sql, args).fetchall()

    def has_table(self, name: str) -> bool:
        if self.conn is None:
            return False
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    def enabled_strategies(self) -> list[str]:
        return sorted(n for n, s in self.settings.strategies.items() if s.enabled)


Check = Callable[[Context], CheckResult]
_NO_STORE = "no store yet: run `cockpit` (paper) on this config first"


def _detail(row: sqlite3.Row) -> dict[str, Any]:
    try:
        value = json.loads(row["detail"])
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _ts(text: str) -> datetime | None:
    try:
        ts = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


REPORT_LATE_DAYS = 7  # a session's report written this long after its close still counts (an engine down at the close)


def written_live(date: str, written_at: str | None) -> bool:
    """A daily report written in real time, at (or soon after) its session's close, not by a replay of history
    (a replay writes 2008's sessions today; only paper trading on the live clock counts as paper traded)."""
    try:
        written = datetime.fromisoformat(written_at or "").date()
        day = datetime.fromisoformat(date).date()
    except ValueError:
        return False
    return timedelta(0) <= written - day <= timedelta(days=REPORT_LATE_DAYS)


def paper_sessions(ctx: Context) -> CheckResult:
    need = ctx.settings.preflight.min_paper_sessions
    name = "paper traded"
    if ctx.conn is None:
        return CheckResult(name, need == 0, _NO_STORE, "run `cockpit` in paper until it has traded "
                                                       f"{need} sessions")
    rows = ctx.rows("SELECT date, written_at FROM daily_reports ORDER BY date")
    days = [r["date"] for r in rows if written_live(r["date"], r["written_at"])]
    replayed = len(rows) - len(days)
    found = f"{len(days)} session(s) on this state" + (f" ({days[0]} .. {days[-1]})" if days else "")
    if replayed:
        found += f"; {replayed} replayed session(s) do not count"
    if len(days) >= need:
        return CheckResult(name, True, found + f", at least {need}", "")
    return CheckResult(name, False, found + f", {need} needed (preflight.min_paper_sessions)",
                       f"paper trade {need - len(days)} more session(s) on this state dir, on the live clock "
                       f"(feed.kind synthetic or ibkr; a replay is history, not paper trading)")


def no_unresolved_break(ctx: Context) -> CheckResult:
    name = "no unresolved break"
    last_break: dict[str, int] = {}
    last_resolved: dict[str, int] = {}
    for r in ctx.rows("SELECT seq, kind, subject, detail FROM audit WHERE kind IN ('reconcile.break', "
                      "'operator.resolve') ORDER BY seq"):
        if r["kind"] == "reconcile.break":
            last_break[r["subject"]] = r["seq"]
        elif _detail(r).get("after") == "resolved":
            last_resolved[r["subject"]] = r["seq"]
    open_ = sorted(s for s, seq in last_break.items() if seq > last_resolved.get(s, 0))
    if open_:
        return CheckResult(name, False, f"unresolved reconciliation break on {', '.join(open_)}",
                           f"resolve it: `cockpit resolve {open_[0]} accept|adopt|flatten` (see `cockpit breaks`)")
    return CheckResult(name, True, f"{len(last_break)} break(s) ever found, all resolved" if last_break
                       else "no break found", "")


def risk_limits_exercised(ctx: Context) -> CheckResult:
    name = "every risk check exercised"
    seen: set[str] = set()
    for r in ctx.rows("SELECT kind, detail FROM audit WHERE kind IN ('gate.refuse', 'trading.state', "
                      "'preflight.drill')"):
        d = _detail(r)
        if r["kind"] == "preflight.drill":
            if d.get("refused"):
                seen.add(str(d.get("check")))
            continue
        reason = str(d.get("reason", ""))
        for check in (*RISK_CHECKS, *EXTRA_CHECKS):
            if check in reason or (check == "allocation" and reason.startswith("allocation:")):
                seen.add(check)
    wanted = [*RISK_CHECKS, *(EXTRA_CHECKS if _allocation_keys(ctx.settings) else ())]
    missing = [c for c in wanted if c not in seen]
    if missing:
        return CheckResult(name, False, f"{len(wanted) - len(missing)} of {len(wanted)} checks refused an order in "
                                        f"paper; never: {', '.join(missing)}",
                           "run `cockpit preflight --drill` (each check against the paper gate, recorded)")
    return CheckResult(name, True, f"all {len(wanted)} checks refused at least once", "")


def pacing(ctx: Context) -> CheckResult:
    name = "broker API limits respected"
    n = ctx.settings.preflight.pacing_sessions
    days = [r["date"] for r in ctx.rows("SELECT date FROM daily_reports ORDER BY date DESC LIMIT ?", (n,))]
    since = days[-1] if days else "0000"
    hits = ctx.rows("SELECT ts FROM audit WHERE kind = 'broker.pacing' AND ts >= ? ORDER BY seq", (since,))
    if hits:
        return CheckResult(name, False, f"{len(hits)} pacing violation(s) (IB error 100) in the last {n} sessions, "
                                        f"the latest at {hits[-1]['ts']}",
                           "slow the strategies' order rate (risk.max_orders_per_minute_*) and paper trade "
                           f"{n} clean sessions")
    return CheckResult(name, True, f"no pacing violation in the last {len(days) or n} session(s)", "")


def alert_sinks_tested(ctx: Context) -> CheckResult:
    from cockpit.readers import alert_tests

    name = "alert sinks tested"
    alerts = ctx.settings.alerts
    sinks = [s for s, on in (("discord", alerts.discord.configured), ("email", alerts.email.configured)) if on]
    if not sinks:
        return CheckResult(name, False, "no alert sink leaves the box (Discord or email)",
                           "configure [alerts.discord] or [alerts.email], then `cockpit alerts test`")
    max_age = timedelta(days=ctx.settings.preflight.alert_test_max_age_days)
    tests = {t["sink"]: t for t in alert_tests(ctx.conn, lambda _m: None)} if ctx.conn is not None else {}
    stale = []
    for sink in sinks:
        at = _ts(tests.get(sink, {}).get("last_delivered_at") or "")
        if at is None or ctx.now - at > max_age:
            stale.append(sink)
    if stale:
        return CheckResult(name, False, f"no test alert delivered in {max_age.days} days through "
                                        f"{', '.join(stale)}", "`cockpit alerts test` (and check it arrives)")
    return CheckResult(name, True, f"a test alert reached {', '.join(sinks)} within {max_age.days} days", "")


def walkforward_reports(ctx: Context) -> CheckResult:
    name = "walk-forward report per strategy"
    strategies = ctx.enabled_strategies()
    max_age = timedelta(days=ctx.settings.preflight.walkforward_max_age_days)
    have: dict[str, datetime] = {}
    latest: dict[str, sqlite3.Row] = {}
    for r in ctx.rows(f"SELECT * FROM {WALKFORWARD_TABLE}"):
        at = _ts(r["created_at"])
        if at is not None and (r["strategy"] not in have or at > have[r["strategy"]]):
            have[r["strategy"]] = at
            latest[r["strategy"]] = r
    missing = [s for s in strategies if s not in have or ctx.now - have[s] > max_age]
    if missing:
        return CheckResult(name, False, f"no walk-forward report (or older than {max_age.days} days) for "
                                        f"{', '.join(missing)}",
                           f"`cockpit walkforward --strategy {missing[0]} --grid ...` for each")
    failed = [s for s in strategies if "holds" in latest[s].keys() and not latest[s]["holds"]]
    if failed:
        return CheckResult(name, False, "the latest walk-forward does not hold up out of sample for "
                           + ", ".join(failed) + "".join(_walkforward_summary(s, latest[s]) for s in failed),
                           f"rework {failed[0]} (or its grid) until `cockpit walkforward` says HOLDS UP, or "
                           "disable it")
    return CheckResult(name, True, f"a recent report that holds up for each of {', '.join(strategies)}"
                       + "".join(_walkforward_summary(s, latest[s]) for s in strategies), "")


def _walkforward_summary(strategy: str, row: sqlite3.Row) -> str:
    """`; sma_cross 2026-12-02 fast=15 slow=20, OOS Sharpe 0.62, DOES NOT HOLD UP` from the latest report."""
    keys = row.keys()
    try:
        params = json.loads(row["params"]) if "params" in keys else {}
    except (TypeError, ValueError):
        params = {}
    shown = " ".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, dict) else ""
    sharpe = row["oos_sharpe"] if "oos_sharpe" in keys else None
    verdict = str(row["verdict"]).split(" out of sample")[0] if "verdict" in keys and row["verdict"] else ""
    parts = [p for p in (shown, f"OOS Sharpe {sharpe:.2f}" if isinstance(sharpe, float) else "", verdict) if p]
    return f"; {strategy} {str(row['created_at'])[:10]}" + (f" {', '.join(parts)}" if parts else "")


def allocation_covers(ctx: Context) -> CheckResult:
    name = "capital allocation per strategy"
    strategies = ctx.enabled_strategies()
    allocated = set(_allocation_keys(ctx.settings))
    missing = [s for s in strategies if s not in allocated]
    if missing:
        return CheckResult(name, False, f"no [allocation] for {', '.join(missing)}",
                           f"add `{missing[0]} = \"25%\"` (or money) under [allocation] for each")
    return CheckResult(name, True, f"every enabled strategy has one ({', '.join(strategies) or 'none enabled'})", "")


def _allocation_keys(settings: Settings) -> list[str]:
    allocation = getattr(settings, "allocation", None)
    if allocation is None:
        return []
    if isinstance(allocation, dict):
        return list(allocation)
    dumped = allocation.model_dump() if hasattr(allocation, "model_dump") else {}
    inner = dumped.get("strategies", dumped) if isinstance(dumped, dict) else {}
    return [k for k, v in inner.items() if v is not None] if isinstance(inner, dict) else []


def deadman_and_watchdog(ctx: Context) -> CheckResult:
    """The dead-man switch on, and a process watchdog that flattens when the engine dies: systemd's
    (WatchdogSec + OnFailure=cockpit-emergency.service) or `cockpit watchdog` (docker), seen by
    its fresh heartbeat in this state dir."""
    name = "dead-man and watchdog"
    problems, fixes = [], []
    if not ctx.settings.deadman.enabled:
        problems.append("the dead-man switch is off ([deadman] enabled = false)")
        fixes.append("set [deadman] enabled = true")
    env = ctx.env if ctx.env is not None else dict(os.environ)
    watchdog = _process_watchdog(ctx)
    if env.get("WATCHDOG_USEC") or _unit_has_watchdog():
        found = "systemd's watchdog"
    elif watchdog is not None:
        found = watchdog
    else:
        problems.append("no process watchdog: neither systemd's (cockpit.service with WatchdogSec is not installed) "
                        "nor `cockpit watchdog` (no fresh heartbeat in the state dir)")
        fixes.append("install deploy/systemd/cockpit.service, or in docker run the watchdog service of "
                     "deploy/docker/compose.yaml (README: Install as a service)")
    if problems:
        return CheckResult(name, False, "; ".join(problems), "; ".join(fixes))
    return CheckResult(name, True, f"dead-man every {ctx.settings.deadman.interval_seconds} s; {found}", "")


def _process_watchdog(ctx: Context) -> str | None:
    """`cockpit watchdog` on this state dir, if its heartbeat is fresh: how it was found."""
    from cockpit.watchdog.heartbeat import read_status

    status = read_status(ctx.settings.state_dir)
    if status is None or not status.alive(ctx.now):
        return None
    return f"`cockpit watchdog` (pid {status.pid} on {status.host}, heartbeat {status.age(ctx.now):.0f} s ago)"


def _unit_has_watchdog() -> bool:
    """Ask systemd (read-only) whether cockpit.service has a watchdog; False without systemd."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return False
    try:
        out = subprocess.run([systemctl, "show", "--property=WatchdogUSec", "cockpit.service"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    value = out.stdout.strip().partition("=")[2]
    return out.returncode == 0 and value not in ("", "0", "infinity")


def runbook(ctx: Context) -> CheckResult:
    """The runbook installed with the package (cockpit/RUNBOOK.md, package data): a wheel or a
    docker install has it too; `cockpit runbook` prints it."""
    from cockpit.runbook import locate

    found = locate()
    try:
        size = len(found.read_bytes()) if found.is_file() else 0
    except OSError:
        size = 0
    if size > 0:
        return CheckResult("runbook present", True, f"{found} (`cockpit runbook` prints it)", "")
    return CheckResult("runbook present", False, f"{found} is missing or empty",
                       "reinstall the cockpit package (the runbook ships in it as cockpit/RUNBOOK.md)")


def live_prices(ctx: Context) -> CheckResult:
    """Orders are gated and priced on the active feed's quotes, a fallback's too: IB's delayed
    data (15-20 minutes late, stamped as it arrives) would pass the quote-age check. At run time
    the risk gate holds strategy orders while such a feed is active (``feed_hold``); a live
    account should not need that last resort."""
    name = "fallback feeds carry live prices"
    if ctx.settings.broker.kind != "ibkr":
        return CheckResult(name, True, f"broker {ctx.settings.broker.kind}: no real orders", "")
    delayed = [f"{fb.name} (market_data_type {fb.market_data_type})" for fb in ctx.settings.feed.fallbacks
               if fb.kind == "ibkr" and fb.market_data_type != 1]
    if delayed:
        return CheckResult(name, False, f"delayed or frozen IB data as a fallback: {', '.join(delayed)}",
                           "set market_data_type = 1 (a second gateway's live data) or remove the fallback: the "
                           "engine would hold every strategy while it is active, and price your own orders on quotes "
                           "15-20 minutes old")
    n = len(ctx.settings.feed.fallbacks)
    return CheckResult(name, True, f"{n} fallback(s), all live data" if n else "no fallback feed", "")


CHECKS: tuple[Check, ...] = (paper_sessions, no_unresolved_break, risk_limits_exercised, pacing, alert_sinks_tested,
                             walkforward_reports, allocation_covers, live_prices, deadman_and_watchdog, runbook)
