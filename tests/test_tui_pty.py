"""The cockpit in a real terminal, as a newcomer meets it: it paints, trades on paper,
quits cleanly after a confirm, and a restart shows the same account. SIGTERM and SIGHUP
(the ssh session dropped) stop it cleanly too, with the terminal restored."""

from __future__ import annotations

import signal
from decimal import Decimal
from pathlib import Path

from cockpit import readers
from tests.conftest import CONFIG, ROOT
from tests.pty_session import PtySession

ALT_SCREEN_OFF = b"\x1b[?1049l"


def stored_pnl(state: Path) -> dict[str, str]:
    conn = readers.connect_readonly(state / "cockpit.sqlite")
    try:
        return readers.pnl(conn)
    finally:
        conn.close()


def fill_count(state: Path) -> int:
    if not (state / "cockpit.sqlite").exists():
        return 0
    conn = readers.connect_readonly(state / "cockpit.sqlite")
    try:
        return len(readers.fills(conn))
    finally:
        conn.close()


def test_trade_quit_restart_same_account(clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG), "--state-dir", str(tmp_path)]
    first = PtySession([*args, "--speed", "3000000"], cwd=ROOT, env=clean_env)
    try:
        first.wait_for(r"Positions")
        first.wait_for(r"FILLED", timeout=60)  # the orders pane shows trading
        first.type("q")
        first.wait_for(r"Quit\?")
        first.type("y")
        assert first.wait_exit() == 0
        assert ALT_SCREEN_OFF in first.raw  # the terminal is given back
    finally:
        first.close()
    assert fill_count(tmp_path) > 0
    equity = Decimal(stored_pnl(tmp_path)["equity"])

    # The replay ends before its cursor, so nothing new happens: the account shown on the
    # restart must be exactly the stored one.
    second = PtySession(args, cwd=ROOT, env={**clean_env, "COCKPIT_FEED__END": "2008-01-01"})
    try:
        second.wait_for(rf"equity {equity:,.2f}")
        second.wait_for(r"replay finished")
        second.signal(signal.SIGTERM)
        assert second.wait_exit() == 0
        assert ALT_SCREEN_OFF in second.raw
    finally:
        second.close()
    assert Decimal(stored_pnl(tmp_path)["equity"]) == equity


def test_sighup_stops_cleanly_and_flushes(clean_env, tmp_path: Path) -> None:
    args = ["--config", str(CONFIG), "--state-dir", str(tmp_path), "--speed", "3000000"]
    session = PtySession(args, cwd=ROOT, env=clean_env, size=(80, 24))
    try:
        session.wait_for(r"Positions")
        session.wait_for(r"FILLED", timeout=60)
        session.signal(signal.SIGHUP)
        assert session.wait_exit() == 0
        assert ALT_SCREEN_OFF in session.raw
    finally:
        session.close()
    assert fill_count(tmp_path) > 0
    log = (tmp_path / "logs" / "cockpit.log").read_text()
    assert "SIGHUP received: stopping the engine" in log
