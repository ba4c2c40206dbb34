"""Malformed-input campaign: a million hostile inputs to the config, bar files, control API
and IB wire, each answered by acceptance or by the documented one-line error.

Four targets, each fed from seeds that are really valid (config.toml, the bundled bar files,
valid API bodies, the frames ib_async writes) and then mutated (hostile numbers, NUL, control
characters, huge and deep values, wrong types, flipped and inserted bytes, truncations):

- config: ``core.config.validate_config(data, env)``; ConfigError is the documented refusal;
- bars: ``core.data.bar_files.parse_bar_bytes``; BarFileError is the documented refusal;
- api: every control route of a real engine (paper broker, SQLite store in a temp dir)
  through ``cockpit.control.inprocess.InProcessApi``; a 4xx with a one-line ``detail`` is the
  refusal, a 5xx is counted; at the end the store passes ``integrity_check`` and the audit
  chain verifies;
- wire: the IB simulator's ``decode_client_frame``; ProtocolError is the refusal.

Anything else raised is a *crash*; an input that takes longer than ``--hang-seconds`` is a
*hang* (interrupted by a timer); a refusal whose message is not one line is counted too, and
so are files that appear or change outside the campaign's temp dir (the repository is
listed before and after). Asserts nothing; prints the figures.

    python bench/chaos_inputs.py --inputs 1000000 --jobs 2      # the full campaign
    python bench/chaos_inputs.py --inputs 20000 --only api --seed 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import struct
import sys
import tempfile
import time
import tomllib
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.toml"
TARGETS = ("config", "bars", "api", "wire")

# ---- hostile values -------------------------------------------------------------------------

HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\t", "\n", "\r\n", "\x1b[31m", "\u202e", "\ufeff", "\udcff"[:0] + "\u2028",
    "1e999999", "-1e999999", "1e308", "-1e308", "1e-300", "1e400", "1e30", "1e100", "0.0001", "1e-30",
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-0", "0", "-1", "00", "0x10", "1_000", "1,5", "+-1",
    str(2**63 - 1), str(2**63), str(-(2**63)), str(2**64), "9" * 4301, "9" * 5000, "1" + "0" * 400,
    "１２３", "٣", "💥", "x" * 10_000, "x" * 300, "../outside", "a/../../b", "..", ".", "~", "$HOME",
    "max", "MAX", "true", "null", "[]", "{}", "[" * 500, "{" * 500, '{"a": ' * 200, "%s%n%x", "'; DROP TABLE fills; --",
]
HOSTILE_NUMBERS: list[Any] = [
    0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64, 10**30, 10**400, float("nan"), float("inf"), float("-inf"),
    1e308, -1e308, 1e-300, 5e-324, -0.0, 0.0001, True, False,
]


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """One value a hostile user might put anywhere: text, numbers, None, containers, deep nests."""
    pick = rng.random()
    if pick < 0.45:
        return rng.choice(HOSTILE_TEXT)
    if pick < 0.75:
        return rng.choice(HOSTILE_NUMBERS)
    if pick < 0.8:
        return None
    if pick < 0.9 and depth < 3:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick < 0.95 and depth < 3:
        return {rng.choice(["a", "", "\x00", "symbol", "qty", "x" * 100]): hostile_value(rng, depth + 1)
                for _ in range(rng.randrange(4))}
    nest: Any = rng.choice([[], {}, 1, "x"])
    for _ in range(rng.choice([10, 100, 200])):
        nest = [nest] if rng.random() < 0.5 else {"k": nest}
    return nest


def as_text(value: Any) -> str:
    """A hostile value as the text an environment variable or a TOML string would carry."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):
        return repr(value)


# ---- the outcome of one input ----------------------------------------------------------------

class Hang(BaseException):
    """Raised by the timer inside an input that took too long (BaseException: no handler eats it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(_signum: int, _frame: Any) -> None:
        raise Hang()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: list[str] = []

    def crash(self, target: str, what: str) -> None:
        self.counts[f"{target}.crashes"] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{target}: {what[:400]}")

    def note(self, target: str, outcome: str, message: str | None = None) -> None:
        self.counts[f"{target}.inputs"] += 1
        self.counts[f"{target}.{outcome}"] += 1
        if message is not None and ("\n" in message or len(message) > 2100):
            self.counts[f"{target}.not_one_line"] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{target}: message not one line: {message[:300]!r}")


def guarded(tally: Tally, target: str, hang_seconds: float, call: Callable[[], tuple[str, str | None]],
            describe: Callable[[], str]) -> None:
    try:
        with time_limit(hang_seconds):
            outcome, message = call()
        tally.note(target, outcome, message)
    except Hang:
        tally.counts[f"{target}.inputs"] += 1
        tally.counts[f"{target}.hangs"] += 1
        if len(tally.examples) < 20:
            tally.examples.append(f"{target}: hang over {hang_seconds} s on {describe()[:300]}")
    except RecursionError as exc:
        tally.counts[f"{target}.inputs"] += 1
        tally.crash(target, f"RecursionError {exc} on {describe()[:200]}")
    except Exception as exc:
        tally.counts[f"{target}.inputs"] += 1
        tb = traceback.format_exception(exc)[-2].strip().replace("\n", " | ")
        tally.crash(target, f"{type(exc).__name__}: {exc!s:.200} at {tb} on {describe()[:200]}")


# ---- config -------------------------------------------------------------------------------------

def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    if path:
        yield path


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def config_inputs(rng: random.Random, count: int) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    base = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    leaves = list(_leaves(base))
    sections = [k for k, v in base.items() if isinstance(v, dict)]
    for _ in range(count):
        data = json.loads(json.dumps(base, default=str))  # a deep copy with dates as text, as TOML dates can be
        env: dict[str, str] = {}
        for _ in range(rng.randrange(1, 4)):
            op = rng.random()
            path = rng.choice(leaves)
            try:
                if op < 0.6:
                    _set(data, path, hostile_value(rng))
                elif op < 0.7:
                    _set(data, (*path[:-1], rng.choice(["unknown_key", "", "\x00", "x" * 300])), hostile_value(rng))
                elif op < 0.8:
                    parent: Any = data
                    for key in path[:-1]:
                        parent = parent[key]
                    del parent[path[-1]]
                else:
                    section = rng.choice([*sections, "nosuch", "engine"])
                    key = rng.choice(list(base.get(section, {"x": 0}).keys()) + ["files", "__", "x"])
                    env[f"COCKPIT_{section.upper()}__{str(key).upper()}"] = as_text(hostile_value(rng))
            except (KeyError, IndexError, TypeError):
                pass  # the path went away under an earlier mutation
        yield data, env


def run_config(count: int, rng: random.Random, tally: Tally, hang_seconds: float) -> None:
    from core.config import ConfigError, validate_config

    for data, env in config_inputs(rng, count):
        def call(data: dict[str, Any] = data, env: dict[str, str] = env) -> tuple[str, str | None]:
            try:
                validate_config(data, env)
            except ConfigError as exc:
                return "refused", str(exc)
            return "accepted", None

        guarded(tally, "config", hang_seconds, call, lambda data=data, env=env: f"env={env!r:.100} data={data!r:.100}")


# ---- bar files -------------------------------------------------------------------------------

BAR_SOURCES = [
    ("core/data/bundled/daily/ORCL_1995-2014_yahoo.csv", "XNYS", "America/New_York"),
    ("core/data/bundled/daily/SPY_2007-2017_yahoo.csv", "XNYS", "America/New_York"),
    ("core/data/bundled/intraday/backtrader_2006-01-02-volume-min-001.txt", None, "Europe/Berlin"),
]
BAR_NUMBERS = [b"1e30", b"1e100", b"1e400", b"1e999999999", b"0.0001", b"0", b"-5", b"nan", b"inf", b"",
               b"abc", b"9" * 5000, b"1e-30", b"0x1F", b"\x00", b"12,5", b"2**63"]


def bar_inputs(rng: random.Random, count: int) -> Iterator[tuple[bytes, str | None, str]]:
    seeds = []
    for rel, calendar, tz in BAR_SOURCES:
        lines = (ROOT / rel).read_bytes().split(b"\n")
        seeds.append((lines, calendar, tz))
    for _ in range(count):
        lines, calendar, tz = rng.choice(seeds)
        start = rng.randrange(1, max(2, len(lines) - 60))
        chunk = [lines[0], *lines[start:start + rng.randrange(5, 60)]]
        op = rng.random()
        if op < 0.35:  # a hostile number in a field
            for _ in range(rng.randrange(1, 4)):
                i = rng.randrange(len(chunk))
                fields = chunk[i].split(b",")
                fields[rng.randrange(len(fields))] = rng.choice(BAR_NUMBERS)
                chunk[i] = b",".join(fields)
            raw = b"\n".join(chunk)
        elif op < 0.55:  # flipped and inserted bytes
            buf = bytearray(b"\n".join(chunk))
            for _ in range(rng.randrange(1, 20)):
                pos = rng.randrange(len(buf) + 1)
                if rng.random() < 0.5 and pos < len(buf):
                    buf[pos] = rng.randrange(256)
                else:
                    buf[pos:pos] = bytes([rng.randrange(256)])
            raw = bytes(buf)
        elif op < 0.65:  # wholly binary
            raw = rng.randbytes(rng.randrange(1, 4000))
        elif op < 0.72:  # cut anywhere
            raw = b"\n".join(chunk)
            raw = raw[:rng.randrange(len(raw) + 1)]
        elif op < 0.8:  # encodings and BOMs
            raw = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b""]) + b"\n".join(chunk)
            if rng.random() < 0.5:
                raw = raw.decode("latin-1").encode(rng.choice(["utf-16", "utf-32", "latin-1"]))
        elif op < 0.88:  # rows shuffled, duplicated, out of order
            body = chunk[1:]
            rng.shuffle(body)
            raw = b"\n".join([chunk[0], *body, *body[: rng.randrange(len(body) + 1)]])
        elif op < 0.94:  # a hostile header
            header = rng.choice([b"", b"Date,Date,Date", b"Open,High", b"\x00" * 50, b"Date," * 1000, b"x" * 10000])
            raw = b"\n".join([header, *chunk[1:]])
        else:  # a huge line or huge file of one row
            raw = b"\n".join([chunk[0], chunk[-1] + b"," * rng.choice([10, 10_000, 100_000])])
        yield raw, calendar, tz


def run_bars(count: int, rng: random.Random, tally: Tally, hang_seconds: float) -> None:
    from core.data.bar_files import BarFileError, parse_bar_bytes

    for raw, calendar, tz in bar_inputs(rng, count):
        def call(raw: bytes = raw, calendar: str | None = calendar, tz: str = tz) -> tuple[str, str | None]:
            try:
                parse_bar_bytes(raw, "FUZZ", tz=tz, calendar=calendar)
            except BarFileError as exc:
                return "refused", str(exc)
            return "accepted", None

        guarded(tally, "bars", hang_seconds, call, lambda raw=raw: repr(raw[:120]))


# ---- the control API ------------------------------------------------------------------------

API_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/status", None), ("GET", "/strategies", None), ("GET", "/risk", None), ("GET", "/breaks", None),
    ("GET", "/cancel-all/preview", None), ("GET", "/flatten/preview", None), ("GET", "/flatten/job", None),
    ("GET", "/positions", None), ("GET", "/orders?open=true&limit=50", None), ("GET", "/fills?limit=20", None),
    ("GET", "/pnl", None), ("GET", "/alerts?limit=10", None), ("GET", "/metrics", None),
    ("POST", "/halt", {"actor": "chaos", "reason": "fuzz"}), ("POST", "/resume", {"actor": "chaos"}),
    ("POST", "/cancel-all", {"actor": "chaos"}), ("POST", "/confirm", {"actor": "chaos"}),
    ("POST", "/reconcile", {"actor": "chaos"}), ("POST", "/flatten", {"actor": "chaos", "symbol": "AAPL"}),
    ("POST", "/strategy", {"actor": "chaos", "name": "sma_cross", "enabled": False}),
    ("POST", "/risk", {"actor": "chaos", "key": "max_order_qty", "value": "500"}),
    ("POST", "/position", {"actor": "chaos", "symbol": "AAPL", "qty": "10", "avg_cost": "100"}),
    ("POST", "/orders", {"actor": "chaos", "side": "BUY", "symbol": "AAPL", "qty": "1", "limit": "10"}),
    ("POST", "/resolve", {"actor": "chaos", "symbol": "AAPL", "action": "accept"}),
    ("POST", "/strategies/sma_cross", {"actor": "chaos", "enabled": True}),
    ("POST", "/breaks/AAPL/resolve", {"actor": "chaos", "action": "accept"}),
]
JUNK_PATHS = ["/", "/nosuch", "/../../x", "/halt/../resume", "/strategies/" + "x" * 5000, "/breaks/%00/resolve",
              "/strategies/%ff%fe", "/status?x=" + "y" * 10000, "/flatten/preview?symbol=%00", "//halt", "/HALT",
              "/orders?limit=-5", "/fills?limit=" + "9" * 400, "/alerts?limit=%00", "/orders?open=maybe", "/metrics/"]


def api_inputs(rng: random.Random, count: int) -> Iterator[tuple[str, str, bytes | None]]:
    for _ in range(count):
        method, path, body = rng.choice(API_ROUTES)
        op = rng.random()
        if op < 0.05:
            path = rng.choice(JUNK_PATHS)
        elif op < 0.1:
            method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "POST"])
        if method == "POST" and body is not None and rng.random() < 0.3:
            path = path + "/plan"
        data: Any = dict(body) if body is not None else None
        raw: bytes | None
        if data is not None and rng.random() < 0.85:
            for _ in range(rng.randrange(1, 4)):
                key = rng.choice([*data.keys(), "plan", "extra", "actor", ""])
                if rng.random() < 0.1:
                    data.pop(key, None)
                else:
                    data[key] = hostile_value(rng)
            try:
                raw = json.dumps(data, allow_nan=True).encode()
            except (ValueError, RecursionError):
                raw = b"{"
        elif rng.random() < 0.5:
            raw = rng.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"actor": "x"' * 100, b"1e999999",
                              rng.randbytes(rng.randrange(200)), b'{"actor": "chaos", "reason": "' + b"x" * 100_000 + b'"}'])
        else:
            raw = json.dumps(data).encode() if data is not None else None
        yield method, path, raw


def run_api(count: int, rng: random.Random, tally: Tally, hang_seconds: float, workdir: Path) -> None:
    asyncio.run(_run_api(count, rng, tally, hang_seconds, workdir))


async def _run_api(count: int, rng: random.Random, tally: Tally, hang_seconds: float, workdir: Path) -> None:
    from cockpit.control.inprocess import InProcessApi
    from cockpit.wiring import build_engine
    from core.config import load_config

    state = workdir / "api-state"
    os.environ.pop("COCKPIT_CONFIG", None)
    settings = load_config(CONFIG, state_dir=state,
                           overrides={"feed": {"speed": "max", "end": "2008-03-31"}, "logging": {"level": "ERROR"}})
    engine = build_engine(settings)
    await engine.start()
    await engine.run()  # prices for every symbol, then the engine stays up for the requests
    api = InProcessApi(engine, peer={"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid()})
    loop = asyncio.get_running_loop()
    for method, path, raw in api_inputs(rng, count):
        started = loop.time()
        tally.counts["api.inputs"] += 1
        try:
            reply = await asyncio.wait_for(api.request(method, path, content=raw if raw else None), hang_seconds)
        except TimeoutError:
            tally.counts["api.hangs"] += 1
            continue
        except Exception as exc:
            tally.crash("api", f"{type(exc).__name__}: {exc!s:.200} on {method} {path[:80]} {raw!r:.100}")
            continue
        if loop.time() - started > hang_seconds:
            tally.counts["api.hangs"] += 1
        if reply.status >= 500:
            tally.counts["api.5xx"] += 1
            if len(tally.examples) < 20:
                tally.examples.append(f"api: {reply.status} on {method} {path[:80]} {raw!r:.100}: {reply.raw[:200]!r}")
        elif reply.status >= 400:
            tally.counts["api.refused"] += 1
            detail = reply.detail
            if not isinstance(detail, str) or "\n" in detail or not detail.strip():
                tally.counts["api.not_one_line"] += 1
                if len(tally.examples) < 20:
                    tally.examples.append(f"api: {reply.status} without a one-line detail: {reply.raw[:200]!r}")
        else:
            tally.counts["api.accepted"] += 1
    status = await api.request("GET", "/status")
    if status.status != 200:
        tally.crash("api", f"the engine no longer answers /status: {status.status}")
    await engine.shutdown()
    _check_store(state / "cockpit.sqlite", tally)


def _check_store(db: Path, tally: Tally) -> None:
    import sqlite3

    from core.audit.verify import check

    with sqlite3.connect(db) as conn:
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            tally.crash("api", f"store integrity_check: {ok}")
        report = check(conn)
    if getattr(report, "problems", None):
        tally.counts["api.audit_problems"] += len(report.problems)
        tally.examples.append(f"api: audit chain: {report.problems[0]}")
    tally.counts["api.audit_rows"] = getattr(report, "rows", 0)


# ---- the IB wire ---------------------------------------------------------------------------------

def _written_frames() -> list[list[str]]:
    from ib_async import LimitOrder, MarketOrder, Stock, TagValue
    from ib_async.client import Client

    aapl = Stock("AAPL", "SMART", "USD")
    calls: list[Callable[[Any], None]] = [
        lambda c: c.reqMktData(5, aapl, "", False, False, []),
        lambda c: c.cancelMktData(5),
        lambda c: c.placeOrder(31, aapl, LimitOrder("BUY", 10, 99.5, orderRef="fz-1", tif="GTC")),
        lambda c: c.placeOrder(32, aapl, MarketOrder("SELL", 3, orderRef="fz-2")),
        lambda c: c.placeOrder(33, aapl, LimitOrder("BUY", 1, 50, algoStrategy="Adaptive",
                                                    algoParams=[TagValue("adaptivePriority", "Normal")])),
        lambda c: c.cancelOrder(31, ""),
        lambda c: c.reqOpenOrders(),
        lambda c: c.reqAllOpenOrders(),
        lambda c: c.reqAccountUpdates(True, "DU1234567"),
        lambda c: c.reqPositions(),
        lambda c: c.reqIds(1),
        lambda c: c.reqContractDetails(7, aapl),
        lambda c: c.reqCurrentTime(),
        lambda c: c.reqManagedAccts(),
    ]
    frames = []
    for call in calls:
        sent: list[str] = []
        client = Client(wrapper=None)
        client.connState = Client.CONNECTED
        client._serverVersion = 178
        client.sendMsg = sent.append
        try:
            call(client)
        except Exception:
            continue
        frames.append(sent[0].split("\0")[:-1])
    frames.append(["71", "2", "7", ""])  # startApi
    return frames


def wire_inputs(rng: random.Random, count: int) -> Iterator[bytes]:
    seeds = _written_frames()
    for _ in range(count):
        fields = list(rng.choice(seeds))
        op = rng.random()
        if op < 0.5:
            for _ in range(rng.randrange(1, 4)):
                fields[rng.randrange(len(fields))] = as_text(hostile_value(rng)).replace("\0", "")
            payload = "\0".join(fields).encode("utf-8", "surrogateescape") + b"\0"
        elif op < 0.6:
            del fields[rng.randrange(len(fields)):]
            payload = "\0".join(fields).encode() + b"\0"
        elif op < 0.75:
            payload = bytearray("\0".join(fields).encode() + b"\0")
            for _ in range(rng.randrange(1, 10)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload)
        elif op < 0.85:
            payload = rng.randbytes(rng.randrange(0, 300))
        else:
            payload = "\0".join(fields).encode() + b"\0"
        frame = struct.pack(">I", len(payload)) + payload
        cut = rng.random()
        if cut < 0.05:
            frame = frame[:rng.randrange(len(frame) + 1)]
        elif cut < 0.1:
            frame = struct.pack(">I", rng.choice([0, 2**32 - 1, 2**24, len(payload) + 1])) + payload
        yield frame


def run_wire(count: int, rng: random.Random, tally: Tally, hang_seconds: float) -> None:
    from brokers.ibsim.decode import ProtocolError, decode_client_frame

    for frame in wire_inputs(rng, count):
        def call(frame: bytes = frame) -> tuple[str, str | None]:
            try:
                decode_client_frame(frame)
            except ProtocolError as exc:
                return "refused", str(exc)
            return "accepted", None

        guarded(tally, "wire", hang_seconds, call, lambda frame=frame: repr(frame[:120]))


# ---- driver ------------------------------------------------------------------------------------

def worker(job: tuple[str, int, int, float, str]) -> dict[str, Any]:
    target, count, seed, hang_seconds, tmp = job
    import logging

    logging.disable(logging.CRITICAL)  # a million refusals need not be logged
    rng = random.Random(f"{seed}-{target}-{count}")
    tally = Tally()
    workdir = Path(tempfile.mkdtemp(prefix=f"{target}-", dir=tmp))
    started = time.monotonic()
    if target == "config":
        run_config(count, rng, tally, hang_seconds)
    elif target == "bars":
        run_bars(count, rng, tally, hang_seconds)
    elif target == "api":
        run_api(count, rng, tally, hang_seconds, workdir)
    else:
        run_wire(count, rng, tally, hang_seconds)
    tally.counts[f"{target}.seconds"] += round(time.monotonic() - started, 1)
    return {"counts": dict(tally.counts), "examples": tally.examples}


def repo_listing() -> dict[str, tuple[int, int]]:
    seen: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in (".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache",
                                                ".ruff_cache", ".hypothesis", ".import_linter_cache")]
        for name in files:
            path = Path(folder) / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            seen[str(path)] = (st.st_size, st.st_mtime_ns)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs in all, split over the targets")
    parser.add_argument("--only", default=",".join(TARGETS), help=f"comma-separated targets ({', '.join(TARGETS)})")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: from the clock)")
    parser.add_argument("--hang-seconds", type=float, default=5.0, help="an input slower than this is a hang")
    parser.add_argument("--tmpdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        parser.error(f"--only: unknown target(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    if args.inputs < 1 or args.jobs < 1 or not 0 < args.hang_seconds <= 600:
        parser.error("--inputs and --jobs must be at least 1, --hang-seconds in (0, 600]")
    seed = args.seed if args.seed is not None else int(time.time())
    per_target = args.inputs // len(targets)
    # The API target runs one engine per job; the others split into chunks for the pool.
    jobs: list[tuple[str, int, int, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="cockpit-inputs-", dir=args.tmpdir) as tmp:
        for target in targets:
            n = per_target + (args.inputs - per_target * len(targets) if target == targets[-1] else 0)
            chunks = args.jobs if target == "api" else max(args.jobs, n // 25_000)
            for i in range(chunks):
                size = n // chunks + (1 if i < n % chunks else 0)
                if size:
                    jobs.append((target, size, seed * 1000 + i, args.hang_seconds, tmp))
        before = repo_listing()
        started = time.monotonic()
        print(f"chaos inputs: seed {seed}; {args.inputs} inputs over {', '.join(targets)}; {args.jobs} jobs",
              file=sys.stderr, flush=True)
        totals: Counter[str] = Counter()
        examples: list[str] = []
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for result in pool.imap_unordered(worker, jobs):
                totals.update(result["counts"])
                examples.extend(result["examples"])
                if not args.json:
                    print(f"chaos inputs: {sum(v for k, v in totals.items() if k.endswith('.inputs'))} done, "
                          f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        strays = [p for p in Path(tmp).iterdir() if not p.name.startswith(tuple(f"{t}-" for t in TARGETS))]
        after = repo_listing()
    touched = sorted([str(p) for p in strays] + [p for p, m in after.items() if before.get(p) != m]
                     + [p for p in before if p not in after])
    outside = len(touched)
    examples.extend(f"touched outside the temp dir: {p}" for p in touched[:10])
    report: dict[str, Any] = {"seed": seed, "seconds": round(time.monotonic() - started, 1)}
    for figure in ("inputs", "accepted", "refused", "crashes", "hangs", "5xx", "not_one_line"):
        report[figure] = sum(v for k, v in totals.items() if k.endswith(f".{figure}"))
    report["files_touched_outside_tmp"] = outside
    report["by_target"] = {t: {k.split(".", 1)[1]: round(v, 1) if isinstance(v, float) else v
                               for k, v in sorted(totals.items()) if k.startswith(f"{t}.")} for t in targets}
    report["examples"] = examples[:20]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if key == "by_target":
                for target, figures in value.items():
                    print(f"{target:>14}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
            elif key == "examples":
                for line in value:
                    print(f"       example: {line}")
            else:
                print(f"{key:>26}: {value}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
