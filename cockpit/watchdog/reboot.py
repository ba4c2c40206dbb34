"""The watchdog's answer to a run that went down with the machine (a power cut, a reboot).

A reboot is not an engine crash: systemd's ``OnFailure=`` never fires on one, so the emergency
flatten does not run there, and the watchdog does not run it here either (the two installs
agree). What is left to do: the halt-on-start latch and the audit row (cockpit/watchdog/respond.py,
as for a death), and one critical alert saying the machine restarted while the engine was
trading, what the book held per the store, and that trading resumes only with `cockpit resume`.
"""

from __future__ import annotations

import secrets
import socket
import sqlite3
from datetime import datetime
from pathlib import Path

from cockpit.readers import NoState, connect_readonly, orders, positions
from cockpit.run_record import RunRecord
from core.alerts.model import Alert, Severity
from core.config import Settings
from core.persistence.files import DB_FILENAME

ALERT_KIND = "engine.error"  # routed like the engine's own errors (Discord and email by default)
MAX_LISTED = 12  # positions named in the alert; the rest are counted


def what_happened(record: RunRecord) -> str:
    return "went down with the machine: it restarted (a power cut or a reboot) while the engine was trading"


def held_book(state_dir: Path) -> str:
    """One line: the positions and open orders the store holds (as of the last commit before the
    machine went down), or why it cannot say. Never raises."""
    try:
        conn = connect_readonly(Path(state_dir) / DB_FILENAME)
    except (NoState, sqlite3.Error) as exc:
        return f"the store cannot say ({exc})"
    try:
        held = positions(conn, warn=lambda _message: None)
        working = orders(conn, only_open=True, warn=lambda _message: None)
    except sqlite3.Error as exc:
        return f"the store cannot say ({exc})"
    finally:
        conn.close()
    names = [f"{p['symbol']} {p['qty']}" for p in held[:MAX_LISTED]]
    if len(held) > MAX_LISTED:
        names.append(f"and {len(held) - MAX_LISTED} more")
    book = ", ".join(names) if names else "flat"
    return f"{book}; {len(working)} open order(s)"


def reboot_alert(settings: Settings, record: RunRecord, actor: str, at: datetime, book: str) -> Alert:
    where = "at IB Gateway" if settings.broker.kind == "ibkr" else "in the paper broker"
    return Alert(
        kind=ALERT_KIND, severity=Severity.CRITICAL, title="Machine restarted while the engine was trading",
        text=f"The machine restarted (a power cut or a reboot) while {record.name()} was trading (since "
             f"{record.trading_since}). A reboot is not an engine crash: nothing was flattened, and what was open "
             f"{where} is still open.\nThe book per the store: {book}.\nThe next start comes up HALTED: check "
             "the account, then trading resumes only with `cockpit resume` (or `h` in the cockpit).",
        key=f"{ALERT_KIND}:watchdog:{record.run}", at=at, id=f"watchdog-{secrets.token_hex(6)}",
        fields=(("by", actor), ("host", socket.gethostname()[:100]), ("run", record.run), ("book", book[:300]),
                ("broker", settings.broker.kind)))
