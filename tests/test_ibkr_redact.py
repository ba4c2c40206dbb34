"""The IBKR account id never reaches a log, stderr, an audit row or `cockpit status --json`
unmasked: a whole IBKR-mode session in real processes (`cockpit ib-sim` with its own account,
`cockpit --no-ui` at DEBUG so ib_async's wire lines are logged too), and a connect refused for an
account the login does not manage. Plus the mask itself and the logging filter."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.ibkr.redact import AccountRedactor, forget_accounts, install, mask_account, redact, remember_accounts
from tests.conftest import ROOT
from tests.test_control_cli import wait_until
from tests.test_ibkr_wiring import ibkr_config

ACCOUNT = "DU7654321"
MASKED = "DU****321"
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    forget_accounts()
    yield
    forget_accounts()


def test_mask_keeps_two_and_three_characters_and_stars_short_ids_whole() -> None:
    assert mask_account("DU1234567") == "DU****567"
    assert mask_account("U1234567") == "U1***567"
    assert mask_account("F12345678901") == "F1*******901"
    assert mask_account("DU1234") == "******" and mask_account("U1") == "**" and mask_account("") == ""


def test_the_filter_masks_known_ids_in_messages_arguments_and_tracebacks() -> None:
    out = io.StringIO()
    logger = logging.getLogger("test.redact")
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    install(logger)
    install(logger)  # once is enough
    assert handler.filters.count(handler.filters[0]) == 1 and isinstance(handler.filters[0], AccountRedactor)
    try:
        logger.warning("before anyone knows it: %s", ACCOUNT)
        remember_accounts(["", ACCOUNT])
        logger.warning("position: Position(account=%r, qty=%d)", ACCOUNT, 5)
        logger.warning("accounts %s,DU1111111 and XDU7654321 (not a token of its own)", ACCOUNT)
        try:
            raise ConnectionError(f"account {ACCOUNT} refused")
        except ConnectionError:
            logger.exception("failed")
        logging.getLogger("ib_async.client").addHandler(handler)
        logging.getLogger("ib_async.client").setLevel(logging.DEBUG)
        logging.getLogger("ib_async.client").debug("<<< %s", "15,1,DU2222222,DU3333333")  # learnt from the wire
        logger.warning("orders of DU3333333")
    finally:
        logging.getLogger("ib_async.client").removeHandler(handler)
        logging.getLogger("ib_async.client").setLevel(logging.NOTSET)
        logger.removeHandler(handler)
    lines = out.getvalue()
    assert lines.count(ACCOUNT) == 2  # before it was known, and inside a longer token
    assert "before anyone knows it: DU7654321" in lines and "XDU7654321" in lines
    assert f"Position(account='{MASKED}', qty=5)" in lines and f"accounts {MASKED},DU1111111" in lines
    assert f"ConnectionError: account {MASKED} refused" in lines
    assert "<<< 15,1,DU****222,DU****333" in lines and "orders of DU****333" in lines
    assert redact("DU3333333") == "DU****333"


# --------------------------------------------------------------------------- a whole session


def start_sim(state: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", "0", "--state", str(state),
                             "--tick-interval", "0.1", "--seed", "5", "--account", ACCOUNT],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    m = LISTENING.search(proc.stdout.readline())
    assert m, proc.stderr.read() if proc.poll() is not None else "no listening line"
    return proc, int(m.group(1))


def cli(env: dict[str, str], config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cockpit", *args, "--config", str(config)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def status_text(env: dict[str, str], config: Path) -> str:
    r = cli(env, config, "status", "--json")
    assert r.returncode == 0, r.stderr
    return r.stdout


def table_text(state: Path, table: str | None = None) -> str:
    """Every row of ``table`` (every table of the engine's store if None), as text."""
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        names = [table] if table else [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(" ".join(str(v) for v in row) for name in names for row in db.execute(f"SELECT * FROM {name}"))
    finally:
        db.close()


def test_an_ibkr_session_names_the_account_only_masked(clean_env: dict[str, str], tmp_path: Path) -> None:
    sim, port = start_sim(tmp_path / "sim.json")
    # ib_async's wire lines too
    env = {**clean_env, "COCKPIT_LOGGING__LEVEL": "DEBUG", "COCKPIT_LOGGING__IB_ASYNC_LEVEL": "DEBUG"}
    config = ibkr_config(tmp_path, port, client_id=31, reconnect=(0.05, 0.5), settle=0.2)
    out_file, err_file = tmp_path / "engine.out", tmp_path / "engine.err"  # files: DEBUG fills a pipe
    with out_file.open("w") as out_fh, err_file.open("w") as err_fh:
        engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=env,
                                  cwd=ROOT, stdout=out_fh, stderr=err_fh, text=True)
    statuses: list[str] = []

    def status() -> dict:
        statuses.append(status_text(env, config))
        return json.loads(statuses[-1])

    try:
        wait_until(lambda: (tmp_path / "state" / "control.sock").exists() or engine.poll() is not None)
        assert engine.poll() is None, err_file.read_text()[-3000:]
        wait_until(lambda: status()["broker"]["connected"])
        bought = cli(env, config, "order", "buy", "AAPL", "5")
        assert bought.returncode == 0, bought.stderr
        wait_until(lambda: any(p["symbol"] == "AAPL" and float(p["qty"]) == 5 for p in status()["positions"]))
        for command in ("positions", "orders", "fills"):
            r = cli(env, config, command)
            assert r.returncode == 0 and ACCOUNT not in r.stdout + r.stderr, command
    finally:
        if engine.poll() is None:
            engine.send_signal(signal.SIGTERM)
        engine.wait(timeout=60)
        sim.terminate()
        sim.communicate(timeout=30)
    out, err = out_file.read_text(), err_file.read_text()
    assert engine.returncode == 0, err[-2000:]
    log = (tmp_path / "state" / "logs" / "cockpit.log").read_text()
    audit = table_text(tmp_path / "state", "audit")
    assert "ib_async.client: <<< 15,1," in log  # the DEBUG wire lines were there to leak
    for where, text in (("the log file", log), ("stderr", err), ("stdout", out), ("the audit rows", audit),
                        ("any table of the store", table_text(tmp_path / "state")),
                        ("status --json", "\n".join(statuses))):
        leaks = [line for line in text.splitlines() if ACCOUNT in line]
        assert not leaks, f"the account id in {where}: {leaks[:3]}"
    assert f"account {MASKED}" in log and f"account {MASKED}" in audit  # broker.up names it, masked
    assert f"<<< 15,1,{MASKED}" in log and f"account='{MASKED}'" in log  # ib_async's own lines, masked


def test_a_refused_account_is_named_masked_on_stderr_and_in_the_log(clean_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    sim, port = start_sim(tmp_path / "sim.json")
    try:
        config = ibkr_config(tmp_path, port, client_id=32)
        config.write_text(config.read_text().replace("[ibkr]\n", '[ibkr]\naccount = "DU0000001"\n'))
        r = subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(config)], env=clean_env,
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        sim.terminate()
        sim.communicate(timeout=30)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"account DU****001 is not managed by this login ({MASKED})" in r.stderr, r.stderr
    log = (tmp_path / "state" / "logs" / "cockpit.log").read_text()
    for text in (r.stderr, log):
        assert ACCOUNT not in text and "DU0000001" not in text
