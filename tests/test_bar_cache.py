"""The replay's bar cache: a file parsed once gives the same bars and the same warnings from the
cache; a changed file or setting, a damaged entry or an unwritable folder never gives stale bars."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest

import core.data.feeds.replay as replay_mod
from core.config import ConfigError, FeedConfig, Settings
from core.data import bar_cache
from core.data.bar_cache import BarCache
from core.data.bar_files import bundled_path
from core.data.feeds.replay import ReplayFeed

MINUTES = "intraday/backtrader_2006-01-02-volume-min-001.txt"


def minute_config(**extra: object) -> FeedConfig:
    return FeedConfig(files=[{"symbol": "FESX", "path": "m.txt", "tz": "Europe/Berlin", "bar_seconds": 60,
                              "calendar": None}], **extra)


def load(cfg: FeedConfig, data: Path, cache: Path | None) -> ReplayFeed:
    feed = ReplayFeed(cfg, lambda p: data, BarCache(cache) if cache is not None else None)
    feed.load()
    return feed


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "m.txt"
    path.write_bytes(bundled_path(MINUTES).read_bytes())
    return path


def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the file was parsed although the cache holds it")

    monkeypatch.setattr(replay_mod, "read_bar_file", refuse)


def test_a_cached_load_gives_the_same_bars_drops_and_warnings(data: Path, tmp_path: Path, caplog,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    caplog.set_level(logging.WARNING)
    parsed = load(minute_config(), data, None)
    parsed_log = [r.getMessage() for r in caplog.records]
    assert any("inserting Time after Date" in m for m in parsed_log) and any("follows a gap" in m for m in parsed_log)
    load(minute_config(), data, cache)  # fills the cache
    caplog.clear()
    no_parsing(monkeypatch)
    cached = load(minute_config(), data, cache)
    assert cached.bars == parsed.bars and len(cached.bars["FESX"]) == 30889
    assert cached.files[0].dropped == parsed.files[0].dropped
    assert [r.getMessage() for r in caplog.records] == parsed_log
    assert cached.quality.counts == parsed.quality.counts and cached.quality.counts["gap"] > 5
    bars = cached.bars["FESX"]
    assert all(b.start.tzinfo is not None and b.start < b.ts for b in bars)
    assert bars[1].start is bars[0].ts  # a minute starts where the last ended: one datetime, not two


def test_a_changed_file_or_setting_is_read_again(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = load(minute_config(), data, cache)
    text = data.read_bytes().replace(b"3602.00,3603.00", b"3602.00,3604.00", 1)
    data.write_bytes(text)
    changed = load(minute_config(), data, cache)
    assert changed.bars["FESX"][0].high != first.bars["FESX"][0].high
    ranged = load(minute_config(end=date(2006, 1, 31)), data, cache)
    assert len(ranged.bars["FESX"]) < len(changed.bars["FESX"])
    gated = load(minute_config(quality={"gap_factor": 0}), data, cache)
    assert gated.quality.counts["gap"] == 0
    assert len(list(cache.glob("*.bars"))) == 4


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(data: Path, tmp_path: Path, caplog, damage: str) -> None:
    cache = tmp_path / "cache"
    good = load(minute_config(), data, cache)
    [entry] = cache.glob("*.bars")
    blob = entry.read_bytes()
    entry.write_bytes({"flip": blob[:-100] + bytes([blob[-100] ^ 1]) + blob[-99:], "truncate": blob[: len(blob) // 2],
                       "garbage": b"\x00not an entry"}[damage])
    caplog.set_level(logging.WARNING)
    again = load(minute_config(), data, cache)
    assert again.bars == good.bars
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert entry.read_bytes() == blob  # written again, whole


def test_an_unwritable_cache_folder_is_logged_once_and_the_replay_runs(data: Path, tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    caplog.set_level(logging.WARNING)
    cfg = FeedConfig(files=[{"symbol": s, "path": "m.txt", "tz": "Europe/Berlin", "bar_seconds": 60,
                             "calendar": None} for s in ("A", "B")])
    feed = load(cfg, data, blocked / "cache")
    assert len(feed.bars["A"]) == len(feed.bars["B"]) == 30889
    assert sum("cannot be written" in r.getMessage() for r in caplog.records) == 1


def test_the_oldest_entries_go_beyond_the_limit(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bar_cache, "MAX_ENTRIES", 2)
    cache = tmp_path / "cache"
    for month in (1, 2, 3):
        load(minute_config(end=date(2006, month, 20)), data, cache)
    assert len(list(cache.glob("*.bars"))) == 2
    assert not list(cache.glob(".*"))  # no temporary file left


def test_the_cache_folder_is_in_the_state_dir_or_where_the_config_says(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert Settings(engine={"state_dir": str(state)}).bar_cache_dir == state / "cache" / "bars"
    shared = tmp_path / "shared-cache"
    assert Settings(engine={"state_dir": str(state)}, feed={"bar_cache_dir": str(shared)}).bar_cache_dir == shared
    assert Settings(feed={"bar_cache": False}).bar_cache_dir is None
    for bad in ("../outside", "", "cockpit.sqlite"):
        with pytest.raises((ConfigError, ValueError)):
            Settings(feed={"bar_cache_dir": bad})
