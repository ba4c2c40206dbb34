"""Fuzzing the two doors hostile input comes through (issue "Hostile input and faults", part 3).

(a) Config: a random value for any key of the default config (or a key it does not have), and
random ``COCKPIT_*`` environment variables: ``validate_config`` either accepts or raises
``ConfigError`` with one line; never another exception.
(b) Bar files: random bytes, and random mutations of real bundled files: ``parse_bar_bytes``
either gives sane bars (and one-line reasons for the rows it dropped) or raises
``BarFileError`` with one line; never another exception, and quotes synthesised from the bars
it keeps never raise either.

Both run in-process on the entry points a long campaign calls (``bench/chaos_inputs.py``), with
no hypothesis database (nothing is written outside pytest's temp dirs), plus one real
``cockpit --no-ui`` on a garbage file.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import ConfigError, FeedConfig, validate_config
from core.data.bar_files import BarFileError, bundled_path, parse_bar_bytes
from core.data.bar_rows import MAX_PRICE, MAX_VOLUME, MIN_PRICE
from core.data.calendar import ExchangeSession
from core.data.feeds.replay import ReplayFeed
from core.domain.model import Bar
from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def one_line(exc: Exception) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message and len(message) <= 2100, message[:3000]


# --------------------------------------------------------------------------- (a) config and environment

BASE: dict[str, Any] = tomllib.loads(CONFIG.read_text(encoding="utf-8"))


def _leaves(tree: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in _leaves(v, (*at, k))] or [at]
    if isinstance(tree, list) and tree and isinstance(tree[0], dict):
        return [p for i, v in enumerate(tree) for p in _leaves(v, (*at, i))]
    return [at]


# Every key of the default config, plus keys it leaves at their defaults, plus a few it does not have.
KEYS = sorted({*_leaves(BASE), ("ibkr", "host"), ("ibkr", "port"), ("ibkr", "restart_tz"), ("ibkr", "restart_window"),
               ("ibkr", "id_state_file"), ("ibkr", "account"), ("feed", "files", 0, "tz"), ("feed", "files", 0, "calendar"),
               ("feed", "files", 0, "bar_seconds"), ("feed", "files", 0, "bar_time"), ("feed", "synthetic", "rate"),
               ("feed", "symbols"), ("engine", "market_tz"), ("keys", "app.quit"), ("nope",), ("feed", "nope"),
               ("strategies", "sma_cross", "params", "nope"), ("_cli_parse_args",), ("config_path",),
               *((section,) for section in BASE), ("strategies", "sma_cross"), ("strategies", "sma_cross", "params"),
               ("feed", "files"), ("feed", "files", 0), ("ibkr",), ("feed", "synthetic")}, key=repr)
FIELD_WORDS = ["engine", "feed", "files", "paper", "latency_ms", "strategies", "sma_cross", "params", "fast", "risk",
               "allowed_symbols", "ibkr", "restart_tz", "market_tz", "logging", "file", "keys", "api", "token_env",
               "symbols", "speed", "deadman", "x"]

HOSTILE_TEXT = ["", " ", "\x00", "a\x00b", "\n", "two\nlines", "\r", "\x1b[31m", "\x7f", "é", "\ud800", "America",
                "../../../outside/zone", "/", "~", "..", ".", "UTC", "max", "nan", "inf", "-inf", "1e999999", "-0",
                "1e-999999", "0x10", "1_000", "true", "null", "[", "{", "[1", '{"a":', "23:45-00:15", "24:00-25:00",
                "bundled:daily/SPY_2007-2017_yahoo.csv", "bundled:../x", "cockpit.sqlite", "REDUCING", "paper"]
big_text = st.builds(lambda c, n: c * n, st.sampled_from(["A", "[", "{", "\x00", "é", "/", "1", "a/"]),
                     st.sampled_from([64, 65, 255, 256, 300, 4096, 4097, 20000]))
deep = st.builds(lambda n, kind: _nest(n, kind), st.sampled_from([15, 16, 17, 40, 600]), st.sampled_from(["list", "dict"]))
scalars = st.one_of(
    st.sampled_from(HOSTILE_TEXT), st.text(max_size=30), big_text, st.booleans(), st.none(),
    st.integers(), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1, 1, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.dates(), st.times(),
)
values = st.one_of(scalars, deep, st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                                                | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=8))


def _nest(n: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value] if kind == "list" else {"a": value}
    return value


def _with(tree: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``tree`` with ``value`` at ``path`` (made where missing)."""
    out = tomllib.loads(CONFIG.read_text(encoding="utf-8")) if tree is BASE else tree
    node: Any = out
    for key, below in zip(path[:-1], path[1:], strict=True):
        want = list if isinstance(below, int) else dict
        if isinstance(node, list):
            while len(node) <= key:
                node.append({"symbol": "X", "path": "x.csv"})
            if not isinstance(node[key], want):
                node[key] = want()
            node = node[key]
            continue
        if not isinstance(node.get(key), want):
            node[key] = want()
        node = node[key]
    if isinstance(node, list):
        while len(node) <= path[-1]:
            node.append({})
    node[path[-1]] = value
    return out


def check_config(data: Any, env: dict[str, str] | None = None) -> None:
    try:
        validate_config(data, env)
    except ConfigError as exc:
        one_line(exc)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=3))
def test_any_value_of_any_key_is_accepted_or_one_config_error(changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    data = BASE
    for path, value in changes:
        data = _with(data, path, value)
    check_config(data)


env_names = st.builds(lambda parts: "COCKPIT_" + "__".join(parts),
                      st.lists(st.sampled_from(FIELD_WORDS) | st.text(max_size=6), min_size=1, max_size=5))
env_values = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40), big_text,
                       st.builds(lambda n, o, c: o * n + c * n, st.sampled_from([3, 16, 17, 2000, 5000]),
                                 st.sampled_from(["[", "{", '{"a":', '[{"symbol":"A","path":"']),
                                 st.sampled_from(["]", "}", "", '"}]'])),
                       st.just('[{"symbol": "SPY", "path": "a\\u0000b"}]'), st.just('{"files": [{"tz": "' + "Z" * 300 + '"}]}'))


@FUZZ
@given(st.dictionaries(env_names, env_values, min_size=1, max_size=4))
def test_any_cockpit_environment_is_accepted_or_one_config_error(env: dict[str, str]) -> None:
    check_config(BASE, env)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_config_file_bytes_are_accepted_or_one_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                                raw: bytes) -> None:
    from core.config import load_config

    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_bytes(raw)
    try:
        load_config(path, state_dir=path.parent / "state")
    except ConfigError as exc:
        one_line(exc)


# --------------------------------------------------------------------------- (b) bar files

def _head(relative: str, n: int) -> bytes:
    return b"".join(bundled_path(relative).read_bytes().splitlines(keepends=True)[:n])


SAMPLES: list[tuple[bytes, dict[str, Any]]] = [
    (_head("daily/SPY_2007-2017_yahoo.csv", 120), {}),
    (_head("daily/ORCL_1995-2014_yahoo.csv", 80), {"calendar": None}),
    (_head("intraday/SP500_NOV2019_IDay.csv", 120), {"bar_time": "start"}),
    (_head("intraday/backtrader_2006-01-02-volume-min-001.txt", 120), {"tz": "Europe/Berlin"}),
    (_head("intraday/backtrader_2006-min-005.txt", 120), {"tz": "Europe/Berlin", "bar_seconds": 300}),
]
EXTREME_FIELDS = [b"1e30", b"1e100", b"1e400", b"1e999999999", b"1e99999999999999999999", b"-1e999999999", b"1e-999999999",
                  b"0", b"-0", b"0.0001", b"1e-8", b"1e9", b"1000000000.01", b"NaN", b"sNaN", b"inf", b"-", b"", b" ",
                  b"\xff", b"\x00", b'"', b'"1"', b"1" * 5000, b"9999-12-31", b"0001-01-01", b"1899-12-31", b"2200-01-01",
                  b"2024-02-30", b"23:59:60", b"24:00", b"99:99", b"2019-11-05T09:30:00+23:59", b"1e30,1e30", b"\r",
                  "é".encode(), b"\xef\xbb\xbf"]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    raw, kwargs = draw(st.sampled_from(SAMPLES))
    lines = raw.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["field", "field", "flip", "insert", "delete", "dup", "swap", "cut"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            break
        if op == "field":
            sep = b";" if b";" in lines[0] else b","
            fields = lines[i].rstrip(b"\r\n").split(sep)
            fields[draw(st.integers(0, len(fields) - 1))] = draw(st.sampled_from(EXTREME_FIELDS))
            lines[i] = sep.join(fields) + b"\n"
        elif op == "flip":
            line = bytearray(lines[i])
            if line:
                line[draw(st.integers(0, len(line) - 1))] = draw(st.integers(0, 255))
            lines[i] = bytes(line)
        elif op == "insert":
            lines.insert(i, draw(st.binary(max_size=40)))
        elif op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines = lines[:i]
    return b"".join(lines), kwargs


@pytest.fixture(scope="module", autouse=True)
def _calendar_built() -> None:
    """Build XNYS once for every date a row may have (mutated dates would otherwise widen it, 0.5 s a time)."""
    ExchangeSession("XNYS").sessions(date(1900, 1, 1), date(2199, 12, 31))


def check_bars(raw: bytes, spread_bps: int, increment: str, quotes: int, **kwargs: Any) -> None:
    try:
        bars, dropped = parse_bar_bytes(raw, "T", source="fuzz.csv", **kwargs)
    except BarFileError as exc:
        one_line(exc)
        assert "fuzz.csv" in str(exc)
        return
    for row in dropped:
        assert row.reason and "\n" not in row.reason and "\r" not in row.reason and len(row.reason) < 300, row
    prev: Bar | None = None
    for b in bars:
        assert b.start.tzinfo is UTC and b.ts.tzinfo is UTC and b.start < b.ts
        assert MIN_PRICE <= b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high <= MAX_PRICE
        assert 0 <= b.volume <= MAX_VOLUME
        assert prev is None or b.ts > prev.ts
        prev = b
    feed = ReplayFeed(FeedConfig(spread_bps=Decimal(spread_bps), price_increment=Decimal(increment),
                                 quotes_per_bar=quotes), lambda p: Path(p))
    feed.bars = {"T": bars}
    assert len(list(feed.events())) == len(bars) * (quotes + 1)  # quote synthesis never raises on a kept bar


feed_knobs = (st.sampled_from([0, 2, 999, 1000]), st.sampled_from(["1e-8", "0.0001", "0.01", "1", "100"]),
              st.sampled_from([1, 2, 4]))


@FUZZ
@given(mutated(), *feed_knobs)
def test_a_mutated_real_file_loads_with_reasons_or_is_one_data_error(sample: tuple[bytes, dict[str, Any]],
                                                                     spread: int, increment: str, quotes: int) -> None:
    raw, kwargs = sample
    check_bars(raw, spread, increment, quotes, **kwargs)


header = st.sampled_from([b"", b"Date,Open,High,Low,Close,Volume\n", b"Date,Time,Open,High,Low,Close,Volume\n",
                          b"\xef\xbb\xbfDate;Open;High;Low;Close;Volume\r\n"])
csvish = st.text(alphabet=',;"\t\n\r0123456789.-+:eE/ TZ', max_size=600).map(str.encode)


@FUZZ
@given(header, st.binary(max_size=600) | csvish, st.sampled_from([{}, {"calendar": None}, {"bar_seconds": 60}]),
       *feed_knobs)
def test_random_bytes_load_with_reasons_or_are_one_data_error(head: bytes, body: bytes, kwargs: dict[str, Any],
                                                              spread: int, increment: str, quotes: int) -> None:
    check_bars(head + body, spread, increment, quotes, **kwargs)


# --------------------------------------------------------------------------- the real command line

def test_cockpit_on_a_garbage_file_prints_one_line_and_exits_2(tmp_path: Path, clean_env) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(200)))  # 6,400 random-looking bytes
    config = tmp_path / "config.toml"
    config.write_text('[[feed.files]]\nsymbol = "SPY"\npath = "garbage.csv"\n'
                      '[strategies.sma_cross]\nkind = "sma_cross"\nsymbols = ["SPY"]\n')
    proc = subprocess.run([sys.executable, "-m", "cockpit", "--no-ui", "--speed", "max", "--config", str(config),
                           "--state-dir", str(tmp_path / "state")], cwd=ROOT, env=clean_env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "engine failed" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("cockpit: data error: feed.files[SPY]: ")
    assert str(garbage) in proc.stderr
    assert all(p.resolve().is_relative_to(tmp_path.resolve()) for p in tmp_path.rglob("*"))
