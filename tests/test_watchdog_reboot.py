"""A run that went down with the machine (a power cut, a reboot) is not an engine crash: the
watchdog finds its run record from another boot (the record keeps the machine's boot id) and does
not flatten; it latches the halted start, audits it with its actor, and raises one critical alert
saying the machine restarted while the engine was trading and what the book held. The same boot,
or a boot id nobody could read: a death, as before.

The decision on a temp state dir in this process (the paper broker, a local Discord stand-in), and
with real parts: `cockpit ib-sim`, `cockpit --no-ui` and `cockpit watchdog` child processes,
the engine SIGKILLed while the watchdog is down and its record's boot id made another boot's (what a
power cut leaves), then the watchdog started as after the reboot: nothing flattened at the sim.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cockpit.halt_latch import read_latch
from cockpit.run_record import RUN_FILE, RunFile, RunRecord, current_boot_id, read_run
from cockpit.state_files import write_json
from cockpit.state_lock import StateLock
from cockpit.watchdog.loop import Watchdog
from cockpit.watchdog.verdict import DIED, REBOOTED, on_free_lock
from core.config import load_config
from tests.conftest import CONFIG
from tests.test_deploy_emergency import DiscordStandIn, discord  # noqa: F401  (the fixture)
from tests.test_watchdog import (  # noqa: F401  (rig: the fixture)
    api_status,
    audit_rows,
    engine_up,
    handled,
    log_says,
    rig,
    sim_positions,
    sim_working,
    start,
    stop,
    trade,
    wait_for,
)

T0 = "2026-12-02T15:00:00+00:00"
THIS_BOOT, OTHER_BOOT = "11111111-2222-3333-4444-555555555555", "99999999-8888-7777-6666-555555555555"


def rec(boot_id: str | None, state: str = "running") -> RunRecord:
    return RunRecord(run="r1", pid=7, host="box", started_at=T0, state=state, trading_since=T0, boot_id=boot_id)


@pytest.mark.parametrize(("record_boot", "now_boot", "verdict"), [
    (OTHER_BOOT, THIS_BOOT, REBOOTED),  # it went down with the machine
    (THIS_BOOT, THIS_BOOT, DIED),  # killed or crashed on this boot: unchanged
    (None, THIS_BOOT, DIED),  # a record from before boot ids, or one that could not read it
    (OTHER_BOOT, None, DIED),  # this boot's id unreadable: today's behaviour
])
def test_a_run_from_another_boot_went_down_with_the_machine(record_boot: str | None, now_boot: str | None,
                                                            verdict: str) -> None:
    assert on_free_lock(rec(record_boot), False, now_boot) == verdict
    assert on_free_lock(rec(record_boot), True, now_boot) is None  # each run is answered once
    clean = replace(rec(record_boot, "stopped"), clean=True)
    assert on_free_lock(clean, False, now_boot) is None  # a clean stop before the reboot: nothing


def test_the_run_record_keeps_the_boot_id(tmp_path: Path) -> None:
    boot = tmp_path / "boot_id"
    boot.write_text(f"{THIS_BOOT}\n")
    assert current_boot_id(boot) == THIS_BOOT
    assert current_boot_id(tmp_path / "none") is None  # unreadable: None, and a death stays a death
    real = Path("/proc/sys/kernel/random/boot_id")
    f = RunFile(tmp_path)
    f.starting()
    got = read_run(tmp_path)
    assert got is not None and got.boot_id == (real.read_text().strip() if real.is_file() else None)
    data = json.loads((tmp_path / RUN_FILE).read_text())
    del data["boot_id"]  # a record written before boot ids
    write_json(tmp_path / RUN_FILE, data)
    assert read_run(tmp_path) is not None and read_run(tmp_path).boot_id is None


def test_the_watchdogs_decision_latches_audits_and_alerts_without_a_flatten(
        tmp_path: Path, clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        discord: DiscordStandIn) -> None:  # noqa: F811
    monkeypatch.setenv("COCKPIT_ALERTS__DISCORD__WEBHOOK_URL", discord.url)
    state = tmp_path / "state"
    settings = load_config(CONFIG, state_dir=state)
    state.mkdir()
    with StateLock(state):  # as the engine of the last boot wrote it, under its lock
        write_json(state / RUN_FILE, rec(OTHER_BOOT).as_dict())
    said: list[str] = []

    async def one_look() -> Watchdog:
        watchdog = Watchdog(settings, said.append)
        watchdog.boot_id = THIS_BOOT
        await watchdog.step()
        return watchdog

    watchdog = asyncio.run(one_look())
    [done] = watchdog.status.status.handled
    assert done.run == "r1" and done.verdict == REBOOTED, done
    assert done.outcome == "rebooted: the machine restarted while the engine was trading: no flatten; the next " \
                           "start is halted"
    latch = read_latch(state)
    assert latch is not None and latch.run == "r1" and latch.actor.startswith("watchdog:")
    assert "went down with the machine" in latch.reason
    [alert] = discord.embeds()
    assert alert["title"] == "CRITICAL · Machine restarted while the engine was trading"
    assert "nothing was flattened" in alert["description"] and "`cockpit resume`" in alert["description"]
    fields = {f["name"]: f["value"] for f in alert["fields"]}
    assert fields["by"].startswith("watchdog:") and fields["book"].startswith("the store cannot say")
    assert any("no emergency flatten" in line for line in said), said
    asyncio.run(watchdog.step())  # handled once: a second look does nothing
    assert len(watchdog.status.status.handled) == 1 and len(discord.embeds()) == 1


@pytest.mark.slow
def test_after_a_power_cut_the_watchdog_halts_the_next_start_and_flattens_nothing(rig: dict[str, Any]) -> None:  # noqa: F811
    r = rig
    state, tmp, stand_in = r["state"], r["tmp"], r["discord"]
    watchdog = start(r, "watchdog")
    engine = start(r, "engine")
    run = engine_up(r, engine)
    trade(r)
    assert current_boot_id() is not None and read_run(state).boot_id == current_boot_id()

    # The power cut: everything stops at once. The watchdog first (so it does not answer the kill as
    # a death on this boot), then the engine, as the machine took them; the boot id changes.
    stop(watchdog)
    engine.send_signal(signal.SIGKILL)
    assert engine.wait(10) == -signal.SIGKILL
    record = read_run(state)
    assert record is not None and record.run == run and record.died_trading
    write_json(state / RUN_FILE, {**record.as_dict(), "boot_id": OTHER_BOOT})  # the record the last boot left

    start(r, "watchdog")  # the machine is back: the watchdog comes up first (compose: the engine waits for it)
    done = wait_for(lambda: handled(state, run), "the watchdog's answer to the reboot", timeout=90)
    assert done.verdict == "rebooted" and "no flatten" in done.outcome, done
    assert sim_positions(tmp) == {"AAPL": Decimal(7), "MSFT": Decimal(-3)} and len(sim_working(tmp)) == 1
    assert audit_rows(state, "operator.flatten_direct") == []
    [(actor, row)] = audit_rows(state, "watchdog.response")
    assert actor.startswith("watchdog:") and row["verdict"] == "rebooted" and row["boot_id"] == OTHER_BOOT
    [alert] = [e for e in stand_in.embeds() if "Machine restarted" in e["title"]]
    assert [e for e in stand_in.embeds() if "Emergency flatten" in e["title"]] == []
    book = {f["name"]: f["value"] for f in alert["fields"]}["book"]
    assert book == "AAPL 7, MSFT -3; 1 open order(s)", book
    assert log_says(tmp / "watchdog.log", "no emergency flatten: a reboot is not an engine crash")

    again = start(r, "engine")  # the restart policy: up reconciled, HALTED by the watchdog
    s = wait_for(lambda: again.poll() is not None or ((s := api_status(state)) and s["broker"]["connected"] and s),
                 "the engine started again")
    assert again.poll() is None and s["trading_state"] == "HALTED", s
    assert s["trading_reason"].startswith("operator halt by watchdog:") and "went down with the machine" in \
        s["trading_reason"], s
    assert read_latch(state) is None  # spent: the halt is in the store now
    assert sim_positions(tmp) == {"AAPL": Decimal(7), "MSFT": Decimal(-3)}
