"""Time to switch feeds: two `cockpit ib-sim` processes over TCP and `cockpit --no-ui` in IBKR
mode with the second simulator as a data-only fallback.

Each round: the primary sends crossed quotes (SIGUSR1) -> time until the engine's audit has
`feed.failover`; clean again -> time until `feed.failback` (this includes the configured
`failback_seconds` and the quality window the bad items must age out of); SIGKILL of the
primary -> time until `feed.failover`. Times are from the signal to the audit row's wall
timestamp. The primary is restarted on its state file for the next round.

    python bench/feed_failover.py [--rounds 5] [--stale 3] [--failback 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def start_sim(state: Path, port: int = 0, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", str(port), "--state", str(state),
                             "--tick-interval", "0.05", "--seed", "3", *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    m = LISTENING.search(proc.stdout.readline())
    if not m:
        raise SystemExit("ib-sim did not start")
    return proc, int(m.group(1))


def config(tmp: Path, primary: int, fallback: int, stale: float, failback: float) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""
[engine]
state_dir = "state"
[broker]
kind = "ibkr"
[ibkr]
port = {primary}
client_id = 41
restart_window = ""
reconnect_min_seconds = 0.05
reconnect_max_seconds = 0.5
[feed]
kind = "ibkr"
symbols = ["AAPL", "MSFT"]
stale_seconds = {stale}
failback_seconds = {failback}
[feed.quality]
fail_count = 5
fail_window_seconds = 2
[[feed.fallbacks]]
kind = "ibkr"
name = "gateway-b"
port = {fallback}
client_id = 42
stale_seconds = {stale}
[deadman]
enabled = false
""")
    return path


def audit_after(db: Path, kind: str, since: datetime, timeout: float = 60) -> datetime:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            rows = con.execute("SELECT ts FROM audit WHERE kind = ? ORDER BY seq DESC LIMIT 1", (kind,)).fetchall()
            con.close()
        except sqlite3.Error:
            rows = []
        if rows and (ts := datetime.fromisoformat(rows[0][0])) > since:
            return ts
        time.sleep(0.02)
    raise SystemExit(f"no {kind} within {timeout} s")


def now() -> datetime:
    return datetime.now().astimezone()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--stale", type=float, default=3.0, help="stale_seconds of both feeds")
    p.add_argument("--failback", type=float, default=1.0, help="failback_seconds")
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    times: dict[str, list[float]] = {"bad quotes -> failover": [], "clean -> failback": [], "SIGKILL -> failover": []}
    with tempfile.TemporaryDirectory(prefix="cockpit-failover-") as d:
        tmp = Path(d)
        sim_a, port_a = start_sim(tmp / "a.json", 0, "--quote-fault-on-usr1", "crossed")
        sim_b, _port_b = start_sim(tmp / "b.json")
        cfg = config(tmp, port_a, _port_b, args.stale, args.failback)
        err = (tmp / "engine.err").open("w")
        engine = subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(cfg)], env=env,
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        db = tmp / "state" / "cockpit.sqlite"
        try:
            deadline = time.monotonic() + 60
            while not (tmp / "state" / "control.sock").exists():  # the engine trades from here on
                if engine.poll() is not None or time.monotonic() > deadline:
                    print((tmp / "engine.err").read_text()[-3000:], file=sys.stderr)
                    raise SystemExit("the engine did not start")
                time.sleep(0.05)
            time.sleep(args.stale + 1)  # both feeds delivering and judged healthy
            for _ in range(args.rounds):
                t = now()
                sim_a.send_signal(signal.SIGUSR1)
                times["bad quotes -> failover"].append((audit_after(db, "feed.failover", t) - t).total_seconds())
                t = now()
                sim_a.send_signal(signal.SIGUSR1)
                times["clean -> failback"].append((audit_after(db, "feed.failback", t) - t).total_seconds())
                t = now()
                sim_a.send_signal(signal.SIGKILL)
                sim_a.wait()
                times["SIGKILL -> failover"].append((audit_after(db, "feed.failover", t) - t).total_seconds())
                sim_a, _ = start_sim(tmp / "a.json", port_a, "--quote-fault-on-usr1", "crossed")
                t = now()
                audit_after(db, "feed.failback", t)  # reconnected, healthy, back on the primary
        finally:
            for proc in (engine, sim_a, sim_b):
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
    print(f"feed failover, {args.rounds} rounds (stale_seconds {args.stale:g}, failback_seconds {args.failback:g}, "
          f"quality window 2 s / 5 items):")
    summary = {}
    for what, xs in times.items():
        summary[what] = {"median_s": statistics.median(xs), "max_s": max(xs)}
        print(f"  {what:<24} median {statistics.median(xs) * 1000:7.0f} ms   max {max(xs) * 1000:7.0f} ms")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
