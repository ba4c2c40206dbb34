"""What a soak's state dir must hold at the end (bench/soak_paper.py, tests/test_soak_short.py).

Each check reads the store read-only (or runs the `cockpit` command an operator would) and
returns its findings as plain data: a list of problems (empty: it holds) or figures. Nothing
here asserts; the orchestrator counts, the test asserts, the bench prints.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

CENT = Decimal("0.01")
DB = "cockpit.sqlite"
BACKUPS = "backups"

#: One fill as two runs of the same replay must both have it: exec and order ids are random per
#: state dir, everything the market and the strategies decide is not.
FillKey = tuple[str, str, str, str, str, str, str]  # ts, strategy, symbol, side, qty, price, commission


@contextmanager
def readonly(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def fill_keys(state: Path) -> list[FillKey]:
    """The trade fills of a state dir, in the order they were booked."""
    with readonly(state / DB) as conn:
        rows = conn.execute("SELECT ts, strategy, symbol, side, qty, price, commission FROM fills "
                            "WHERE kind = 'trade' ORDER BY seq").fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def lost_and_duplicated(got: list[FillKey], want: list[FillKey]) -> tuple[list[FillKey], list[FillKey]]:
    """The symmetric difference as multisets: fills of ``want`` missing from ``got`` (lost), and
    fills of ``got`` beyond ``want`` (duplicated, or never made by the uninterrupted run)."""
    have, need = Counter(got), Counter(want)
    return sorted((need - have).elements()), sorted((have - need).elements())


def exec_id_problems(state: Path) -> list[str]:
    """Every fill booked once by exec id, and the engine's fills and the paper venue's executions
    the same set (a venue execution the book never got would be a lost fill too)."""
    with readonly(state / DB) as conn:
        fills = [r[0] for r in conn.execute("SELECT exec_id FROM fills WHERE kind = 'trade'")]
        venue = {r[0] for r in conn.execute("SELECT exec_id FROM paper_executions")}
    problems = [f"exec id {e} booked {n} times" for e, n in Counter(fills).items() if n > 1]
    booked = set(fills)
    problems += [f"venue execution {e} not in the book's fills" for e in sorted(venue - booked)[:10]]
    problems += [f"fill {e} has no venue execution" for e in sorted(booked - venue)[:10]]
    return problems


def book_problems(db: Path) -> list[str]:
    """The book the store at ``db`` holds (as `cockpit positions/pnl` read it), recomputed from
    its fills alone, to the cent: quantity per symbol, realized + unrealized P&L per symbol,
    commissions, cash; and the paper venue's positions and cash equal to the book's."""
    from cockpit import readers

    with readonly(db) as conn:
        fills, pnl = readers.fills(conn), readers.pnl(conn)
        positions = {p["symbol"]: p for p in readers.positions(conn, include_flat=True)}
        venue_qty = {r["symbol"]: Decimal(r["qty"]) for r in conn.execute("SELECT symbol, qty FROM paper_positions")}
        venue_cash = Decimal(conn.execute("SELECT value FROM paper_account WHERE key = 'cash'").fetchone()[0])
    problems: list[str] = []
    qty: dict[str, Decimal] = defaultdict(Decimal)
    flow: dict[str, Decimal] = defaultdict(Decimal)
    commissions = Decimal(0)
    for f in fills:
        signed = Decimal(f["qty"]) * (1 if f["side"] == "BUY" else -1)
        qty[f["symbol"]] += signed
        flow[f["symbol"]] -= signed * Decimal(f["price"])
        commissions += Decimal(f["commission"])
    gross = Decimal(0)
    for symbol, q in sorted(qty.items()):
        pos = positions.get(symbol)
        if pos is None:
            problems.append(f"{symbol}: fills net to {q} but the store has no position row")
            continue
        if Decimal(pos["qty"]) != q:
            problems.append(f"{symbol}: position {pos['qty']}, fills net to {q}")
        if venue_qty.get(symbol, Decimal(0)) != q:
            problems.append(f"{symbol}: the paper venue holds {venue_qty.get(symbol)}, fills net to {q}")
        last = Decimal(pos["last"]) if pos["last"] is not None else Decimal(0)
        independent = flow[symbol] + q * last
        booked = Decimal(pos["realized_pnl"]) + Decimal(pos["unrealized_pnl"])
        if abs(independent - booked) >= CENT:
            problems.append(f"{symbol}: realized + unrealized {booked}, from the fills {independent}")
        gross += independent
    if Decimal(pnl["commissions"]) != commissions:
        problems.append(f"commissions {pnl['commissions']}, the fills' sum {commissions}")
    if abs(Decimal(pnl["realized"]) + Decimal(pnl["unrealized"]) - gross) >= CENT:
        problems.append(f"P&L {pnl['realized']} + {pnl['unrealized']}, from the fills {gross}")
    cash = Decimal(pnl["starting_cash"]) + sum(flow.values(), Decimal(0)) - commissions
    if abs(Decimal(pnl["cash"]) - cash) >= CENT:
        problems.append(f"cash {pnl['cash']}, from the fills {cash}")
    if abs(venue_cash - Decimal(pnl["cash"])) >= CENT:
        problems.append(f"the paper venue's cash {venue_cash}, the book's {pnl['cash']}")
    return problems


def book_figures(state: Path) -> dict[str, str]:
    """Cash and positions, for comparing two state dirs."""
    from cockpit import readers

    with readonly(state / DB) as conn:
        pnl = readers.pnl(conn)
        held = {p["symbol"]: p["qty"] for p in readers.positions(conn)}
    return {"cash": pnl["cash"], "equity": pnl["equity"], **{f"qty {s}": q for s, q in sorted(held.items())}}


def report_rows(state: Path) -> list[dict[str, Any]]:
    """The daily summaries: date, fills, equity at the close, net, and how many engine starts
    each session saw."""
    with readonly(state / DB) as conn:
        rows = conn.execute("SELECT date, equity_close, net, summary FROM daily_reports ORDER BY date").fetchall()
    out = []
    for r in rows:
        s = json.loads(r["summary"])
        out.append({"date": r["date"], "equity_close": r["equity_close"], "net": r["net"], "fills": s["fills"],
                    "engine_starts": s["engine_starts"]})
    return out


def report_problems(got: list[dict[str, Any]], days: list[str], reference: list[dict[str, Any]],
                    fills: int) -> list[str]:
    """One summary per session, on the session's day; the same day's figures as the
    uninterrupted run's; every fill counted in exactly one day."""
    problems = []
    dates = [r["date"] for r in got]
    if dates != days:
        missing, extra = sorted(set(days) - set(dates)), sorted(set(dates) - set(days))
        problems.append(f"daily reports for {len(dates)} day(s), {len(days)} sessions: missing {missing[:5]}, "
                        f"extra {extra[:5]}")
    ref = {r["date"]: r for r in reference}
    for r in got:
        want = ref.get(r["date"])
        if want is None:
            continue
        for key in ("fills", "equity_close", "net"):
            if r[key] != want[key]:
                problems.append(f"report {r['date']}: {key} {r[key]}, the uninterrupted run's {want[key]}")
    counted = sum(int(r["fills"]) for r in got)
    if counted != fills:
        problems.append(f"the daily reports count {counted} fills, the store holds {fills}")
    return problems


def audit_counts(state: Path) -> dict[str, int]:
    """Reconciliation passes, breaks and missed fills, backups written and failed, from the audit
    trail."""
    kinds = {"reconcile.run": "reconcile_passes", "reconcile.break": "breaks",
             "reconcile.missed_fill": "missed_fills_applied", "backup.written": "backups_written",
             "backup.failed": "backups_failed"}
    with readonly(state / DB) as conn:
        found = dict(conn.execute("SELECT kind, count(*) FROM audit GROUP BY kind").fetchall())
        differences = sum(1 for (d,) in conn.execute("SELECT detail FROM audit WHERE kind = 'reconcile.run'")
                          if json.loads(d).get("differences"))
    counts = {name: int(found.get(kind, 0)) for kind, name in kinds.items()}
    counts["reconcile_passes_with_differences"] = differences
    return counts


def cockpit(config: Path, state: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`cockpit ARGS --config C --state-dir S` as its own process, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(config), "--state-dir", str(state)],
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def audit_verify(config: Path, state: Path, env: dict[str, str]) -> tuple[int, str]:
    """`cockpit audit verify`: its exit code and its last line."""
    done = cockpit(config, state, env, "audit", "verify")
    said = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode, said[-1][:300] if said else ""


def backup_check(config: Path, state: Path, env: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """`cockpit backup list --json`, and the newest backup's own books and fills: a consistent
    copy (its books match its fills to the cent, its fills the first of the store's)."""
    done = cockpit(config, state, env, "backup", "list", "--json")
    try:
        rows: list[dict[str, Any]] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return [], [f"`cockpit backup list --json` exited {done.returncode}: {done.stderr.strip()[-300:]}"]
    problems = [f"backup {r['name']} fails its check: {r['problem']}" for r in rows if not r["verified"]]
    if not rows:
        return rows, ["no backup in the state dir"]
    newest = max(rows, key=lambda r: (r["time"], r["name"]))
    copy = state / BACKUPS / newest["name"]
    with readonly(copy) as conn:
        in_copy = [r[0] for r in conn.execute("SELECT exec_id FROM fills ORDER BY seq")]
    with readonly(state / DB) as conn:
        in_store = [r[0] for r in conn.execute("SELECT exec_id FROM fills ORDER BY seq")]
    if in_store[:len(in_copy)] != in_copy:
        problems.append(f"the newest backup {newest['name']}: its fills are not the first of the store's")
    problems += [f"the newest backup {newest['name']}: {p}" for p in book_problems(copy)]
    return rows, problems


def leftover_temporaries(state: Path) -> list[str]:
    """A backup cut by a SIGKILL leaves its temporary; the next backup removes it."""
    folder = state / BACKUPS
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".cockpit-")) if folder.is_dir() else []


def disk_use(state: Path) -> dict[str, int]:
    """Bytes under the state dir: the store (with its -wal and -shm), backups, logs, the rest."""
    use = {"store": 0, "backups": 0, "logs": 0, "other": 0}
    for path in state.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        top = path.relative_to(state).parts[0]
        key = "store" if top.startswith(DB) else top if top in ("backups", "logs") else "other"
        use[key] += size
    use["total"] = sum(use.values())
    return use
