"""A replay leaves exactly the store it left before it was made faster (wt-perfreplay).

``tests/test_replay_same_trades.py`` guards the fills and the orders. This guards every other
table a replay writes, byte for byte as stored: the daily reports (each session's JSON
summary), the equity points, the book and the paper venue's account, the alerts (their wording
and fields), the audit trail's payloads. The golden figures were taken on commit b413b5c
(before the wt-perfreplay speed-ups) with ``python -m tests.replay_store_fingerprint``; see
``tests/replay_store_fingerprint.py`` for what is left out (wall-clock stamps, random ids, the
session-close backup's rows) and why.

The alerts of the daily summaries changed by design (wt-replaysum): a replay faster than live
sends the first session's summary and then at most one a wall minute, the last one saying how
many it folded (core/alerts/policy.py, ``SummaryFold``); the daily reports' rows are unchanged.
The fold's window is widened to an hour here, so a slow machine folds the same ones.

``report_curves`` is new (wt-metrics: the curves' part of each summary, for `cockpit metrics`),
so ``schema_migrations`` says reports v2; every other table is byte for byte what it was.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cockpit.wiring import db_path
from tests.replay_fingerprint import _run, bench_settings, default_settings
from tests.replay_store_fingerprint import table_digests

GOLDEN: dict[str, dict[str, tuple[int, str]]] = {
    'default': {
        'account': (3, '3ddc263bf22a0720'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (712, 'b1ab72f822ea8a3c'),
        'audit': (4100, 'b21304d3d0d2fbfc'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (1763, '0401fb47c48f2d9d'),
        'equity_points': (87, '9fe6cb12124d0c11'),
        'feed_cursor': (1, 'c1a1dbff1a27998a'),
        'fill_allocations': (708, 'ba37cfe51fcec603'),
        'fills': (708, '84bb49bdaa926d41'),
        'meta': (3, '213ecdd27025dab8'),
        'orders': (820, '0c2f50f3140d18ae'),
        'paper_account': (5, '59ad83a383325040'),
        'paper_executions': (708, '674b1dd24d09decf'),
        'paper_orders': (820, '49a7d78e57f24113'),
        'paper_positions': (5, '84bf6a11a5dd499b'),
        'positions': (5, '59ed19e2894cb3a7'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (1763, '02aed66f1cc5c933'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
    'orcl-q1': {
        'account': (3, '71c5aa1f1ac0ef38'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (201, '95a604b38dbff540'),
        'audit': (989, '5c2a695324646efe'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (5036, '79b294a1855faba2'),
        'equity_points': (20, 'ac074b99f0c9e81d'),
        'feed_cursor': (1, '8229f7e50673184f'),
        'fill_allocations': (197, '41972aefbdb24e47'),
        'fills': (197, 'f434bb5c3f1121cc'),
        'meta': (3, 'cefbc350cacd8d44'),
        'orders': (197, 'd3f3d7f5aa335f83'),
        'paper_account': (5, '8122d5f797959d10'),
        'paper_executions': (197, '5d2e041f3553c3aa'),
        'paper_orders': (197, '2911af9c505bb5a8'),
        'paper_positions': (1, '97dc16535ce6dff6'),
        'positions': (1, 'a84e68c4cf98de39'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (5036, '4cacf642e1abf6d0'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
    'orcl-q2': {
        'account': (3, '71c5aa1f1ac0ef38'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (201, '95a604b38dbff540'),
        'audit': (989, '5c2a695324646efe'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (5036, '19c69bd9f99e3ca2'),
        'equity_points': (30, '86ea05c30b6f0a47'),
        'feed_cursor': (1, '5518d3634eacc4c3'),
        'fill_allocations': (197, '41972aefbdb24e47'),
        'fills': (197, 'f434bb5c3f1121cc'),
        'meta': (3, '497a00428b710d8e'),
        'orders': (197, 'd3f3d7f5aa335f83'),
        'paper_account': (5, '8122d5f797959d10'),
        'paper_executions': (197, '5d2e041f3553c3aa'),
        'paper_orders': (197, '2911af9c505bb5a8'),
        'paper_positions': (1, '97dc16535ce6dff6'),
        'positions': (1, 'a84e68c4cf98de39'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (5036, '4cacf642e1abf6d0'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
    'orcl-q4': {
        'account': (3, '71c5aa1f1ac0ef38'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (201, '95a604b38dbff540'),
        'audit': (989, '5c2a695324646efe'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (5036, '4e6bba3662ed0ec8'),
        'equity_points': (50, 'f18652556f4a73e7'),
        'feed_cursor': (1, '5518d3634eacc4c3'),
        'fill_allocations': (197, '41972aefbdb24e47'),
        'fills': (197, 'f434bb5c3f1121cc'),
        'meta': (3, 'e58428997f848acc'),
        'orders': (197, 'd3f3d7f5aa335f83'),
        'paper_account': (5, '8122d5f797959d10'),
        'paper_executions': (197, '5d2e041f3553c3aa'),
        'paper_orders': (197, '2911af9c505bb5a8'),
        'paper_positions': (1, '97dc16535ce6dff6'),
        'positions': (1, 'a84e68c4cf98de39'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (5036, '4cacf642e1abf6d0'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
    'fesx-q1': {
        'account': (3, '7f269f164fcc499b'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (1265, '08d1c9df7be64834'),
        'audit': (6313, 'a0a01a979625a7ce'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (38, '6f08f436e816fc0c'),
        'equity_points': (121, '1cfd49366de1906d'),
        'feed_cursor': (1, 'ac1745c48c38e39f'),
        'fill_allocations': (1261, '8ccf108db7c29162'),
        'fills': (1261, '1db772af294a1388'),
        'meta': (3, 'c3c293a82d37bde6'),
        'orders': (1239, '7b73cb0ee3c68c80'),
        'paper_account': (5, '0bcae03ec3e49b77'),
        'paper_executions': (1261, '68e3749fd5be9fea'),
        'paper_orders': (1239, '85b54787b7119cdf'),
        'paper_positions': (1, 'f6e8bc6b1ac6bedf'),
        'positions': (1, 'a02224bd10b320f0'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (38, 'd5242ec6280a8409'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
    'fesx-q2': {
        'account': (3, 'a0a812630a74b50d'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (1359, '7cf0c1af7fcd141d'),
        'audit': (6485, 'e6ba07b2917fdd78'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (38, '37cb1bf983938cf5'),
        'equity_points': (181, 'ab529042de998ad3'),
        'feed_cursor': (1, '58354b5a49ab9a5f'),
        'fill_allocations': (1355, 'c99ee7fe2b345f3c'),
        'fills': (1355, '37774088bb7b7d04'),
        'meta': (3, 'f00f2ee5171581f8'),
        'orders': (1275, 'fd5a1f3d33d3c374'),
        'paper_account': (5, '695d1a11c01dac04'),
        'paper_executions': (1355, '5fa1800c8bdd3a4b'),
        'paper_orders': (1275, '8be519dc2e642821'),
        'paper_positions': (1, 'f6e8bc6b1ac6bedf'),
        'positions': (1, 'ca0dcea6b55b1b0c'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (38, 'b3e3fa6bf77ca219'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
    'fesx-q4': {
        'account': (3, 'fab73578b4346127'),
        'alert_deliveries': (0, 'c152a8db273d871e'),
        'alerts': (1438, '4736a071e3472ddd'),
        'audit': (6550, 'c5a5a3828a705e45'),
        'audit_head': (1, '605096a310e4908d'),
        'daily_reports': (38, '3c0ac786d72ba7eb'),
        'equity_points': (302, '42945fabbb4feec0'),
        'feed_cursor': (1, '58354b5a49ab9a5f'),
        'fill_allocations': (1434, '537e0d3eeb4e6509'),
        'fills': (1434, '50cf7e39fe34eacd'),
        'meta': (3, '13c455d483c386fa'),
        'orders': (1272, '8c8e6676e44947a9'),
        'paper_account': (5, '4500d5f4cb42deb8'),
        'paper_executions': (1434, 'f9c636a3ec2e8db7'),
        'paper_orders': (1272, '82cf11584a25632c'),
        'paper_positions': (1, 'f6e8bc6b1ac6bedf'),
        'positions': (1, 'a40cf703c82fa600'),
        'risk_events': (0, '5f97252da75dd0cb'),
        'report_curves': (38, 'cd134e1dbc9e98e4'),
        'schema_migrations': (5, 'e17a26fb5e6102d7'),
        'settings': (0, '44ad2c476f8d8ac3'),
    },
}


@pytest.fixture(autouse=True)
def _one_fold_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every replay here ends inside one fold window, however loaded the machine."""
    monkeypatch.setattr("core.kernel.engine.FOLD_SECONDS", 3600.0)


def _check(settings: object, name: str) -> None:
    asyncio.run(_run(settings))  # type: ignore[arg-type]
    found = {t: (n, sha[:16]) for t, (n, sha) in table_digests(db_path(settings)).items()}  # type: ignore[arg-type]
    differ = {t: (found.get(t), want) for t, want in GOLDEN[name].items() if found.get(t) != want}
    extra = sorted(set(found) - set(GOLDEN[name]))
    assert not differ and not extra, f"{name}: tables that differ (found, golden): {differ}; new tables: {extra}"


def test_the_default_config_leaves_the_same_store(tmp_path: Path) -> None:
    _check(default_settings(tmp_path / "state"), "default")


@pytest.mark.parametrize("which, quotes", [("orcl", 1), ("orcl", 2), ("orcl", 4), ("fesx", 1), ("fesx", 2),
                                           ("fesx", 4)])
def test_the_bench_sma_run_leaves_the_same_store(tmp_path: Path, which: str, quotes: int) -> None:
    _check(bench_settings(which, quotes, tmp_path / "state"), f"{which}-q{quotes}")
