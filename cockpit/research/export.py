"""The files `cockpit backtest` writes where the user says: the round trips and the fills as
CSV, and the report. A path is checked before the run (a directory, a missing or read-only
folder is one line) and written under a temporary name in the same folder, then renamed, so a
failed write never leaves half a file under the user's name."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from core.analytics.backtest import BacktestResult
from core.analytics.trades import Trade
from core.domain.serialize import dec, money

TRADE_COLUMNS = ("strategy", "symbol", "side", "status", "opened_at", "closed_at", "max_qty", "fills", "realized",
                 "commissions", "pnl")
FILL_COLUMNS = ("ts", "strategy", "symbol", "side", "qty", "price", "commission", "realized_pnl", "kind", "exec_id",
                "client_order_id")


class OutputError(Exception):
    """An output path that cannot be written: one line naming it and the fix."""


def checked_output(option: str, given: str, suffixes: tuple[str, ...]) -> Path:
    """``given`` as the path of a file to write, or OutputError (before anything runs)."""
    if not given or "\0" in given:
        raise OutputError(f"{option}: give a file name")
    path = Path(given).expanduser()
    if path.suffix.lower() not in suffixes:
        raise OutputError(f"{option} {given}: the file name must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise OutputError(f"{option} {given}: is a directory: name a file in it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{option} {given}: no folder {folder}: create it first or name another file")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{option} {given}: not writable: name a file in a folder you can write to")
    return path


def write_text(option: str, path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary name in its folder; OutputError on failure."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None


def _trade_row(t: Trade) -> list[str]:
    return [t.owner, t.symbol, t.side, "closed" if t.closed_at is not None else "open", t.opened_at.isoformat(),
            t.closed_at.isoformat() if t.closed_at is not None else "", dec(t.max_qty), str(t.fills),
            money(t.realized), money(t.commissions), money(t.pnl)]


def _csv(header: Iterable[str], rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def trades_csv(result: BacktestResult) -> str:
    """The round trips (core/analytics/trades.py says what one is): closed in closing order, then the open ones."""
    return _csv(TRADE_COLUMNS, (_trade_row(t) for t in (*result.trades, *result.open_trades)))


def fills_csv(result: BacktestResult) -> str:
    """Every fill, oldest first, exactly as the store has it."""
    return _csv(FILL_COLUMNS, ([f.ts.isoformat(), f.strategy, f.symbol, f.side, dec(f.qty), dec(f.price),
                                money(f.commission), money(f.realized), f.kind, f.exec_id, f.client_order_id]
                               for f in result.fills))
