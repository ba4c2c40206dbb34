"""`cockpit alerts [--json]` and `cockpit alerts test [--sink NAME]`.

`alerts` reads the store (no engine needed): the newest alerts with each sink's delivery, the
undelivered ones and each sink's latest test. `alerts test` sends one test alert through every
configured sink (or one): through the running engine's control socket when an engine holds
the state dir, else by building the sinks from the config here; either way the outcome is
recorded in the store and printed as ``<sink>: delivered`` or ``<sink>: failed: <reason>``
(exit 1 when any failed).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the settings come from the caller; pydantic is not loaded for `cockpit --help`
    from core.config import Settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class AlertsCliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def add_alerts_parser(sub: Any, configure: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("alerts", help="recent and undelivered alerts (`alerts test`: send a test alert)")
    configure(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="the newest N alerts (default 20)")
    actions = p.add_subparsers(dest="alerts_command", metavar="ACTION")
    test = actions.add_parser("test", help="send a test alert through each configured sink (or --sink NAME)")
    configure(test)
    test.add_argument("--sink", metavar="NAME", help="only this sink (e.g. log, discord, email)")
    test.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")


def run_alerts(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    if getattr(args, "alerts_command", None) == "test":
        return _test(args, settings, db)
    return _show(args, db)


def show_alerts(args: argparse.Namespace, db: Path) -> int:
    """`cockpit alerts [--json]`: the store only (the CLI finds it without loading the whole config)."""
    return _show(args, db)


# ---- cockpit alerts -------------------------------------------------------------------

def _show(args: argparse.Namespace, db: Path) -> int:
    from cockpit import readers

    try:
        conn = readers.connect_readonly(db)
        try:
            data = readers.alerts(conn, limit=args.limit)
        finally:
            conn.close()
    except readers.NoState as exc:
        raise AlertsCliError(str(exc)) from None
    except sqlite3.Error as exc:
        raise AlertsCliError(f"cannot read {db}: {exc} (is it a cockpit state dir?)") from None
    if args.json:
        from cockpit.json_out import dumps

        print(dumps(data))  # json.dumps(data, indent=2), faster
        return EXIT_OK
    _print_alerts(data)
    return EXIT_OK


def _plain(value: Any) -> str:
    return "".join(c if c.isprintable() else "?" for c in str(value if value is not None else "-"))


def _print_alerts(data: dict[str, Any]) -> None:
    undelivered = data["undelivered"]
    if undelivered:
        print(f"UNDELIVERED ({len(undelivered)}):")
        for a in undelivered:
            print(f"  {_plain(a['given_up_at'])}  {_plain(a['sink']):<8} {_plain(a['severity']):<8} "
                  f"[{_plain(a['kind'])}] {_plain(a['title'])}: {_plain(a['reason'])}")
    else:
        print("undelivered: none")
    recent = data["recent"]
    print(f"recent alerts ({len(recent)}, newest first):" if recent else "recent alerts: none")
    for a in recent:
        sinks = ", ".join(f"{_plain(d['sink'])} {_plain(d['status'])}" for d in a["deliveries"]) or "no sink"
        print(f"  {_plain(a['at'])}  {_plain(a['severity']):<8} [{_plain(a['kind'])}] {_plain(a['title'])}  "
              f"({sinks})")
    for t in data["tests"]:
        last = f"last test {_plain(t['last_status'])} at {_plain(t['last_at'])}"
        if t["last_status"] != "sent":
            last += f" ({_plain(t['last_reason'])}); last delivered {_plain(t['last_delivered_at'])}"
        print(f"test {_plain(t['sink'])}: {last}")


# ---- cockpit alerts test --------------------------------------------------------------

def _test(args: argparse.Namespace, settings: Settings, db: Path) -> int:
    from cockpit.state_lock import StateDirBusy, StateLock, is_locked

    if is_locked(settings.state_dir):
        results = _through_engine(args, settings)
    else:
        try:
            with StateLock(settings.state_dir):
                import asyncio

                results = asyncio.run(_in_process(args.sink, settings, db))
        except StateDirBusy:  # an engine started meanwhile: ask it
            results = _through_engine(args, settings)
    if getattr(args, "json", False):
        print(json.dumps({"results": results}, indent=2))
    else:
        for r in results:
            print(f"{r['sink']}: delivered" if r["delivered"] else f"{r['sink']}: failed: {_plain(r['reason'])}")
    return EXIT_OK if results and all(r["delivered"] for r in results) else EXIT_FAIL


def _through_engine(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    from cockpit.control.client import ApiRefused, ControlClient, NoEngine

    try:
        with ControlClient(settings.state_dir / settings.api.socket,
                           timeout=settings.alerts.send_timeout_seconds + 10) as client:
            answer = client.post("/alerts/test", sink=args.sink)
    except ApiRefused as exc:
        raise AlertsCliError(str(exc), EXIT_USAGE if "no alert sink" in str(exc) else EXIT_FAIL) from None
    except NoEngine as exc:
        raise AlertsCliError(str(exc)) from None
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list):
        raise AlertsCliError("the engine's answer to /alerts/test has no results")
    return results


async def _in_process(only: str | None, settings: Settings, db: Path) -> list[dict[str, Any]]:
    """No engine: the sinks from the config, here; the outcome into the store (opened as the
    engine would, so a fresh state dir gets its schema)."""
    from cockpit.alerts.factory import make_sinks
    from cockpit.identity import operator_id
    from cockpit.logs import setup_from_settings
    from core.alerts import records
    from core.alerts.probe import probe
    from core.audit.verify import copy_problems
    from core.common.clock import LiveClock
    from core.config import ConfigError
    from core.persistence.disk_full import DiskFull
    from core.persistence.store import MigrationRefused, Store

    lcfg = settings.logging
    try:  # the log sink writes where the engine's log goes, not to this terminal
        setup_from_settings(lcfg, settings.state_dir, stderr=False)
    except OSError as exc:
        raise AlertsCliError(f"cannot write the log file under state dir {settings.state_dir}: {exc.strerror}") \
            from None
    try:
        sinks = make_sinks(settings)
    except ConfigError as exc:
        raise AlertsCliError(f"config error: {exc}", EXIT_USAGE) from None
    names = [s.name for s in sinks]
    if only is not None:
        sinks = [s for s in sinks if s.name == only]
        if not sinks:
            raise AlertsCliError(f"no alert sink {only!r} is configured (configured: {', '.join(names)}; a sink "
                                 "with no settings is off)", EXIT_USAGE)
    store = Store(db, copy_checks=(copy_problems,))  # a pre-migration backup checks the chain too
    try:
        await store.open()
    except (sqlite3.DatabaseError, DiskFull, MigrationRefused) as exc:  # the runbook's "store will not open"
        raise AlertsCliError(f"cannot open the store {db}: {exc} (the runbook: restore from a backup, "
                             f"`cockpit backup list`)", 3) from None
    try:
        await records.migrate(store)
        results = await probe(sinks, LiveClock(), settings.alerts.send_timeout_seconds, store,
                              origin=f"cockpit alerts test by {operator_id('cli')} (no engine running)")
        await store.flush()
    finally:
        for sink in sinks:
            try:
                await sink.close()
            except Exception:  # closing a failed sink must not hide its result
                pass
        await store.close()
    return [r.as_dict() for r in results]
