"""How fast `cockpit` paints, in a real pseudo-terminal (160x50), from process start.

Times, per run: the first painted frame (the panes' titles are on screen) and the first
frame with the engine up (the status bar shows the broker). Also `cockpit --help` and a
read-only subcommand, which must not import Textual.

    python bench/tui_first_paint.py [--runs 5]

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pty_session import PtySession  # noqa: E402


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}


def paint_once(state: Path) -> tuple[float, float]:
    session = PtySession(["--config", str(ROOT / "config.toml"), "--state-dir", str(state)], cwd=ROOT,
                         env=clean_env())
    try:
        session.wait_for(r"Positions")
        painted = time.perf_counter() - session.started
        session.wait_for(r"broker paper up")
        ready = time.perf_counter() - session.started
        session.signal(signal.SIGTERM)
        session.wait_exit()
    finally:
        session.close()
    return painted, ready


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cockpit", *args], cwd=ROOT, env=clean_env(), capture_output=True, check=False)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = [paint_once(Path(tmp) / f"fresh{n}") for n in range(args.runs)]  # an empty state dir each time
        again = [paint_once(Path(tmp) / "fresh0") for _ in range(args.runs)]  # a resume with history to warm up
        state = Path(tmp) / "fresh0"
        helps = [timed(["--help"]) for _ in range(args.runs)]
        reads = [timed(["positions", "--config", str(ROOT / "config.toml"), "--state-dir", str(state)])
                 for _ in range(args.runs)]
    med = statistics.median
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {args.runs} runs each, medians")
    print(f"  fresh state : first paint {med(p for p, _ in fresh) * 1000:.0f} ms,"
          f" engine up on screen {med(r for _, r in fresh) * 1000:.0f} ms")
    print(f"  resume      : first paint {med(p for p, _ in again) * 1000:.0f} ms,"
          f" engine up on screen {med(r for _, r in again) * 1000:.0f} ms")
    print(f"  cockpit --help {med(helps) * 1000:.0f} ms; cockpit positions {med(reads) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
