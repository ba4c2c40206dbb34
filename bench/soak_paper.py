"""Thirty days of paper trading, simulated: N exchange sessions through the live path, with a
SIGTERM or SIGKILL restart in every session.

`cockpit --no-ui --config bench/soak_paper.toml` runs as a child process: the paper broker, both
demo strategies on real 1-minute bars (FESX, January-February 2006), the replay on its simulated
clock at ``--speed`` simulated seconds per wall second, daily summaries and a backup at every
session close (XNYS), reconciliation at every start and every 3 wall seconds. In each session
the orchestrator waits for one kill point, reading the store read-only (the replay's cursor and
``daily_reports``), never sleeping for a fixed time:

- ``close``: the session's daily report is committed (its backup is being made);
- ``gap``: the session's last bar is done, its report not yet written (the replay is waiting
  out the night: the report comes with the next session's first event);
- ``mid``: the replay's clock has passed a random moment of the trading day.

There it sends SIGTERM or SIGKILL (``--kill-mode``: mixed = as many of each, in a seeded
order), waits for the exit and starts the engine again on the same state dir. The last session's
kill is mid-session; a final run finishes the replay at the N-th session's close. Meanwhile an
uninterrupted reference run of the same config replays the same sessions in a state dir of its
own (the replay is deterministic on its simulated clock).

At the end it checks (bench/soak_checks.py): the soak's fills equal the reference's (lost and
duplicated = the symmetric difference on ts, strategy, symbol, side, qty, price, commission),
every exec id booked once and equal to the paper venue's executions, positions and cash
recomputed from the fills to the cent (and equal to the venue's and the reference's), one daily
report per session with the reference's figures, `cockpit audit verify` exit 0, no
reconciliation break, `cockpit backup list --json` all verified and the newest backup's books
matching its fills; after every stop, the store as it was left already holds books that match
its fills. It prints a summary (restarts, start-up times, VmHWM and RssAnon per run from
/proc/<pid>/status, the reference's RssAnon at each close, disk use of the state dir) and one
JSON line. Asserts nothing; exit 1 when a check fails.

    python bench/soak_paper.py                              # 30 sessions at speed 10000 (9-10 min)
    python bench/soak_paper.py --sessions 5 --speed 100000 --kill-mode sigkill --seed 7

Every file it writes is under one temporary directory (``--tmpdir`` to choose where, ``--keep``
to keep it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import soak_checks as checks  # noqa: E402  (after the path: run as a script too)

CONFIG = ROOT / "bench" / "soak_paper.toml"
DATA = ROOT / "core" / "data" / "bundled" / "intraday" / "backtrader_2006-01-02-volume-min-001.txt"
CALENDAR = "XNYS"  # the engine's daily summaries follow it (core/kernel/engine.py)
TRADING_DAY = timedelta(hours=13)  # the file's day: 09:00-22:00 Berlin, ending at the XNYS close
POINTS = ("close", "gap", "mid")
ENDED_FIRST = "ended first"  # the replay's end came before the last session's kill point was seen
SIGNALS = {"sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}
POLL = 0.01  # seconds between looks at the store and the child
STOP_TIMEOUT = 60.0  # seconds a SIGTERMed engine may take to flush and exit
START_TIMEOUT = 120.0  # seconds from exec to READY


class SoakError(Exception):
    """The soak could not run (bad arguments, an engine that would not start): one line."""


@dataclass(frozen=True, slots=True)
class Session:
    number: int  # 1-based
    day: date
    close: datetime  # UTC


@dataclass(frozen=True, slots=True)
class Plan:
    sessions: int = 30
    kill_mode: str = "mixed"  # mixed | sigterm | sigkill
    speed: float = 10000.0
    reference_speed: float | str | None = None  # None: the soak's speed
    seed: int = 1


@dataclass(frozen=True, slots=True)
class Kill:
    session: Session
    point: str  # close | gap | mid
    signal: signal.Signals
    at: datetime | None = None  # mid: the replay's moment to kill at


@dataclass
class Run:
    """One engine process of the soak."""

    number: int
    aimed: str  # "<signal> at <point> of session <k>", or "to the end"
    ready_seconds: float | None = None
    stop_seconds: float | None = None  # from the signal (or the end of the replay) to the exit
    exit_code: int | None = None
    landed: str = ""  # where the kill landed, from the store after the exit
    started_in: int = 0  # the session the run started in (reports in the store then + 1)
    peak_rss_kb: int = 0  # VmHWM just before the signal (or the last sample)
    peak_anon_kb: int = 0  # the largest RssAnon sampled: private memory, without mapped files
    reports: int = 0
    fills: int = 0
    book_problems: list[str] = field(default_factory=list)  # the store as the stop left it


@dataclass
class Reference:
    """The uninterrupted run: its exit, its RSS at each session close and at its peak."""

    seconds: float = 0.0
    exit_code: int | None = None
    ready_seconds: float | None = None
    anon_at_close_kb: list[int] = field(default_factory=list)  # RssAnon as each daily report appears
    peak_rss_kb: int = 0
    error: str | None = None


# ---- the sessions ------------------------------------------------------------------------


def data_days(path: Path = DATA) -> tuple[date, date]:
    """The first and last day of the minute file (rows are ``YYYY-MM-DD,HH:MM:SS,...``)."""
    lines = [ln for ln in path.read_text().splitlines()[1:] if ln.strip()]
    return date.fromisoformat(lines[0][:10]), date.fromisoformat(lines[-1][:10])


def sessions_of_data(n: int) -> list[Session]:
    """The first ``n`` exchange sessions the file trades through (a day the exchange is shut
    belongs to the next session, as the daily summaries count it)."""
    from core.data.calendar import ExchangeSession

    first, last = data_days()
    table = ExchangeSession(CALENDAR).sessions(first, last)
    found = [Session(0, date.fromordinal(o), datetime.fromtimestamp(close, UTC))
             for o, (_, close) in sorted(table.items()) if first.toordinal() <= o <= last.toordinal()]
    if not 1 <= n <= len(found):
        raise SoakError(f"--sessions {n}: the bundled minute file ({first}..{last}) spans {len(found)} {CALENDAR} "
                        f"sessions; ask for 1 to {len(found)}")
    return [Session(i + 1, s.day, s.close) for i, s in enumerate(found[:n])]


def plan_kills(sessions: list[Session], kill_mode: str, rng: random.Random) -> list[Kill]:
    """One kill per session: the points in shuffled rounds of close, gap, mid (the last session
    mid-session: its close ends the replay), the signals as many of each in a shuffled order."""
    if kill_mode == "mixed":
        sigs = [signal.SIGTERM if i % 2 else signal.SIGKILL for i in range(len(sessions))]
        rng.shuffle(sigs)
    else:
        sigs = [SIGNALS[kill_mode]] * len(sessions)
    points: list[str] = []
    while len(points) < len(sessions) - 1:
        block = list(POINTS)
        rng.shuffle(block)
        points += block
    points = points[:len(sessions) - 1] + ["mid"]
    kills = []
    for s, point, sig in zip(sessions, points, sigs, strict=True):
        # The last session's moment is in its first half: a late one could miss the replay's end.
        before_close = rng.uniform(0.5, 0.95) if s is sessions[-1] else rng.uniform(0.05, 0.95)
        kills.append(Kill(s, point, sig, s.close - TRADING_DAY * before_close if point == "mid" else None))
    return kills


# ---- watching a child ----------------------------------------------------------------------


class Readiness:
    """The systemd notify socket the engine speaks to (cockpit/systemd_notify.py): READY=1 once
    it trades. A datagram socket in the work dir, one per state dir."""

    def __init__(self, path: Path) -> None:
        if len(os.fsencode(path)) > 107:  # sun_path holds 108 bytes with its NUL
            raise SoakError(f"{path}: too long for a Unix socket; pass a shorter --tmpdir")
        self.path = path
        path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    def drain(self) -> bool:
        """Whether READY=1 arrived since the last look."""
        ready = False
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return ready
            ready = ready or b"READY=1" in data.split(b"\n")

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


class StoreWatch:
    """The store as the soak sees it, read-only: reports written, the replay's cursor, fills."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None

    def look(self) -> tuple[int, datetime | None, int]:
        if self.conn is None:
            if not self.db.exists():
                return 0, None, 0
            self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            reports, ts, fills = self.conn.execute(
                "SELECT (SELECT count(*) FROM daily_reports), (SELECT ts FROM feed_cursor LIMIT 1), "
                "(SELECT count(*) FROM fills)").fetchone()
        except sqlite3.OperationalError:  # tables not created yet
            return 0, None, 0
        return int(reports), datetime.fromisoformat(ts) if ts else None, int(fills)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmHWM, RssAnon) of a live process, in kB; (0, 0) once it is gone. VmHWM is the peak of
    VmRSS, which counts the pages of mapped files (numpy's, pandas' libraries) too, as many as the
    page cache lets the kernel map around each fault: it moves with what other processes read.
    RssAnon is the process's own memory: the figure a leak would grow."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0, 0
    found = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in text.splitlines() if ":" in ln)
             if k in ("VmHWM", "RssAnon")}
    return found.get("VmHWM", 0), found.get("RssAnon", 0)


def engine_env(end: date, notify: Path) -> dict[str, str]:
    """The child's environment: no COCKPIT_* or systemd variables from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")
           and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
    env.update({"PYTHONPATH": str(ROOT), "COCKPIT_FEED__END": end.isoformat(), "NOTIFY_SOCKET": str(notify)})
    return env


def start_engine(state: Path, speed: float | str, env: dict[str, str], err: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG), "--state-dir",
                             str(state), "--speed", str(speed)], cwd=state.parent, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)


def wait_ready(proc: subprocess.Popen[bytes], ready: Readiness, started: float) -> float:
    """Seconds from exec to READY=1; SoakError if the engine exits or does not get there."""
    while not ready.drain():
        if proc.poll() is not None:
            raise SoakError(f"the engine exited {proc.returncode} before it was ready")
        if time.monotonic() - started > START_TIMEOUT:
            raise SoakError(f"the engine was not ready after {START_TIMEOUT:.0f} s")
        time.sleep(POLL)
    return time.monotonic() - started


def reached(kill: Kill, reports: int, cursor: datetime | None) -> bool:
    """Whether the store shows the kill's point: the session's report written (close), its last
    bar done (gap: the report is not written yet), the replay past the chosen moment (mid)."""
    s = kill.session
    if reports >= s.number:
        return True  # a gap or a mid point the poll missed is a close: kill now all the same
    if cursor is None:
        return False
    if kill.point == "gap":
        return cursor >= s.close
    if kill.point == "mid":
        assert kill.at is not None
        return cursor >= kill.at
    return False


def where(session: Session, reports: int, cursor: datetime | None) -> str:
    """Where a kill landed, from what the store holds after the exit."""
    if reports >= session.number:
        return "close"
    if cursor is not None and cursor >= session.close:
        return "gap"
    return "mid"


# ---- the soak -------------------------------------------------------------------------------


def run_reference(state: Path, speed: float | str, end: date, err_path: Path, deadline: float,
                  abort: threading.Event, out: Reference) -> None:
    """The uninterrupted run; its RSS each time a daily report appears. Fills ``out``; ends its
    engine when ``abort`` is set (the soak stopped early)."""
    watch = StoreWatch(state / checks.DB)
    started = time.monotonic()
    ready: Readiness | None = None
    try:
        ready = Readiness(state.parent / "notify-ref.sock")
        with open(err_path, "ab") as err:
            proc = start_engine(state, speed, engine_env(end, ready.path), err)
            try:
                out.ready_seconds = wait_ready(proc, ready, started)
                seen = 0
                while proc.poll() is None:
                    peak, anon = memory_kb(proc.pid)
                    out.peak_rss_kb = max(out.peak_rss_kb, peak)
                    reports, _, _ = watch.look()
                    if reports > seen and anon:
                        out.anon_at_close_kb.extend([anon] * (reports - seen))
                        seen = reports
                    if time.monotonic() - started > deadline:
                        raise SoakError(f"the run did not end within {deadline:.0f} s")
                    if abort.is_set():
                        raise SoakError("stopped: the soak ended early")
                    time.sleep(POLL * 2)
            finally:
                if proc.poll() is None:
                    proc.kill()
                out.exit_code = proc.wait()
    except SoakError as exc:
        out.error = f"reference: {exc}"
    finally:
        watch.close()
        if ready is not None:
            ready.close()
        out.seconds = time.monotonic() - started


def run_soak(plan: Plan, workdir: Path, progress: Any = None) -> dict[str, Any]:
    """The whole soak in ``workdir``; its figures and findings as a dict (``report["ok"]``)."""
    say = progress or (lambda _line: None)
    rng = random.Random(plan.seed)
    sessions = sessions_of_data(plan.sessions)
    end = sessions[-1].day
    kills = plan_kills(sessions, plan.kill_mode, rng)
    state, ref_state = workdir / "soak", workdir / "reference"
    err_path = workdir / "engine-stderr.log"
    reference = Reference()
    ref_speed = plan.reference_speed if plan.reference_speed is not None else plan.speed
    span = (sessions[-1].close - sessions[0].close + timedelta(days=2)).total_seconds()
    ref_deadline = START_TIMEOUT + 2 * span / (plan.speed if ref_speed == "max" else float(ref_speed))
    abort = threading.Event()
    ref_thread = threading.Thread(target=run_reference, args=(ref_state, ref_speed, end, workdir / "reference.log",
                                                              ref_deadline, abort, reference), daemon=True)
    # The longest wait for one kill point: a holiday weekend (Friday close to Tuesday close).
    deadline_per_run = START_TIMEOUT + 4.5 * 86400 / plan.speed
    runs: list[Run] = []
    problems: list[str] = []
    ready = Readiness(workdir / "notify-soak.sock")
    started = time.monotonic()
    ref_thread.start()
    try:
        for kill in [*kills, None]:
            run = Run(len(runs) + 1, "to the end" if kill is None else
                      f"{kill.signal.name} at {kill.point} of session {kill.session.number} ({kill.session.day})")
            runs.append(run)
            problem = one_run(run, kill, state, plan.speed, end, len(sessions), err_path, ready, deadline_per_run)
            say(f"soak: run {run.number}: {run.aimed}: landed {run.landed or '-'}, ready {run.ready_seconds or 0:.2f} s, "
                f"exit {run.exit_code}, {run.reports} reports, {run.fills} fills, peak RSS {run.peak_rss_kb // 1024} MiB "
                f"(anon {run.peak_anon_kb // 1024} MiB)")
            if problem:
                problems.append(f"run {run.number}: {problem}")
                break
            if run.landed == ENDED_FIRST:
                break  # nothing is left to replay
    except BaseException:  # Ctrl-C, or a bug here: no engine is left running
        abort.set()
        ref_thread.join()
        raise
    finally:
        ready.close()
    soak_seconds = time.monotonic() - started
    ref_thread.join()  # it ends by its own deadline
    if reference.error or reference.exit_code != 0:
        problems.append(reference.error or f"the reference run exited {reference.exit_code}: "
                        f"{_tail(workdir / 'reference.log')}")
    report = evaluate(plan, sessions, state, ref_state, runs, reference, problems, workdir)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["soak_seconds"] = round(soak_seconds, 1)
    return report


def one_run(run: Run, kill: Kill | None, state: Path, speed: float, end: date, last: int, err_path: Path,
            ready: Readiness, deadline: float) -> str | None:
    """Start the engine, wait for the kill point (or the end), stop it; a problem or None. A
    replay that ends (exit 0, the last report written) before the last session's kill point is
    seen, on a machine too busy to look in time, is no problem: ``run.landed`` says so."""
    ready.drain()  # nothing left over from the run before
    watch = StoreWatch(state / checks.DB)
    run.started_in = watch.look()[0] + 1
    watch.close()
    with open(err_path, "ab") as err:
        err.write(f"\n==== run {run.number}: {run.aimed}\n".encode())
        err.flush()
        started = time.monotonic()
        proc = start_engine(state, speed, engine_env(end, ready.path), err)
        try:
            try:
                run.ready_seconds = wait_ready(proc, ready, started)
            except SoakError as exc:
                return f"{exc}: {_tail(err_path)}"
            while True:
                code = proc.poll()
                peak, anon = memory_kb(proc.pid)
                if peak:
                    run.peak_rss_kb, run.peak_anon_kb = peak, max(run.peak_anon_kb, anon)
                if code is not None:
                    run.exit_code = code
                    run.stop_seconds = 0.0
                    if kill is not None and not (code == 0 and kill.session.number == last and watch.look()[0] >= last):
                        return f"the engine exited {code} before its kill point: {_tail(err_path)}"
                    if kill is not None:  # the last session's replay ended before the poll saw its moment
                        run.landed = ENDED_FIRST
                    break
                reports, cursor, _ = watch.look()
                if kill is not None and reached(kill, reports, cursor):
                    stopped = time.monotonic()
                    proc.send_signal(kill.signal)
                    try:
                        run.exit_code = proc.wait(timeout=STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        run.exit_code = proc.wait()
                        return f"the engine did not exit within {STOP_TIMEOUT:.0f} s of {kill.signal.name}"
                    run.stop_seconds = time.monotonic() - stopped
                    break
                if time.monotonic() - started > deadline:
                    return f"no kill point (or end) within {deadline:.0f} s: {reports} reports, cursor {cursor}"
                time.sleep(POLL)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            watch.close()
    after = StoreWatch(state / checks.DB)
    reports, cursor, fills = after.look()
    after.close()
    run.reports, run.fills = reports, fills
    # What a crash (or a stop) left must already be a consistent book: every committed fill in
    # the position, the cash and the venue's account, to the cent.
    run.book_problems = checks.book_problems(state / checks.DB) + checks.exec_id_problems(state)
    if run.book_problems:
        return f"the store after the stop: {'; '.join(run.book_problems[:3])}"
    if kill is not None and run.landed != ENDED_FIRST:
        run.landed = where(kill.session, reports, cursor)
        expected = 0 if kill.signal == signal.SIGTERM else -signal.SIGKILL
        if run.exit_code != expected:
            return f"exit code {run.exit_code} after {kill.signal.name} (expected {expected}): {_tail(err_path)}"
    elif run.exit_code != 0:
        return f"the last run exited {run.exit_code}: {_tail(err_path)}"
    return None


def _tail(path: Path, n: int = 600) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
    except FileNotFoundError:
        return ""


# ---- the verdict ----------------------------------------------------------------------------


def evaluate(plan: Plan, sessions: list[Session], state: Path, ref_state: Path, runs: list[Run],
             reference: Reference, problems: list[str], workdir: Path) -> dict[str, Any]:
    """Every check of the end state, the figures, and ``ok`` (no problem found)."""
    env = engine_env(sessions[-1].day, workdir / "unused.sock")
    env.pop("NOTIFY_SOCKET")
    have_store = (state / checks.DB).exists()
    have_ref = reference.exit_code == 0 and (ref_state / checks.DB).exists()
    days = [s.day.isoformat() for s in sessions]
    figures: dict[str, Any] = {}
    if have_store and have_ref and not problems:
        got, want = checks.fill_keys(state), checks.fill_keys(ref_state)
        lost, extra = checks.lost_and_duplicated(got, want)
        problems += [f"lost fill {k}" for k in lost[:10]] + [f"duplicated fill {k}" for k in extra[:10]]
        problems += checks.exec_id_problems(state)
        problems += [f"soak book: {p}" for p in checks.book_problems(state / checks.DB)]
        problems += [f"reference book: {p}" for p in checks.book_problems(ref_state / checks.DB)]
        books, ref_books = checks.book_figures(state), checks.book_figures(ref_state)
        if books != ref_books:
            problems.append(f"the soak's book {books} differs from the uninterrupted run's {ref_books}")
        rows, ref_rows = checks.report_rows(state), checks.report_rows(ref_state)
        problems += checks.report_problems(rows, days, ref_rows, len(got))
        problems += [f"reference: {p}" for p in checks.report_problems(ref_rows, days, ref_rows, len(want))]
        code, said = checks.audit_verify(CONFIG, state, env)
        if code != 0:
            problems.append(f"cockpit audit verify exited {code}: {said}")
        backups, backup_problems = checks.backup_check(CONFIG, state, env)
        problems += backup_problems
        counts = checks.audit_counts(state)
        if counts["breaks"]:
            problems.append(f"{counts['breaks']} reconciliation break(s)")
        if counts["backups_failed"]:
            problems.append(f"{counts['backups_failed']} backup(s) failed")
        leftovers = checks.leftover_temporaries(state)
        # A close's backup runs on a thread for a few tenths of a second after its report: a SIGKILL
        # of the run that wrote the report can cut it, and a close that comes while one is still
        # being made gets none (one at a time: at a fast --speed, closes come faster than copies).
        # The next close makes the next one. Figures, not a check: the skips are not recorded.
        cuttable = sum(1 for r in runs if r.aimed.startswith("SIGKILL") and r.reports >= r.started_in)
        missing = len(sessions) - counts["backups_written"]
        # Starts each session really saw (a run starts in the session after the reports then in
        # the store), against what its daily summary says (``engine_starts``).
        starts = [sum(1 for r in runs if r.started_in == s.number) for s in sessions]
        said_starts = [r["engine_starts"] for r in rows]
        figures = {
            "fills": len(got), "reference_fills": len(want), "lost_fills": len(lost), "duplicated_fills": len(extra),
            "fills_per_session": round(len(got) / len(sessions), 1),
            "orders": _count(state, "SELECT count(*) FROM orders"),
            "daily_reports": len(rows), "engine_starts_per_report": said_starts, "starts_per_session": starts,
            "sessions_whose_report_miscounts_starts": sum(1 for a, b in zip(starts, said_starts, strict=False)
                                                          if a != b),
            "closes_without_backup": missing, "sigkills_after_a_report": cuttable,
            "sigkills_at_a_close": sum(1 for r in runs if r.aimed.startswith("SIGKILL") and r.landed == "close"),
            "audit_verify_exit": code, "audit_rows": _count(state, "SELECT count(*) FROM audit"),
            "backups_kept": len(backups), "backups_verified": sum(1 for b in backups if b["verified"]),
            "newest_backup": max((b["name"] for b in backups), default=None),
            "backup_temporaries_left": leftovers, **counts,
            "book": books,
        }
    elif not problems:
        problems.append("no store to check")
    kills = [r for r in runs if r.aimed != "to the end" and r.landed != ENDED_FIRST]
    ready = [r.ready_seconds for r in runs if r.ready_seconds is not None]
    stops = [r.stop_seconds for r in runs if r.aimed.startswith("SIGTERM") and r.stop_seconds is not None]
    peaks = [r.peak_rss_kb for r in runs if r.peak_rss_kb]
    anon = [r.peak_anon_kb for r in runs if r.peak_anon_kb]
    at_close = reference.anon_at_close_kb
    report: dict[str, Any] = {
        "sessions": plan.sessions, "first_day": days[0], "last_day": days[-1], "speed": plan.speed,
        "kill_mode": plan.kill_mode, "seed": plan.seed, "runs": len(runs),
        "kills": len(kills), "sigterm": sum(1 for r in kills if r.aimed.startswith("SIGTERM")),
        "sigkill": sum(1 for r in kills if r.aimed.startswith("SIGKILL")),
        "kills_by_point": {p: sum(1 for r in kills if r.landed == p) for p in POINTS},
        "ready_seconds": _spread(ready), "sigterm_exit_seconds": _spread(stops),
        "rss_mib": {"first_run_peak": _mib(peaks[0]) if peaks else None,
                    "last_run_peak": _mib(peaks[-1]) if peaks else None,
                    "max_peak": _mib(max(peaks)) if peaks else None,
                    "first_run_anon": _mib(anon[0]) if anon else None,
                    "last_run_anon": _mib(anon[-1]) if anon else None,
                    "max_anon": _mib(max(anon)) if anon else None},
        "reference": {"seconds": round(reference.seconds, 1), "exit": reference.exit_code,
                      "ready_seconds": round(reference.ready_seconds or 0, 2),
                      "peak_rss_mib": _mib(reference.peak_rss_kb),
                      "anon_mib_first_close": _mib(at_close[0]) if at_close else None,
                      "anon_mib_last_close": _mib(at_close[-1]) if at_close else None,
                      "anon_mib_at_each_close": [_mib(kb) for kb in at_close]},
        **figures,
        "disk_bytes": checks.disk_use(state) if state.exists() else {},
        "reference_disk_bytes": checks.disk_use(ref_state) if ref_state.exists() else {},
        "per_run": [asdict(r) for r in runs],
        "problems": problems[:40],
        "ok": not problems,
    }
    return report


def _count(state: Path, sql: str) -> int:
    with checks.readonly(state / checks.DB) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _spread(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"first": round(xs[0], 2), "last": round(xs[-1], 2), "min": round(min(xs), 2),
            "median": round(sorted(xs)[len(xs) // 2], 2), "max": round(max(xs), 2)}


def _mib(kb: int) -> float:
    return round(kb / 1024, 1)


# ---- the command line -----------------------------------------------------------------------


def print_summary(report: dict[str, Any]) -> None:
    r = report
    mb = 1024 * 1024
    disk, ref_disk = r.get("disk_bytes") or {}, r.get("reference_disk_bytes") or {}
    lines = [
        f"soak: {r['sessions']} sessions ({r['first_day']}..{r['last_day']}) at speed {r['speed']:g}, "
        f"seed {r['seed']}: {r['seconds']} s in all (soak {r['soak_seconds']} s, reference {r['reference']['seconds']} s)",
        f"  runs {r['runs']}, kills {r['kills']} (SIGTERM {r['sigterm']}, SIGKILL {r['sigkill']}; "
        f"landed: {', '.join(f'{k} {v}' for k, v in r['kills_by_point'].items())})",
        f"  start-up to READY (s): {r['ready_seconds']}",
        f"  SIGTERM to exit (s):   {r['sigterm_exit_seconds']}",
    ]
    if "fills" in r:
        lines += [
            f"  fills {r['fills']} ({r['fills_per_session']} per session), reference {r['reference_fills']}: "
            f"lost {r['lost_fills']}, duplicated {r['duplicated_fills']}; orders {r['orders']}",
            f"  daily reports {r['daily_reports']}; engine starts per session {r['starts_per_session']}, "
            f"as the reports say {r['engine_starts_per_report']} ({r['sessions_whose_report_miscounts_starts']} differ)",
            f"  reconciliation: {r['reconcile_passes']} passes ({r['reconcile_passes_with_differences']} saw a "
            f"difference), {r['breaks']} breaks, {r['missed_fills_applied']} missed fills applied",
            f"  audit verify exit {r['audit_verify_exit']} ({r['audit_rows']} rows); backups written "
            f"{r['backups_written']} at {r['sessions']} closes ({r['closes_without_backup']} without; SIGKILLs "
            f"at a close {r['sigkills_at_a_close']}, after a report {r['sigkills_after_a_report']}), kept {r['backups_kept']} "
            f"(verified {r['backups_verified']}), failed {r['backups_failed']}, temporaries left "
            f"{len(r['backup_temporaries_left'])}",
            f"  book: {r['book']}",
        ]
    rss, ref = r["rss_mib"], r["reference"]
    lines += [
        f"  RSS (MiB) per run, VmHWM: first {rss['first_run_peak']}, last {rss['last_run_peak']}, max "
        f"{rss['max_peak']}; RssAnon peak: first {rss['first_run_anon']}, last {rss['last_run_anon']}, max "
        f"{rss['max_anon']}",
        f"  reference (one process): RssAnon at the first close {ref['anon_mib_first_close']}, at the last "
        f"{ref['anon_mib_last_close']}; VmHWM {ref['peak_rss_mib']}",
        f"  disk (MiB): state dir {disk.get('total', 0) / mb:.1f} (store {disk.get('store', 0) / mb:.1f}, backups "
        f"{disk.get('backups', 0) / mb:.1f}, logs {disk.get('logs', 0) / mb:.1f}); reference "
        f"{ref_disk.get('total', 0) / mb:.1f}",
        f"  verdict: {'OK' if r['ok'] else 'FAILED'}",
    ]
    lines += [f"  problem: {p}" for p in r["problems"]]
    print("\n".join(lines))


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=30, help="exchange sessions (default 30, at most 38)")
    parser.add_argument("--kill-mode", choices=("mixed", "sigterm", "sigkill"), default="mixed")
    parser.add_argument("--speed", type=float, default=10000.0,
                        help="simulated seconds per wall second (default 10000)")
    parser.add_argument("--reference-speed", default=None,
                        help="the uninterrupted run's pace (default: --speed; 'max' for as fast as it goes)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: from the clock)")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the temporary folder goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be positive")
    ref_speed: float | str | None = None
    if args.reference_speed is not None:
        try:
            ref_speed = "max" if args.reference_speed == "max" else float(args.reference_speed)
        except ValueError:
            parser.error(f"--reference-speed {args.reference_speed!r}: a number of simulated seconds per wall "
                         "second, or max")
        if ref_speed != "max" and not float(ref_speed) > 0:
            parser.error("--reference-speed must be positive")
    seed = args.seed if args.seed is not None else int(time.time())
    return args, Plan(args.sessions, args.kill_mode, args.speed, ref_speed, seed)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args, plan = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # like Ctrl-C: the engines it started are stopped first
    say = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        sessions_of_data(plan.sessions)  # a bad --sessions is refused before anything is made
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="cockpit-soak-", dir=args.tmpdir))
    try:
        report = run_soak(plan, workdir, say)
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"soak: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not args.json:
        print_summary(report)
    compact = {k: v for k, v in report.items() if k != "per_run"}
    print(json.dumps(compact))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt as exc:
        print(f"soak: interrupted ({exc or 'SIGINT'}): the engines it started are stopped, its folder removed "
              "(unless --keep)", file=sys.stderr)
        raise SystemExit(130) from None
