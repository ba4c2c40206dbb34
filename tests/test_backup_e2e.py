"""Backups end to end, with real child processes (issue 13): a backup taken through a headless
engine while it trades restores to a store whose books match its fills to the cent and whose
audit trail verifies; a restore is refused while an engine runs; a backup SIGKILLed half-way
leaves the store and the older backups as they were, and the next one cleans up after it; an
engine that migrates a store backs it up first."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from core.persistence.backup import BACKUPS_DIR, check_file, list_backups
from tests.conftest import CONFIG, ROOT
from tests.test_control_cli import wait_until

CENT = Decimal("0.01")


def run(env: dict[str, str], state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`cockpit ...` as a child process of its own."""
    done = subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(CONFIG), "--state-dir", str(state)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    return done


def cli(capsys: pytest.CaptureFixture[str], state: Path, *args: str) -> tuple[int, str, str]:
    """The same `cockpit` command in this process (warm imports: a child process costs a second
    here); the engine it talks to is a child process all the same."""
    from cockpit.cli import main

    capsys.readouterr()
    try:
        code = main([*args, "--config", str(CONFIG), "--state-dir", str(state)])
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out, err
    return code, out, err


def ok(done: tuple[int, str, str]) -> str:
    code, out, err = done
    assert code == 0, err
    return out


def read(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def books_match_fills(db: Path) -> int:
    """The book the store holds (as `cockpit fills/positions/pnl --json` read it), recomputed
    from its fills alone, to the cent; the number of fills."""
    from cockpit import readers

    conn = readers.connect_readonly(db)
    try:
        fills, pnl = readers.fills(conn), readers.pnl(conn)
        positions = {p["symbol"]: p for p in readers.positions(conn, include_flat=True)}
    finally:
        conn.close()
    qty: dict[str, Decimal] = defaultdict(Decimal)
    flow: dict[str, Decimal] = defaultdict(Decimal)
    commissions = Decimal(0)
    for f in fills:
        signed = Decimal(f["qty"]) * (1 if f["side"] == "BUY" else -1)
        qty[f["symbol"]] += signed
        flow[f["symbol"]] -= signed * Decimal(f["price"])
        commissions += Decimal(f["commission"])
    gross = Decimal(0)
    for symbol, q in qty.items():
        pos = positions[symbol]
        assert Decimal(pos["qty"]) == q, symbol
        last = Decimal(pos["last"]) if pos["last"] is not None else Decimal(0)
        independent = flow[symbol] + q * last
        assert abs(independent - (Decimal(pos["realized_pnl"]) + Decimal(pos["unrealized_pnl"]))) < CENT, symbol
        gross += independent
    assert Decimal(pnl["commissions"]) == commissions
    assert abs(Decimal(pnl["realized"]) + Decimal(pnl["unrealized"]) - gross) < CENT
    assert abs(Decimal(pnl["cash"]) - (Decimal(pnl["starting_cash"]) + sum(flow.values()) - commissions)) < CENT
    return len(fills)


def test_a_backup_taken_while_the_engine_trades_restores_to_books_that_match_their_fills(
        tmp_path: Path, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_DEADMAN__INTERVAL_SECONDS": "3600", "COCKPIT_BACKUP__AT_SESSION_CLOSE": "false"}
    db = state / "cockpit.sqlite"
    with open(tmp_path / "engine.log", "w") as log:
        engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                                   str(state), "--speed", "5000000"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=log)
    try:
        wait_until(lambda: engine.poll() is not None or (
            (state / "control.sock").exists() and read(db, "SELECT count(*) FROM fills")[0][0] >= 20), timeout=60)
        assert engine.poll() is None, (tmp_path / "engine.log").read_text()[-3000:]
        answer = json.loads(ok(cli(capsys, state, "backup", "--json")))
        assert answer["via"] == "engine" and answer["backup"]["verified"] is True
        name = answer["backup"]["name"]
        assert name.endswith("-manual.sqlite") and answer["message"].startswith("backup written: ")
        code, _, err = cli(capsys, state, "restore", name, "--yes")
        assert code == 1 and err.startswith(f"cockpit: an engine is running on {state}: stop it first")
        assert len(err.strip().splitlines()) == 1 and not (state / "archive").exists()
        wait_until(lambda: read(db, "SELECT count(*) FROM fills")[0][0]
                   > read(state / BACKUPS_DIR / name, "SELECT count(*) FROM fills")[0][0])  # it trades on
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=60) == 0, (tmp_path / "engine.log").read_text()[-3000:]

    backup = state / BACKUPS_DIR / name
    in_backup = read(backup, "SELECT exec_id FROM fills ORDER BY seq")
    final = read(db, "SELECT exec_id FROM fills ORDER BY seq")
    assert 20 <= len(in_backup) < len(final) and final[:len(in_backup)] == in_backup  # one commit of the run
    who = read(db, "SELECT actor FROM audit WHERE kind = 'operator.backup'")
    assert [r[0] for r in read(db, f"SELECT subject FROM audit WHERE kind = 'backup.written' AND subject = '{name}'")]
    assert len(who) == 1 and " via socket: cli:" in who[0][0]  # who asked, as the engine saw it

    done = ok(cli(capsys, state, "restore", name, "--yes"))
    assert f"restored {name} into {db}; the store it replaced is kept in " in done
    assert "the account now holds: cash " in done and f"{len(in_backup)} fill(s), the last at " in done
    assert read(db, "SELECT exec_id FROM fills ORDER BY seq") == in_backup
    archived = [p for p in (state / "archive").iterdir()]
    assert len(archived) == 1 and read(archived[0] / "cockpit.sqlite", "SELECT exec_id FROM fills ORDER BY seq") == final
    assert books_match_fills(db) == len(in_backup)
    code, out, _ = cli(capsys, state, "audit", "verify")
    assert code == 0 and "chain intact" in out, out
    restored = read(db, "SELECT actor, subject FROM audit WHERE kind = 'backup.restored'")
    assert len(restored) == 1 and restored[0][0].startswith("cli:") and restored[0][1] == name


_KILLED_MID_COPY = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from core.audit.verify import copy_problems
from core.persistence.backup import write_backup

def step(status, remaining, total):
    print(f"step {remaining}/{total}", flush=True)
    sys.stdin.readline()  # the parent kills us here, half-way through the copy

write_backup(Path(sys.argv[1]), Path(sys.argv[2]), "manual", datetime.now(UTC), (copy_problems,),
             step_pages=16, progress=step)
print("finished", flush=True)
"""


def test_a_backup_killed_half_way_leaves_the_store_and_older_backups_intact(
        tmp_path: Path, clean_env: dict[str, str]) -> None:
    import asyncio
    from datetime import UTC, datetime

    from core.audit.verify import copy_problems
    from core.persistence.backup import write_backup
    from tests.test_backup import make_store

    state = tmp_path / "state"
    state.mkdir()
    db = state / "cockpit.sqlite"
    asyncio.run(make_store(db, fills=20_000))
    folder = state / BACKUPS_DIR
    older = write_backup(db, folder, "scheduled", datetime(2026, 12, 1, tzinfo=UTC), (copy_problems,))
    sums = {db.name: digest(db), older.name: digest(older.path)}
    pages = read(db, "PRAGMA page_count")[0][0]
    assert pages > 100  # many steps of 16 pages: the kill lands inside the copy

    child = subprocess.Popen([sys.executable, "-c", _KILLED_MID_COPY, str(db), str(folder)], cwd=ROOT, env=clean_env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        for _ in range(3):  # let it copy a few steps, then kill it inside the next one
            line = child.stdout.readline()
            assert line.startswith("step "), line
            child.stdin.write("\n")
            child.stdin.flush()
        line = child.stdout.readline()
        remaining, total = (int(n) for n in line.removeprefix("step ").split("/"))
        assert 0 < remaining < total, line  # inside the copy: pages done, pages still to go
        temps = [p.name for p in folder.iterdir() if p.name.startswith(".cockpit-")]
        assert any(t.endswith(".sqlite.tmp") for t in temps), temps  # a copy under way, under its temporary name
    finally:
        child.send_signal(signal.SIGKILL)
        code = child.wait(timeout=30)
    assert code == -signal.SIGKILL
    assert {db.name: digest(db), older.name: digest(older.path)} == sums  # byte for byte as they were
    assert read(db, "PRAGMA integrity_check") == [("ok",)] and check_file(older.path, (copy_problems,)) == []
    assert [b.name for b in list_backups(folder)] == [older.name]  # the half copy is no backup
    assert any(p.name.startswith(".cockpit-") for p in folder.iterdir())

    done = run(clean_env, state, "backup")  # the next backup (no engine: directly, under the state lock)
    assert done.returncode == 0 and done.stdout.startswith("backup written: ") and "not audited" not in done.stdout
    assert not any(p.name.startswith(".cockpit-") for p in folder.iterdir())  # what the kill left is gone
    assert digest(older.path) == sums[older.name] and len(list_backups(folder)) == 2
    written = read(db, "SELECT actor FROM audit WHERE kind = 'backup.written'")
    assert len(written) == 1 and written[0][0].startswith("cli:")


def test_an_engine_backs_a_store_up_before_migrating_it_and_names_are_checked(
        tmp_path: Path, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_FEED__END": "2008-02-29", "COCKPIT_BACKUP__AT_SESSION_CLOSE": "false"}
    assert run(env, state, "--no-ui", "--speed", "max").returncode == 0
    db = state / "cockpit.sqlite"
    with sqlite3.connect(db) as conn:  # as the cockpit before schema v4 left it
        conn.execute("DROP TABLE equity_points")
        conn.execute("UPDATE schema_migrations SET version = 3 WHERE component = 'core'")
    fills = read(db, "SELECT exec_id FROM fills ORDER BY seq")
    assert fills and list_backups(state / BACKUPS_DIR) == []

    again = run(env, state, "--no-ui", "--speed", "max")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "before migrating core from schema v3 to v4" in again.stderr
    (backup,) = list_backups(state / BACKUPS_DIR)
    assert backup.reason == "pre-migration" and check_file(backup.path) == []
    assert read(backup.path, "SELECT version FROM schema_migrations WHERE component = 'core'") == [(3,)]
    assert read(backup.path, "SELECT exec_id FROM fills ORDER BY seq") == fills
    assert read(db, "SELECT version FROM schema_migrations WHERE component = 'core'") == [(4,)]

    for bad in ("../cockpit.sqlite", str(backup.path), "cockpit.sqlite"):
        code, _, err = cli(capsys, state, "restore", bad, "--yes")
        assert code == 2 and "is not a backup name" in err, err
    code, _, err = cli(capsys, state, "restore", "cockpit-20000101T000000Z-manual.sqlite", "--yes")
    assert code == 1 and "no backup named" in err
    code, out, err = cli(capsys, state, "restore", backup.name)  # no terminal to ask on: the plan, then a refusal
    assert code == 2 and "pass --yes" in err and "It holds: cash " in out
    assert read(db, "SELECT version FROM schema_migrations WHERE component = 'core'") == [(4,)]  # untouched

    data = bytearray(backup.path.read_bytes())
    data[-3000:-1000] = b"\x5a" * 2000
    backup.path.write_bytes(bytes(data))
    code, out, _ = cli(capsys, state, "backup", "list")
    assert code == 1 and "FAILED: " in out
    code, _, err = cli(capsys, state, "restore", backup.name, "--yes")
    assert code == 1 and "is damaged, nothing was changed" in err
    code, _, err = cli(capsys, tmp_path / "nothing-here", "backup")
    assert code == 1 and "nothing to back up" in err
