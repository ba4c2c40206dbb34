"""Hostile input and faults at the control API, the readers and the audit check (issue
"Hostile input and faults"): the server decides who sent a command; a bad TCP setting
refuses before anything starts; a failing listener never keeps the engine from shutting
down; commands refuse absurd numbers; readers never crash on a stored value; an absent or
empty audit trail is not tampering. Real engines, real sockets, real store files."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cockpit.cli import main as cli_main
from cockpit.control.client import ControlClient
from cockpit.control.client import actor as cli_label
from cockpit.control.inprocess import InProcessApi
from cockpit.engine_host import EngineHost
from cockpit.wiring import build_engine
from core.audit.journal import TRIGGERS, TRIGGERS_SQL, AuditLog
from core.common.clock import SimClock
from core.config import load_config
from core.control.handler import CommandRefused
from core.domain.model import Order, OrderStatus, OrderType, Side, TimeInForce
from core.persistence.store import Store
from tests.conftest import CONFIG, ROOT
from tests.test_control_cli import wait_until

ENGINE_ACTORS = {"deadman", "engine", "risk", "broker", "strategy", "operator", "api"}
REPLAY = {"feed": {"speed": "max", "end": "2008-03-31"}, "deadman": {"enabled": False}}


def settings_for(state: Path, **extra: dict) -> object:
    return load_config(CONFIG, state_dir=state, overrides={**REPLAY, **extra})


def me() -> str:
    uid = os.getuid()
    return f"uid {uid} ({pwd.getpwuid(uid).pw_name}) via socket"


def run_cli(*argv: str) -> tuple[int, str, str]:
    """cockpit.cli.main in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli_main(list(argv))
        except SystemExit as exc:  # argparse: usage
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
async def engine(tmp_path: Path, clean_env):
    e = build_engine(settings_for(tmp_path / "state", reconcile={"settle_seconds": 0}))
    await e.start()
    assert await e.run() is True  # three months replayed: prices and positions
    yield e
    await e.shutdown()


# ---- 1. the actor ----------------------------------------------------------------------------


async def test_the_recorded_actor_is_the_socket_peer_and_the_label_follows(tmp_path: Path, clean_env) -> None:
    """Before: {"actor": "deadman"} was recorded as "deadman". Now the kernel's uid comes first."""
    host = EngineHost(build_engine(settings_for(tmp_path)))
    try:
        assert await host.run() is True  # the replay ends; the control API still answers
        path = host.control.path
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(path)), base_url="http://c") as c:
            assert (await c.post("/halt", json={"actor": "deadman"})).status_code == 200
            assert (await c.post("/cancel-all", json={"actor": "engine"})).status_code == 200
            spoof = f"{me()}: ops"
            assert (await c.post("/halt/plan", json={"actor": spoof})).status_code == 200
            blank = await c.post("/halt", json={"actor": " \n "})
            assert blank.status_code == 422 and "label" in blank.json()["detail"]
            assert (await c.post("/halt", json={"actor": "two\nlines"})).status_code == 200
        await asyncio.to_thread(lambda: ControlClient(path).post("/resume"))  # the CLI's own label
        rows = await host.engine.store.fetchall("SELECT kind, actor FROM audit WHERE kind LIKE 'operator.%' "
                                                "ORDER BY seq")
    finally:
        await host.stop()
    actors = [r["actor"] for r in rows]
    assert actors == [f"{me()}: deadman", f"{me()}: engine", f"{me()}: two?lines", f"{me()}: {cli_label()}"]
    assert not ENGINE_ACTORS & set(actors)
    # `cockpit audit export` shows who, as recorded.
    code, out, _ = run_cli("audit", "export", "--config", str(CONFIG), "--state-dir", str(tmp_path))
    assert code == 0
    exported = [json.loads(line) for line in out.splitlines()]
    assert [x["actor"] for x in exported if x["kind"].startswith("operator.")] == actors


def _post_as(uid: int, directory: Path, name: str, body: bytes) -> int:
    """POST /halt over the Unix socket from a forked child running as ``uid``: its exit code
    is 0 when the engine answered 200."""
    request = (b"POST /halt HTTP/1.1\r\nHost: c\r\nContent-Type: application/json\r\nConnection: close\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        code = 1
        try:
            os.chdir(directory)  # a relative path: the test's parents stay private
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(name)
                s.sendall(request)
                code = 0 if s.recv(65536).startswith(b"HTTP/1.1 200") else 3
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
async def test_the_uid_is_the_kernels_not_the_servers_or_the_clients(tmp_path: Path, clean_env) -> None:
    """A peer that is another user is recorded as that user, whatever label it sends."""
    nobody = pwd.getpwnam("nobody")
    host = EngineHost(build_engine(settings_for(tmp_path)))
    try:
        assert await host.run() is True
        tmp_path.chmod(0o711)  # let that user reach the socket (only for this test)
        host.control.path.chmod(0o666)
        assert await asyncio.to_thread(_post_as, nobody.pw_uid, tmp_path, host.control.path.name,
                                       b'{"actor": "uid 0 (root) via socket: cli:root@box"}') == 0
        [row] = await host.engine.store.fetchall("SELECT actor FROM audit WHERE kind = 'operator.halt'")
    finally:
        await host.stop()
    assert row["actor"] == f"uid {nobody.pw_uid} (nobody) via socket: uid 0 (root) via socket: cli:root@box"


# ---- 2. TCP: refuse before anything starts; every path needs the token -----------------------


def _engine_cmd(state: Path) -> list[str]:
    return [sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir", str(state),
            "--speed", "max"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("token", [None, "short", "long enough but has spaces"])
def test_a_bad_tcp_token_refuses_before_the_engine_starts(tmp_path: Path, clean_env, token: str | None) -> None:
    """Before: the engine started (store created, broker connected) and then refused."""
    env = {**clean_env, "COCKPIT_API__TCP_PORT": str(_free_port())}
    env.pop("COCKPIT_API_TOKEN", None)
    if token is not None:
        env["COCKPIT_API_TOKEN"] = token
    state = tmp_path / "state"
    proc = subprocess.run(_engine_cmd(state), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("cockpit: config error:") and "COCKPIT_API_TOKEN" in line
    assert not (state / "cockpit.sqlite").exists() and not (state / "engine.lock").exists()


def test_a_tcp_port_in_use_refuses_before_the_store_opens(tmp_path: Path, clean_env) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env = {**clean_env, "COCKPIT_API__TCP_PORT": str(taken.getsockname()[1]),
               "COCKPIT_API_TOKEN": "t0ken-for-tests-only-123"}
        state = tmp_path / "state"
        proc = subprocess.run(_engine_cmd(state), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "api.tcp_port: cannot listen on 127.0.0.1" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (state / "cockpit.sqlite").exists()


def test_tcp_asks_the_token_on_every_path_and_records_its_name(tmp_path: Path, clean_env) -> None:
    """Before: GET /nope without a token answered 404 (the route table was open to anyone)."""
    port = _free_port()
    token = "t0ken-for-tests-only-123"
    env = {**clean_env, "COCKPIT_API__TCP_PORT": str(port), "COCKPIT_API_TOKEN": token,
           "COCKPIT_API__TOKEN_NAME": "nightly", "COCKPIT_DEADMAN__INTERVAL_SECONDS": "3600"}
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(tmp_path)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (tmp_path / "control.sock").exists() or proc.poll() is not None)
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        for method, path in (("GET", "/nope"), ("POST", "/nope/plan"), ("GET", "/status")):
            refused = httpx.request(method, f"{url}{path}")
            assert refused.status_code == 401 and refused.json()["detail"] == "missing or wrong bearer token"
            assert httpx.request(method, f"{url}{path}", headers={"Authorization": "Bearer x"}).status_code == 401
        missing = httpx.get(f"{url}/nope", headers=auth)
        assert missing.status_code == 404 and missing.json()["detail"] == "Not Found"
        assert httpx.post(f"{url}/halt", headers=auth, json={"actor": "deadman"}).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
    code, out, _ = run_cli("audit", "export", "--config", str(CONFIG), "--state-dir", str(tmp_path))
    [halt] = [json.loads(x) for x in out.splitlines() if '"operator.halt"' in x]
    assert code == 0 and halt["actor"] == "token nightly via tcp: deadman"


# ---- 3. a stop always reaches the engine's shutdown -------------------------------------------


async def test_a_control_api_that_fails_to_close_still_lets_the_engine_flush_and_close(
        tmp_path: Path, clean_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: control.stop() raising skipped engine.shutdown(): the store stayed open and the
    process hung on its writer thread."""
    host = EngineHost(build_engine(settings_for(tmp_path)))
    assert await host.run() is True
    book = {s: str(p.qty) for s, p in host.engine.portfolio.positions.items()}
    host.engine.store.append("INSERT INTO meta (key, value) VALUES (?, ?)", ("fault", "still buffered"))
    real_stop = host.control.stop

    async def broken_stop() -> None:
        raise OSError(16, "Device or resource busy", str(host.control.path))

    monkeypatch.setattr(host.control, "stop", broken_stop)
    await asyncio.wait_for(host.stop(), 30)  # ends, and raises nothing
    assert not host.engine.store.is_open
    with sqlite3.connect(tmp_path / "cockpit.sqlite") as conn:  # flushed: the buffered row and the book
        assert conn.execute("SELECT value FROM meta WHERE key = 'fault'").fetchone() == ("still buffered",)
        assert dict(conn.execute("SELECT symbol, qty FROM positions").fetchall()) == book and book
    await real_stop()  # the listeners this test left open


# ---- 4. commands: magnitudes and precision; nothing half-done ---------------------------------


@pytest.mark.parametrize("body,why", [
    ({"qty": "10", "avg_cost": "1e28"}, "avg-cost '1e28' is beyond 10000000"),
    ({"qty": "10", "avg_cost": "20000000"}, "is beyond 10000000"),
    ({"qty": "10", "avg_cost": "20.123456789"}, "more than 8 decimal places"),
    ({"qty": "1e10", "avg_cost": "20"}, "qty '1e10' is beyond 1000000000"),
    ({"qty": "10", "avg_cost": "1e-30"}, "more than 8 decimal places"),
    ({"qty": "1e9999999999", "avg_cost": "20"}, "is beyond"),  # was a 500: abs() overflowed
])
async def test_an_override_refuses_absurd_numbers(engine, body: dict, why: str) -> None:
    """Before: avg_cost 1e28 (then 1e12) was booked, and every reader of the store crashed."""
    api = InProcessApi(engine)
    for path in ("/position/plan", "/position"):
        reply = await api.request("POST", path, json={"symbol": "AAPL", "reason": "test", **body})
        assert reply.status == 409 and why in reply.detail, reply.body


async def test_orders_refuse_absurd_limits_and_symbols(engine) -> None:
    api = InProcessApi(engine)
    for body, why in [({"qty": "1", "limit": "0.000000001"}, "more than 8 decimal places"),
                      ({"qty": "1", "limit": "1e8"}, "is beyond"),
                      ({"qty": "2000000000"}, "is beyond 1000000000")]:
        reply = await api.request("POST", "/orders", json={"side": "buy", "symbol": "AAPL", **body})
        assert reply.status == 409 and why in reply.detail, reply.body
    odd = await api.request("POST", "/position", json={"symbol": "\u00b2", "qty": "1", "avg_cost": "1", "reason": "x",
                                                       "new_symbol": True})
    assert odd.status == 409 and "not a symbol" in odd.detail


async def test_a_refused_resolve_leaves_nothing_half_done(engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: resolve accept adopted the broker's unknown order, then refused (a fill in flight)."""
    engine.broker.place(Order("foreign-1", "x", "ORCL", Side.BUY, Decimal(3), OrderType.LIMIT, TimeInForce.GTC,
                              Decimal("1.00"), engine.clock.now(), OrderStatus.SUBMITTED))
    await engine.controls.reconcile(actor="test")
    assert "ORCL" in engine.reconciler.breaks
    monkeypatch.setattr(engine.broker, "in_flight_symbols", lambda: {"ORCL"})
    before = (set(engine.oms.open_orders), engine.portfolio.qty("ORCL"))
    with pytest.raises(CommandRefused, match="on its way"):
        await engine.controls.resolve_break("ORCL", "accept", actor="test", reason="statement")
    assert (set(engine.oms.open_orders), engine.portfolio.qty("ORCL")) == before
    assert "ORCL" in engine.reconciler.breaks


# ---- 4. readers never crash on a stored value ---------------------------------------------------


@pytest.fixture(scope="module")
def ran_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state dir one real engine ran on (positions, orders, fills, audit), closed."""
    state = tmp_path_factory.mktemp("ran") / "state"

    async def run() -> None:
        e = build_engine(settings_for(state))
        await e.start()
        await e.run()
        await e.shutdown()

    with pytest.MonkeyPatch.context() as env:
        for key in [k for k in os.environ if k.startswith("COCKPIT_")]:
            env.delenv(key)
        asyncio.run(run())
    yield state


def hostile_copy(ran_state: Path, into: Path) -> Path:
    """The ran state with every kind of value a reader must survive written straight in."""
    state = into / "state"
    shutil.copytree(ran_state, state)
    with sqlite3.connect(state / "cockpit.sqlite") as conn:
        for table in ("positions", "orders", "fills", "account"):  # as if written without constraints
            conn.executescript(f"CREATE TABLE loose AS SELECT * FROM {table}; DROP TABLE {table}; "
                               f"ALTER TABLE loose RENAME TO {table};")
        symbols = [r[0] for r in conn.execute("SELECT symbol FROM positions ORDER BY symbol")]
        assert len(symbols) >= 4, symbols
        for symbol, column, value in zip(symbols, ("avg_cost", "qty", "last_price", "realized_pnl"),
                                         ("1e28", "abc", b"\x00\xff", "NaN"), strict=False):
            conn.execute(f"UPDATE positions SET {column} = ? WHERE symbol = ?", (value, symbol))
        conn.execute("INSERT INTO positions SELECT '[/oops]', '5', NULL, '0', '1e400', '12.5', updated_at "
                     "FROM positions LIMIT 1")
        oid = conn.execute("SELECT client_order_id FROM orders LIMIT 1").fetchone()[0]
        conn.execute("UPDATE orders SET limit_price = '1e400', qty = ?, strategy = '[bold]x[/', created_at = NULL "
                     "WHERE client_order_id = ?", (b"\x01", oid))
        eid = conn.execute("SELECT exec_id FROM fills LIMIT 1").fetchone()[0]
        conn.execute("UPDATE fills SET price = 'abc', realized_pnl = '1e28', ts = NULL, commission = 7 "
                     "WHERE exec_id = ?", (eid,))
        conn.execute("UPDATE account SET value = 'lots' WHERE key = 'cash'")
    return state


@pytest.mark.parametrize("argv", [["positions"], ["positions", "--all"], ["positions", "--json"], ["pnl"],
                                  ["pnl", "--json"], ["orders"], ["orders", "--json"], ["fills"], ["fills", "--json"]])
def test_readers_show_what_they_cannot_read_and_say_so_in_one_line(ran_state: Path, tmp_path: Path,
                                                                    argv: list[str]) -> None:
    """Before: avg_cost 1e28 in the store made `cockpit positions` and `pnl` raise InvalidOperation."""
    state = hostile_copy(ran_state, tmp_path)
    code, out, err = run_cli(*argv, "--config", str(CONFIG), "--state-dir", str(state))
    assert code == 0, err
    assert "Traceback" not in err and "?" in out
    assert err and all(line.startswith("cockpit: warning: ") for line in err.splitlines()), err
    if "--json" in argv:
        json.loads(out)
    if argv[0] == "positions" and "--json" not in argv:
        assert "[/oops]" in out  # shown as text, never read as markup


# ---- 5. an absent or empty audit trail is not tampering ---------------------------------------


def verify(state: Path) -> tuple[int, str]:
    code, out, err = run_cli("audit", "verify", "--config", str(CONFIG), "--state-dir", str(state))
    return code, out + err


async def test_audit_verify_tells_no_trail_and_an_empty_trail_from_tampering(tmp_path: Path, ran_state: Path) -> None:
    """Before: a store without the audit table (a kill before it was made) was "tampered with"."""
    code, text = verify(tmp_path / "none")
    assert code == 3 and text.startswith("audit: no audit trail: no cockpit store") and "\n" == text[-1:]
    bare = tmp_path / "bare"
    store = Store(bare / "cockpit.sqlite")
    await store.open()  # the engine's tables, killed before the audit log's
    await store.close()
    code, text = verify(bare)
    assert code == 3 and "no audit trail" in text and "tampered" not in text and text.count("\n") == 1
    empty = tmp_path / "empty"
    store = Store(empty / "cockpit.sqlite")
    await store.open()
    await AuditLog(store, SimClock()).load()  # the trail made, nothing written yet
    await store.close()
    code, text = verify(empty)
    assert code == 0 and text == "audit: no audit rows yet: the trail is empty, nothing to check\n"

    intact = verify(ran_state)
    assert intact[0] == 0 and "chain intact" in intact[1]
    for name, statements in [
        ("edited", ["UPDATE audit SET actor = 'someone else' WHERE seq = 3"]),
        ("deleted", ["DELETE FROM audit WHERE seq = 5"]),
        ("cut", ["DELETE FROM audit WHERE seq > (SELECT max(seq) - 2 FROM audit)"]),
    ]:
        state = tmp_path / name
        shutil.copytree(ran_state, state)
        with sqlite3.connect(state / "cockpit.sqlite") as conn:
            for trigger in TRIGGERS:
                conn.execute(f"DROP TRIGGER {trigger}")
            for sql in statements:
                conn.execute(sql)
            conn.executescript(TRIGGERS_SQL)
        code, text = verify(state)
        assert code == 1 and "the audit log was tampered with" in text, (name, text)
    code, usage, _ = run_cli("audit", "verify", "--help")
    assert code == 0 and "exit codes:" in usage and "3  no audit trail here" in usage and "not tampering" in usage
