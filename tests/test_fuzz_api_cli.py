"""Fuzz: every control API route with random bodies, types and numbers against a real engine,
and random argv to the CLI. Never a 5xx, never a traceback; every refusal is one line; the
state stays whole (the store opens and passes its integrity check, the audit chain verifies,
fills move only when a command ran) and nothing is written outside the state dir."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.control.inprocess import InProcessApi, quote_path
from cockpit.wiring import build_engine
from core.audit.verify import check
from core.config import load_config
from tests.conftest import CONFIG, ROOT
from tests.test_hostile_api import hostile_copy, me, ran_state, run_cli  # noqa: F401 - ran_state is a fixture

SYMBOLS = ["AAPL", "NVDA", "ORCL", "SPY", "YHOO"]
NUMBERS = ["1e28", "-1e28", "1e-30", "nan", "NaN", "inf", "-Infinity", "-0", "0", "1e999999", "1e9999999999",
           "-1e-9999999999", "0.000000001", "9" * 39, "1_000", " 5 ", "0x10", "", "1", "10", "20.5", "-5", "1e9",
           "1e7", "12.34567891", "2**63"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.sampled_from(NUMBERS),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
PLAUSIBLE = {
    "actor": st.sampled_from(["fuzz", "deadman", "engine", "risk", "uid 0 (root) via socket", " ", "a\nb", "x" * 101]),
    "reason": st.sampled_from(["fuzz", "", "x" * 501, "why\x00not"]),
    "plan": st.sampled_from(["0" * 16, "f" * 64, "g" * 65]),
    "symbol": st.sampled_from([*SYMBOLS, "ZZZZ", "aapl", "\u00b2", "A" * 17, "", "BRK.B"]),
    "new_symbol": st.booleans(),
    "qty": st.sampled_from(NUMBERS), "avg_cost": st.sampled_from(NUMBERS), "limit": st.sampled_from(NUMBERS),
    "value": st.sampled_from(NUMBERS),
    "side": st.sampled_from(["buy", "sell", "BUY", "hold", ""]),
    "key": st.sampled_from(["max_order_qty", "max_order_notional", "price_collar_pct", "daily_loss_limit", "nope"]),
    "name": st.sampled_from(["sma_cross", "rsi_reversion", "", "nope"]),
    "strategy": st.sampled_from(["sma_cross", "rsi_reversion", "", "nope", "operator", " sma_cross "]),  # POST /allocation
    "enabled": st.booleans(),
    "action": st.sampled_from(["accept", "adopt", "flatten", "ignore"]),
    "sink": st.sampled_from(["log", "discord", "nope", "", "x" * 33, "log\n"]),  # POST /alerts/test
}
RAW_BODIES = [b"{", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"actor": "x", "actor": "y"}', b"null", b"1e999999",
              b'{"actor": "' + b"x" * 70000 + b'"}']


GOOD = {**PLAUSIBLE, "actor": st.sampled_from(["fuzz", "deadman", "engine", "uid 0 (root) via socket: x", "a\nb"]),
        "reason": st.sampled_from(["fuzz", "why\x00not", "two\nlines"]), "plan": st.sampled_from(["0" * 16])}


def _value(key: str) -> st.SearchStrategy[object]:
    """Sometimes a value of the right kind, sometimes anything."""
    return st.one_of(PLAUSIBLE[key], JSON) if key in PLAUSIBLE else JSON


def _body(route: APIRoute) -> st.SearchStrategy[object]:
    """Bodies that reach the handler (the right keys and kinds, hostile numbers and text),
    bodies that do not (wrong kinds, extra keys), and bodies that are not JSON objects."""
    model = {f: info for p in route.dependant.body_params for f, info in p.field_info.annotation.model_fields.items()}
    required = [f for f, info in model.items() if info.is_required()]
    optional = [f for f in model if f not in required]
    clean = st.fixed_dictionaries({f: GOOD[f] for f in required}, optional={f: GOOD[f] for f in optional})
    mixed = st.fixed_dictionaries({f: _value(f) for f in required}, optional={f: _value(f) for f in optional})
    extra = st.fixed_dictionaries({"extra": JSON}, optional={f: _value(f) for f in model})
    return st.one_of(clean, clean, clean, clean, mixed, mixed, extra, JSON, st.sampled_from(RAW_BODIES))


def _path(route: APIRoute, draw: st.DataObject) -> str:
    path = route.path
    for name in route.param_convertors:
        raw = draw.draw(st.sampled_from([*SYMBOLS, "sma_cross"]) | st.text(min_size=1, max_size=20), label=name)
        path = path.replace("{" + name + "}", quote_path(raw))
    return path


# The GET routes that read (their query parameters are drawn from QUERY_KEYS).
READ_ROUTES = {("GET", p) for p in ("/status", "/positions", "/orders", "/fills", "/pnl", "/alerts", "/metrics",
                                    "/metrics/performance", "/reports/daily")}
QUERY_KEYS = ["symbol", "x", "limit", "open", "strategy", "date"]
NUMBERS_TEXT = st.sampled_from(["0", "1", "-1", "10000", "10001", "1e3", "true", "false", "2008-03-03", "9" * 30])


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, those of included routers too (FastAPI 0.165 keeps an included router as
    one entry whose ``original_router`` holds its routes; none of ours has a prefix)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif (inner := getattr(route, "original_router", None)) is not None:
            out += _api_routes(inner.routes)
    return out


def _outside(tmp: Path, state: Path) -> set[str]:
    found = {str(p.relative_to(tmp)) for p in tmp.rglob("*") if state not in p.parents and p != state}
    # Tool output beside the repo (hypothesis' cache, another worker's snapshot report) is not the engine's.
    tools = {".hypothesis", ".pytest_cache", "snapshot_report.html", "__pycache__"}
    return found | {f"ROOT/{p.name}" for p in ROOT.iterdir() if p.name not in tools}


def test_every_route_answers_hostile_input_without_a_5xx_and_the_state_stays_whole(tmp_path: Path, clean_env) -> None:
    state = tmp_path / "state"
    loop = asyncio.new_event_loop()
    engine = build_engine(load_config(CONFIG, state_dir=state, overrides={
        "feed": {"speed": "max", "end": "2008-03-31"}, "deadman": {"enabled": False}}))
    try:
        loop.run_until_complete(engine.start())
        loop.run_until_complete(engine.run())
        loop.run_until_complete(engine.store.flush())
        api = InProcessApi(engine, peer={"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()})
        routes = sorted(((m, r) for r in _api_routes(api.app.routes) for m in r.methods),
                        key=lambda x: (x[1].path, x[0]))
        assert READ_ROUTES <= {("GET", r.path) for _, r in routes}  # the read routes are fuzzed too
        fills_before = loop.run_until_complete(engine.store.fetchall("SELECT exec_id FROM fills"))
        outside = _outside(tmp_path, state)
        ran: list[str] = []

        @settings(max_examples=600, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(data=st.data())
        def one_request(data: st.DataObject) -> None:
            method, route = data.draw(st.sampled_from([*routes, ("GET", None), ("POST", None), ("PUT", None)]),
                                      label="route")
            if route is None:  # no such route, or the wrong method
                path = "/" + "/".join(quote_path(x) for x in data.draw(st.lists(st.text(min_size=1, max_size=8),
                                                                                max_size=3), label="path"))
                body = data.draw(JSON, label="body")
            else:
                path = _path(route, data)
                body = data.draw(_body(route), label="body") if method == "POST" else None
            params = data.draw(st.dictionaries(st.sampled_from(QUERY_KEYS), st.text(max_size=10) | NUMBERS_TEXT,
                                               max_size=2), label="query")
            if isinstance(body, bytes):
                reply = loop.run_until_complete(api.request(method, path, content=body, params=params,
                                                            headers={"content-type": "application/json"}))
            else:
                reply = loop.run_until_complete(api.request(method, path, json=body, params=params))
            assert reply.status < 500, (method, path, body, reply.body)
            if reply.status >= 400:
                detail = reply.detail
                assert isinstance(detail, str) and detail.strip() and "\n" not in detail and len(detail) <= 500, reply
            elif method == "POST" and not path.endswith("/plan"):
                ran.append(path)

        one_request()
        loop.run_until_complete(engine.store.flush())
        fills_after = loop.run_until_complete(engine.store.fetchall("SELECT exec_id FROM fills"))
        actors = loop.run_until_complete(engine.store.fetchall(
            "SELECT DISTINCT actor FROM audit WHERE kind LIKE 'operator.%'"))
    finally:
        loop.run_until_complete(engine.shutdown())
        loop.close()
    assert _outside(tmp_path, state) == outside  # nothing written beside the state dir, or in the repo
    if not any(p in ("/position", "/orders", "/flatten", "/resolve") or p.startswith("/breaks/") for p in ran):
        assert fills_after == fills_before
    assert {r["exec_id"] for r in fills_before} <= {r["exec_id"] for r in fills_after}
    assert actors and all(r["actor"].startswith(f"{me()}: ") for r in actors), actors  # the server decided
    with sqlite3.connect(state / "cockpit.sqlite") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        report = check(conn)
        assert report.problems == [] and report.rows > 0


# ---- the CLI ------------------------------------------------------------------------------------

COMMANDS = ["positions", "orders", "fills", "pnl", "status", "flatten", "cancel-all", "halt", "resume", "strategy",
            "risk", "allocation", "position", "order", "confirm", "breaks", "reconcile", "resolve", "audit", "paper", "backup",
            "restore"]
# Never --config/--state-dir (pinned below), --direct/--client-id (IB Gateway), `paper reset` or `run`.
WORDS = ["--json", "--all", "--open", "--limit", "--yes", "--no-wait", "--wait", "--reason", "--avg-cost",
         "--new-symbol", "--since", "--format", "--help", "-h", "--speed", "--no-ui", "--bogus", "-x", "verify",
         "export", "set", "show", "list", "enable", "disable", "buy", "sell", "accept", "adopt", "flatten",
         "jsonl", "csv", "2h", "2024-01-01", "max_order_qty", "sma_cross", *SYMBOLS, *NUMBERS]
FREE = st.text(max_size=12).filter(lambda t: not t.startswith("-") and t not in ("run", "ib-sim", "reset"))
CODES = {0: "ok", 1: "refused or no engine", 2: "usage or config", 3: "audit verify: no trail"}


def test_random_argv_gives_a_documented_exit_code_and_never_a_traceback(ran_state: Path, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    state = hostile_copy(ran_state, tmp_path)
    outside = _outside(tmp_path, state)

    @settings(max_examples=150, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(prefix=st.lists(st.just("--no-ui"), max_size=1), command=st.sampled_from(COMMANDS),
           rest=st.lists(st.sampled_from(WORDS) | FREE, max_size=6))
    def one_call(prefix: list[str], command: str, rest: list[str]) -> None:
        argv = [*prefix, command, *rest, "--config", str(CONFIG), "--state-dir", str(state)]
        code, out, err = run_cli(*argv)
        assert code in CODES and (code != 3 or command == "audit"), (argv, code, err)
        assert "Traceback" not in err and "Traceback" not in out, argv
        if code == 2:
            assert "usage:" in err or err.startswith("cockpit: "), (argv, err)
        elif code == 1:
            assert err.strip(), argv  # a refusal says why
            assert all(line.startswith(("cockpit: ", "audit: ")) for line in err.splitlines()), (argv, err)

    one_call()
    assert _outside(tmp_path, state) == outside

