"""The runbook (cockpit/RUNBOOK.md, shipped in the package; docs/RUNBOOK.md links to it), exercised:
every command of its ```sh blocks runs here, exactly as written,
in a scenario made of real parts, or (where this box has no systemd and no docker daemon) is
checked against what deploy/ ships.

The convention:
- a ```sh line is a command (comments after ` # ` and `\\` continuations as tests/deploy_files.py
  reads them); `<SYMBOL>`, `<NAME>`, `<REASON>` are placeholders a scenario fills in;
- a line whose command (after a leading `sudo`) is `cockpit`, `kill`, `df`, `du` or `rm` is RUN:
  a scenario declares it in ``COVERED`` and must run every line it declares and nothing else, so
  a new command in the runbook fails the coverage test until a scenario runs it, and a command
  taken out fails the scenario still running it. `/var/lib/cockpit` becomes the scenario's state
  dir and `sudo` is dropped (the tests own everything). `cockpit ...` is the runbook's systemd
  alias with the scenario's config and state dir: in this process through ``cockpit.cli.main``
  (a child process costs ~0.8 s of imports per command), and once per scenario through bash as
  a child process; ``RUNBOOK_CHILD_PROCESSES=1`` runs every one that way. A prompt gets its
  answer typed on a terminal (a pty for a child). The other lines run through bash;
- a line whose command is `alias`, `systemctl`, `journalctl`, `docker` or `sudoedit` is CHECKED:
  unit names, compose file and services, the install paths and the units' ExecStart; the unit
  override the runbook has you type is the ExecStart plus `--override-preflight`. Any other
  command fails.

The scenarios, each a real engine (started by the unit's ExecStart rendered into tmp_path) and
`cockpit ib-sim` gateways on loopback: paper (a break accepted, one flattened, flatten all,
backup, a restore refused, SIGTERM, restore, preflight and its drill); IBKR with two gateways
(an unknown order adopted, crossed quotes failing over and back, halt/cancel-all/resume, the
gateway SIGKILLed and back); IBKR hung (SIGSTOP: the 10 s answer, the direct flatten with another
client id, SIGKILL), then dead (status, the store's readers, the direct flatten audited, a
restart that finds the break and accepts it); the disk full on a real 2 MB tmpfs (an old backup
deleted, space freed, started again); a LIVE account refused by the unit's ExecStart and started
by the override.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import pty
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from cockpit.control.client import ApiRefused, ControlClient, NoEngine
from tests.conftest import CONFIG, ROOT
from tests.deploy_files import COCKPIT_BIN, CONFIG_PATH, DOCKER, STATE_DIR, SYSTEMD, exec_start, shell_lines
from tests.test_ibkr_cli import LISTENING
from tests.test_ibkr_wiring import ibkr_config

RUNBOOK = ROOT / "cockpit" / "RUNBOOK.md"  # the package data; docs/RUNBOOK.md is a link to it
COMPOSE_FILE = "deploy/docker/compose.yaml"
PLACEHOLDERS = ("SYMBOL", "NAME", "REASON")
RUN = ("cockpit", "kill", "df", "du", "rm")
CHECK = ("alias", "systemctl", "journalctl", "docker", "sudoedit")
HUNG_CLIENT_ID = "99"  # the runbook's --client-id for a direct flatten next to a hung engine

#: Which scenario runs which runbook line (exactly as the runbook writes it).
COVERED: dict[str, list[str]] = {
    "paper": [
        "cockpit runbook",
        "cockpit status",
        "cockpit reconcile",
        "cockpit breaks",
        'cockpit resolve <SYMBOL> accept --reason "<REASON>"',
        'cockpit resolve <SYMBOL> flatten --reason "<REASON>"',
        "cockpit flatten --all",
        "cockpit backup",
        "cockpit restore <NAME>",
        'sudo kill -TERM "$(cat /var/lib/cockpit/engine.lock)"',
        "cockpit backup list",
        "cockpit audit verify",
        "cockpit preflight",
        "cockpit preflight --drill",
    ],
    "gateway": [
        "cockpit status",
        "cockpit breaks",
        'cockpit resolve <SYMBOL> adopt --reason "<REASON>"',
        "cockpit reconcile",
        "cockpit alerts",
        'cockpit halt --reason "<REASON>"',
        "cockpit cancel-all",
        'cockpit resume --reason "<REASON>"',
    ],
    "hung_then_dead": [
        "cockpit status",
        f"cockpit flatten --all --direct --yes --client-id {HUNG_CLIENT_ID}",
        'sudo kill -KILL "$(cat /var/lib/cockpit/engine.lock)"',
        "cockpit positions",
        "cockpit orders --open",
        "cockpit audit verify",
        "cockpit breaks",
        'cockpit resolve <SYMBOL> accept --reason "<REASON>"',
        'cockpit resume --reason "<REASON>"',
    ],
    "disk_full": [
        "cockpit backup",
        "df -h /var/lib/cockpit",
        "sudo du -sh /var/lib/cockpit/*",
        "cockpit backup list",
        "sudo rm /var/lib/cockpit/backups/<NAME>",
        "cockpit audit verify",
        "cockpit status",
    ],
    "live": [
        "cockpit preflight",
        "cockpit status",
    ],
}


# ---- reading the runbook ---------------------------------------------------------------------


def runbook_text() -> str:
    return RUNBOOK.read_text()


def sh_lines() -> list[str]:
    return shell_lines(runbook_text())


def words(line: str) -> list[str]:
    """The line as argv with a leading `sudo` dropped (`sudo -u cockpit` is the alias's own)."""
    argv = shlex.split(line)
    return argv[1:] if argv[:1] == ["sudo"] and argv[1:2] != ["-u"] else argv


def run_lines() -> set[str]:
    return {line for line in sh_lines() if words(line)[0] in RUN}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", runbook_text(), flags=re.S)


def toml_block(containing: str) -> str:
    """The one ```toml block of the runbook that contains ``containing``."""
    found = [b for b in blocks("toml") if containing in b]
    assert len(found) == 1, f"expected one ```toml block with {containing!r} in the runbook, found {len(found)}"
    return "\n".join(line.strip() for line in found[0].splitlines())


def with_keys(text: str, block: str) -> str:
    """``text`` (a config.toml) with the keys of ``block`` set: what "these keys change" means."""
    lines = text.splitlines()
    section = None
    for raw in block.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            if section not in (x.strip() for x in lines):
                lines += ["", section]
            continue
        key = line.split("=", 1)[0].strip()
        start = [x.strip() for x in lines].index(section)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        at = next((i for i in range(start + 1, end) if re.match(rf"\s*{re.escape(key)}\s*=", lines[i])), None)
        if at is None:
            lines.insert(start + 1, line)
        else:
            lines[at] = line
    out = "\n".join(lines) + "\n"
    got = tomllib.loads(out)
    for path, value in _leaves(tomllib.loads(block)):
        here: Any = got
        for part in path:
            here = here[part]
        assert here == value, path
    return out


def _leaves(table: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


# ---- running runbook lines -------------------------------------------------------------------


def child_env(clean_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**clean_env, "PYTHONPATH": str(ROOT), "COCKPIT_ENGINE__FLUSH_INTERVAL_MS": "20", **extra}


ALL_CHILDREN = os.environ.get("RUNBOOK_CHILD_PROCESSES") == "1"  # every `cockpit` line a child process (slow)


class _Terminal(io.StringIO):
    """stdin as a terminal with the operator's answer typed in."""

    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """The command may set logging up for itself (the direct flatten logs to the state dir's file):
    afterwards every logger is as it was, and the handlers it added are closed."""
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    kept = {id(x): (x, list(x.handlers), list(x.filters), x.level, x.propagate) for x in loggers}
    try:
        yield
    finally:
        for x in [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                         if isinstance(x, logging.Logger))]:
            handlers, filters, level, propagate = kept.get(id(x), (x, [], [], logging.NOTSET, True))[1:]
            for h in x.handlers:
                if h not in handlers:
                    h.close()
            x.handlers[:] = handlers
            x.filters[:] = filters
            x.setLevel(level)
            x.propagate = propagate


class Runbook:
    """Runs the runbook's lines for one scenario, exactly as written, and checks the scenario ran
    every line it declares in ``COVERED`` (no more, no fewer)."""

    def __init__(self, scenario: str, env: dict[str, str], config: Path, state: Path, cwd: Path) -> None:
        self.scenario = scenario
        self.declared = set(COVERED[scenario])
        self.ran: set[str] = set()
        self.env, self.config, self.state, self.cwd = env, config, state, cwd
        self.lines = set(sh_lines())

    def function(self) -> str:
        """The runbook's systemd alias, as a shell function for this scenario's paths."""
        py = shlex.quote(sys.executable)
        return (f"cockpit() {{ {py} -m cockpit --config {shlex.quote(str(self.config))} --state-dir "
                f"{shlex.quote(str(self.state))} \"$@\"; }}")

    def render(self, line: str, values: dict[str, str]) -> str:
        text = line
        for name in PLACEHOLDERS:
            if f"<{name}>" in text:
                value = values[name]
                assert re.fullmatch(r"[A-Za-z0-9 ._:,-]+", value), f"{name}={value!r} would need quoting"
                text = text.replace(f"<{name}>", value)
        assert not re.search(r"<[A-Z]+>", text), f"a placeholder nobody filled in: {text}"
        if text.startswith("sudo ") and not text.startswith("sudo -u"):
            text = text[len("sudo "):]
        return text.replace(STATE_DIR, str(self.state))

    def run(self, line: str, *, code: int | None = 0, answer: str | None = None, child: bool = False,
            timeout: float = 90, **values: str) -> subprocess.CompletedProcess[str]:
        """``line`` with ``values`` for its placeholders; ``answer`` is typed at its prompt. A
        `cockpit` line runs in this process (``child``: through bash, as a child process);
        every other line through bash."""
        assert line in self.lines, f"not (any more) a command of the runbook: {line}"
        assert line in self.declared, f"scenario {self.scenario} runs {line!r} but COVERED does not say so"
        text = self.render(line, values)
        if words(line)[0] == "cockpit" and not (child or ALL_CHILDREN):
            done = self._in_process(text, answer)
        else:
            done = self._child(text, answer, timeout)
        out = done.stdout + done.stderr
        assert "Traceback" not in out and "Logging error" not in out, (line, done.stdout, done.stderr)
        if code is not None:
            assert done.returncode == code, (line, done.returncode, done.stdout, done.stderr)
        if done.returncode != 0:  # an expected failure says so in one line
            assert len([x for x in done.stderr.splitlines() if x.startswith("cockpit: ")]) <= 1, done.stderr
        self.ran.add(line)
        return done

    def _child(self, text: str, answer: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
        script = f"{self.function()}\n{text}\n"
        master = slave = None
        stdin: Any = subprocess.DEVNULL
        if answer is not None:  # a terminal to type the answer on, as at the prompt
            master, slave = pty.openpty()
            os.write(master, answer.encode() + b"\n")
            stdin = slave
        try:
            return subprocess.run(["bash", "-c", script], env=self.env, cwd=self.cwd, stdin=stdin, capture_output=True,
                                  text=True, timeout=timeout)
        finally:
            for fd in (master, slave):
                if fd is not None:
                    os.close(fd)

    def _in_process(self, text: str, answer: str | None) -> subprocess.CompletedProcess[str]:
        """`cockpit ...` through ``cockpit.cli.main`` with the alias's options, this scenario's
        COCKPIT_* variables, and a terminal on stdin if there is an answer to type."""
        from cockpit.cli import main

        argv = shlex.split(text)
        assert argv[0] == "cockpit", text
        argv = ["--config", str(self.config), "--state-dir", str(self.state), *argv[1:]]
        out, err = io.StringIO(), io.StringIO()
        stdin = _Terminal(answer + "\n") if answer is not None else io.StringIO("")
        variables = {k: v for k, v in self.env.items() if k.startswith("COCKPIT_")}
        umask = os.umask(0o077)
        os.umask(umask)
        with _logging_kept(), mock.patch.dict(os.environ, variables), mock.patch.object(sys, "stdin", stdin), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
            finally:
                os.umask(umask)
        return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())

    def done(self) -> None:
        missing = self.declared - self.ran
        assert not missing, f"scenario {self.scenario} declares but never ran: {sorted(missing)}"


def engine_command(unit: str, config: Path, state: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """A unit's ExecStart (or the runbook's override of it) with this test's interpreter and paths:
    the stand-in for `sudo systemctl start cockpit`."""
    from tests.deploy_files import rendered

    return rendered([*exec_start(unit), *extra], config, state)


def unit_environment(name: str = "cockpit.service") -> dict[str, str]:
    """The unit's own Environment= settings, which the engine gets under systemd too."""
    from tests.deploy_files import unit

    return dict(item.split("=", 1) for item in unit(name)["Service"].get("Environment", []))


class Engine:
    def __init__(self, argv: list[str], env: dict[str, str], state: Path, log: Path) -> None:
        self.state = state
        self.log = log
        env = {**env, **unit_environment()}
        with log.open("a") as err:
            self.proc = subprocess.Popen(argv, env=env, cwd=state.parent, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        self.api = ControlClient(state / "control.sock", timeout=5)

    def status(self) -> dict[str, Any] | None:
        try:
            return self.api.get("/status")
        except NoEngine:
            return None

    def wait(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"the engine exited {self.proc.returncode}: {self.log.read_text()[-2000:]}"
            s = self.status()
            if s is not None and predicate(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {s}")
            time.sleep(0.05)  # polling another process: it runs on its own clock

    def order(self, **body: str) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                self.api.post("/orders", **body)
                return
            except ApiRefused:  # no fresh quote yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self.api.__exit__(None, None, None)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_sim(tmp: Path, name: str, env: dict[str, str], *extra: str, port: int = 0) -> tuple[subprocess.Popen, int]:
    with (tmp / f"{name}.err").open("a") as err:
        proc = subprocess.Popen([sys.executable, "-m", "cockpit", "ib-sim", "--port", str(port), "--state",
                                 str(tmp / f"{name}.json"), "--tick-interval", "0.2", "--seed", "5", *extra],
                                env=env, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                text=True)
    assert proc.stdout is not None
    m = LISTENING.search(proc.stdout.readline())
    assert m, (tmp / f"{name}.err").read_text()
    return proc, int(m.group(1))


def stop_all(*procs: subprocess.Popen | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()


def sim_state(tmp: Path, name: str) -> Any:
    from brokers.ibsim.state import load_state

    state = load_state(tmp / f"{name}.json")
    assert state is not None
    return state


def sim_positions(tmp: Path, name: str) -> dict[str, float]:
    return {s: float(p.qty) for s, p in sim_state(tmp, name).positions.items() if p.qty}


def sim_working(tmp: Path, name: str) -> list[str]:
    return [o.symbol for o in sim_state(tmp, name).orders.values() if o.working]


def stored_alert_titles(state: Path) -> list[str]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT title FROM alerts")]
    except sqlite3.OperationalError:  # no alerts table yet
        return []
    finally:
        db.close()


def audit_kinds(state: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in db.execute("SELECT kind, detail FROM audit ORDER BY seq")]
    finally:
        db.close()


def store_qty(state: Path, symbol: str) -> float:
    """The position the store holds (what `cockpit positions` reads), committed."""
    db = sqlite3.connect(f"file:{state / 'cockpit.sqlite'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT qty FROM positions WHERE symbol = ?", (symbol,)).fetchone()
    finally:
        db.close()
    return float(row[0]) if row else 0.0


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# ---- the static checks -----------------------------------------------------------------------


def test_every_command_the_runbook_runs_is_covered_by_a_scenario_and_no_scenario_runs_a_stale_one() -> None:
    declared = {line for lines in COVERED.values() for line in lines}
    present = run_lines()
    assert present - declared == set(), f"runbook commands no scenario runs: {sorted(present - declared)}"
    assert declared - present == set(), f"scenario lines that are not in the runbook: {sorted(declared - present)}"


def test_every_sh_line_is_a_command_this_test_runs_or_checks() -> None:
    lines = sh_lines()
    assert len(lines) >= 30, "the runbook's ```sh blocks were not found"
    for line in lines:
        assert words(line)[0] in RUN + CHECK, f"no rule for this runbook line (run it or check it here): {line}"
        for name in re.findall(r"<([A-Z]+)>", line):
            assert name in PLACEHOLDERS, f"unknown placeholder <{name}> in: {line}"


def test_inline_commands_in_the_prose_are_lines_of_its_sh_blocks() -> None:
    """A command quoted in the text (`cockpit halt ...`) must be one the blocks have: no untested copies."""
    prose = re.sub(r"```.*?```", "", runbook_text(), flags=re.S)
    spans = re.findall(r"``(.+?)``|`([^`]+)`", prose)
    lines = set(sh_lines())
    for double, single in spans:
        span = double or single
        if re.match(r"(sudo |cockpit [a-z-]+|systemctl |journalctl |docker |kill |df |du |rm )", span):
            assert span in lines, f"a command in the prose that no ```sh block has: {span}"


def test_the_table_links_to_headings_that_exist() -> None:
    text = runbook_text()
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links and set(links) <= slugs, set(links) - slugs


def _units() -> set[str]:
    return {p.stem for p in SYSTEMD.glob("*.service")}


def _unit_name(arg: str) -> str:
    name = arg.removesuffix(".service")
    assert name in _units(), f"{arg}: no such unit in deploy/systemd ({sorted(_units())})"
    return name


def _check_alias(argv: list[str]) -> None:
    assert len(argv) == 2 and argv[1].startswith("cockpit="), argv
    target = shlex.split(argv[1].removeprefix("cockpit="))
    engine = exec_start("cockpit.service")
    paths = ["--config", engine[engine.index("--config") + 1], "--state-dir", engine[engine.index("--state-dir") + 1]]
    assert paths == ["--config", CONFIG_PATH, "--state-dir", STATE_DIR]
    if target[0] == "sudo":  # systemd: as the units' user, the units' binary and paths
        assert target[:3] == ["sudo", "-u", "cockpit"] and target[3:] == [engine[0], *paths], target
        assert "User=cockpit" in (SYSTEMD / "cockpit.service").read_text()
    else:
        _check_docker(target)
        assert target[target.index(COCKPIT_BIN) + 1:] == paths, target


def _check_systemctl(argv: list[str]) -> None:
    verb, *rest = argv[1:]
    assert verb in {"status", "start", "stop", "reset-failed", "edit", "revert"}, argv
    assert rest and all(_unit_name(a) for a in rest), argv


def _check_journalctl(argv: list[str]) -> None:
    args = argv[1:]
    if args and args[0].startswith("--vacuum-size="):
        assert re.fullmatch(r"--vacuum-size=\d+[KMG]", args[0]) and len(args) == 1, argv
        return
    assert args[:1] == ["-u"], argv
    _unit_name(args[1])
    rest = args[2:]
    while rest:
        opt = rest.pop(0)
        if opt in ("-n", "-p", "--since"):
            rest.pop(0)
        else:
            assert opt in ("--no-pager", "-f"), argv


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _check_docker(argv: list[str]) -> None:
    assert argv[:4] == ["docker", "compose", "-f", COMPOSE_FILE], argv
    assert (ROOT / COMPOSE_FILE).is_file()
    services = _compose()["services"]
    verb, *rest = argv[4:]
    assert verb in {"stop", "start", "restart", "ps", "logs", "run", "exec"}, argv
    while rest and rest[0].startswith("-"):
        opt = rest.pop(0)
        if opt == "--tail":
            assert rest.pop(0).isdigit()
        else:
            assert opt in ("--rm", "--no-deps"), argv
    assert rest and rest[0] in services, f"{argv}: no service {rest[:1]} in {COMPOSE_FILE} ({sorted(services)})"
    if verb in ("run", "exec"):
        assert rest[0] == "cockpit" and rest[1] == COCKPIT_BIN, argv
        mounts = services["cockpit"]["volumes"]
        assert any(m.endswith(f":{CONFIG_PATH}:ro") for m in mounts) and any(f":{STATE_DIR}" in m for m in mounts)
    else:
        assert len(rest) == 1, argv


def _check_sudoedit(argv: list[str]) -> None:
    assert argv[1:] == [CONFIG_PATH], argv


CHECKERS: dict[str, Callable[[list[str]], None]] = {
    "alias": _check_alias, "systemctl": _check_systemctl, "journalctl": _check_journalctl, "docker": _check_docker,
    "sudoedit": _check_sudoedit,
}


def test_the_lines_that_cannot_run_here_name_what_deploy_ships() -> None:
    """systemctl, journalctl, docker compose, the aliases, sudoedit: no systemd or docker daemon
    here, so each is checked against the units, compose.yaml and the install paths."""
    checked = 0
    for line in sh_lines():
        argv = words(line)
        if argv[0] in CHECK:
            CHECKERS[argv[0]](argv)
            checked += 1
    assert checked >= 10


def test_the_kill_lines_send_signals_the_engine_handles_to_the_pid_in_its_lock_file() -> None:
    from cockpit.headless import STOP_SIGNALS
    from cockpit.state_lock import LOCK_NAME

    kills = [words(line) for line in sh_lines() if words(line)[0] == "kill"]
    assert {k[1] for k in kills} == {"-TERM", "-KILL"}, kills
    assert signal.SIGTERM in STOP_SIGNALS  # -TERM: a clean stop; -KILL: only for a hung engine
    for k in kills:
        assert k[2:] == [f"$(cat {STATE_DIR}/{LOCK_NAME})"], k


def override_lines() -> list[str]:
    """The drop-in the runbook has you type into `sudo systemctl edit cockpit`."""
    [ini] = blocks("ini")
    return [x.strip() for x in ini.splitlines() if x.strip()]


def test_the_override_is_the_units_exec_start_plus_the_flag() -> None:
    lines = override_lines()
    assert len(lines) == 3 and lines[:2] == ["[Service]", "ExecStart="], lines  # a drop-in clears ExecStart first
    argv = shlex.split(lines[2].removeprefix("ExecStart="))
    assert argv == [*exec_start("cockpit.service"), "--override-preflight", "<REASON>"]


def test_the_config_blocks_are_valid_settings(tmp_path: Path) -> None:
    """The keys the runbook tells you to set load: live and paper on the repository's config.toml
    (from the paper broker), the fallback on an IBKR config."""
    from core.config import load_config

    live = tmp_path / "live.toml"
    live.write_text(with_keys(CONFIG.read_text(), toml_block("port = 4001")))
    s = load_config(live)
    assert (s.broker.kind, s.feed.kind, s.ibkr.port, s.ibkr.account[0]) == ("ibkr", "ibkr", 4001, "U")
    paper = tmp_path / "paper.toml"
    paper.write_text(with_keys(live.read_text(), toml_block("port = 4002")))
    s = load_config(paper)
    assert (s.broker.kind, s.ibkr.port, s.ibkr.account[0]) == ("ibkr", 4002, "D")
    s = load_config(ibkr_config(tmp_path, 4002, extra=toml_block("[[feed.fallbacks]]")))
    assert [(f.name, f.kind) for f in s.feed.fallbacks] == [("gateway-b", "ibkr")]


def test_the_readme_points_to_the_runbook() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Emergency: the engine is dead or hung")
    section = readme[start:readme.index("\n## ", start)]
    assert "cockpit/RUNBOOK.md" in section and "`cockpit runbook`" in section


# ---- scenario: a paper engine ----------------------------------------------------------------


@pytest.fixture
def paper(clean_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Runbook, Engine]]:
    state = tmp_path / "state"
    env = child_env(clean_env, COCKPIT_DEADMAN__INTERVAL_SECONDS="3600", COCKPIT_RECONCILE__SETTLE_SECONDS="0.2")
    engine = Engine(engine_command("cockpit.service", CONFIG, state), env, state, tmp_path / "engine.err")
    try:
        engine.wait(lambda s: s["trading_state"] == "ACTIVE", "the paper engine up")
        yield Runbook("paper", env, CONFIG, state, tmp_path), engine
    finally:
        engine.stop()


def _qty(s: dict[str, Any], symbol: str) -> float:
    return float({p["symbol"]: p["qty"] for p in s["positions"]}.get(symbol, "0"))


def test_paper_engine_break_flatten_backup_stop_restore_preflight(paper: tuple[Runbook, Engine]) -> None:
    rb, engine = paper
    assert rb.run("cockpit runbook").stdout == runbook_text()  # the installed runbook, this very text
    assert "trading   ACTIVE" in rb.run("cockpit status", child=True).stdout  # the alias, in bash, a child
    for name in ("sma_cross", "rsi_reversion"):  # the book moves only by what this test does
        engine.api.post(f"/strategies/{name}", enabled=False)
    engine.order(side="buy", symbol="AAPL", qty="10")
    engine.wait(lambda s: _qty(s, "AAPL") == 10, "AAPL bought")

    # 4. A break (the book made wrong by hand), accepted; another one flattened.
    s = engine.status()
    assert s is not None
    engine.api.post("/position", symbol="ORCL", qty=str(int(_qty(s, "ORCL")) + 7), avg_cost="20", reason="misread")
    assert engine.api.post("/reconcile")["breaks"]
    assert "engine 7, broker 0" in rb.run("cockpit breaks").stdout
    done = rb.run('cockpit resolve <SYMBOL> accept --reason "<REASON>"', answer="y", SYMBOL="ORCL",
                  REASON="the broker is right")
    assert "RESOLVE the ORCL break by ACCEPT" in done.stdout and "Go ahead?" in done.stdout
    engine.api.post("/position", symbol="AAPL", qty="15", avg_cost="20", reason="misread")
    assert engine.api.post("/reconcile")["breaks"]
    done = rb.run('cockpit resolve <SYMBOL> flatten --reason "<REASON>"', answer="y", SYMBOL="AAPL",
                  REASON="out of it")
    assert "RESOLVE the AAPL break by FLATTEN" in done.stdout
    engine.wait(lambda s: _qty(s, "AAPL") == 0 and not s["breaks"], "AAPL flattened")
    assert "books agree" in rb.run("cockpit reconcile").stdout

    # Get flat now: the engine answers.
    engine.order(side="buy", symbol="SPY", qty="3")
    engine.wait(lambda s: _qty(s, "SPY") == 3, "SPY bought")
    flat = rb.run("cockpit flatten --all", answer="y")
    assert "FLATTEN ALL" in flat.stdout and "SPY: flat" in flat.stdout, flat.stdout
    s = engine.status()
    assert s is not None and s["positions"] == [] and s["trading_state"] == "HALTED"

    # 8, step 2 / 7: a backup; a restore refused while the engine runs; SIGTERM; the restore.
    assert "backup written:" in rb.run("cockpit backup").stdout
    refused = rb.run("cockpit restore <NAME>", code=1, NAME="cockpit-20000101T000000Z-manual.sqlite")
    assert "an engine is running on" in refused.stderr
    pid = int((engine.state / "engine.lock").read_text())
    assert pid == engine.proc.pid
    rb.run('sudo kill -TERM "$(cat /var/lib/cockpit/engine.lock)"')
    assert engine.proc.wait(30) == 0  # a clean stop
    gone = rb.run("cockpit status", code=1)
    assert "cockpit: no cockpit engine is running here" in gone.stderr
    listing = rb.run("cockpit backup list").stdout
    names = re.findall(r"^(cockpit-\S+-manual\.sqlite) .* ok$", listing, re.M)
    assert names, listing
    restored = rb.run("cockpit restore <NAME>", answer="y", NAME=names[0])
    assert f"restored {names[0]}" in restored.stdout and "the account now holds:" in restored.stdout, restored.stdout
    assert "archive/restore-" in restored.stdout
    assert "chain intact" in rb.run("cockpit audit verify").stdout

    # 8, step 1: the go-live check and its drill (no engine runs).
    check = rb.run("cockpit preflight", code=1)
    assert "FAIL  paper traded" in check.stdout and check.stdout.rstrip().splitlines()[-1].startswith("preflight: FAIL")
    drill = rb.run("cockpit preflight --drill", code=1)
    m = re.search(r"drill: (\d+) of (\d+) risk checks refused their order", drill.stdout)
    assert m and m.group(1) == m.group(2), drill.stdout
    assert "PASS  every risk check exercised" in drill.stdout
    rb.done()


# ---- scenario: IBKR mode, two gateways -------------------------------------------------------


async def _place_unknown_order(port: int, client_id: int) -> None:
    """An order at IB under the engine's client id that its store never saw (placed by hand)."""
    from ib_async import IB, LimitOrder, Stock

    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=10)
    try:
        [msft] = await ib.qualifyContractsAsync(Stock("MSFT", "SMART", "USD"))
        trade = ib.placeOrder(msft, LimitOrder("BUY", 5, 1.0))
        deadline = time.monotonic() + 10
        while trade.orderStatus.status != "Submitted":
            assert time.monotonic() < deadline, trade.orderStatus
            await asyncio.sleep(0.02)
    finally:
        ib.disconnect()


def _gateway_config(tmp: Path, primary: int, fallback: int) -> Path:
    block = toml_block("[[feed.fallbacks]]").replace("port = 4012", f"port = {fallback}")
    extra = f"[feed.quality]\nfail_count = 5\nfail_window_seconds = 5\n{block}\nstale_seconds = 3\n"
    path = ibkr_config(tmp, primary, client_id=31, reconnect=(0.05, 0.5), settle=0.2, extra=extra)
    path.write_text(path.read_text().replace('symbols = ["AAPL", "MSFT"]\n',
                                             'symbols = ["AAPL", "MSFT"]\nstale_seconds = 3\nfailback_seconds = 1\n'))
    return path


def _active(s: dict[str, Any]) -> str:
    return next(f["name"] for f in s["feeds"] if f["active"])


def test_ibkr_break_adopted_feed_failover_and_gateway_restart(clean_env: dict[str, str], tmp_path: Path) -> None:
    env = child_env(clean_env)
    sim_a, port_a = start_sim(tmp_path, "a", env, "--quote-fault-on-usr1", "crossed")
    sim_b, port_b = start_sim(tmp_path, "b", env)
    engine: Engine | None = None
    try:
        asyncio.run(_place_unknown_order(port_a, 31))
        config = _gateway_config(tmp_path, port_a, port_b)
        state = tmp_path / "state"
        engine = Engine(engine_command("cockpit.service", config, state), env, state, tmp_path / "engine.err")
        rb = Runbook("gateway", env, config, state, tmp_path)
        engine.wait(lambda s: s["broker"]["connected"] and s["breaks"], "connected, with the unknown order a break")

        # 4. The unknown order: adopted.
        assert "BREAKS    MSFT (blocked: `cockpit breaks`)" in rb.run("cockpit status", child=True).stdout
        assert "BUY 5 LIMIT @ 1" in rb.run("cockpit breaks").stdout
        done = rb.run('cockpit resolve <SYMBOL> adopt --reason "<REASON>"', answer="y", SYMBOL="MSFT",
                      REASON="mine, placed in TWS")
        assert "RESOLVE the MSFT break by ADOPT" in done.stdout
        assert "books agree" in rb.run("cockpit reconcile").stdout

        # 5. Crossed quotes on the primary: the fallback takes over.
        engine.wait(lambda s: all(f["healthy"] and f["passed"] > 0 for f in s["feeds"]), "both feeds healthy")
        sim_a.send_signal(signal.SIGUSR1)
        engine.wait(lambda s: _active(s) == "gateway-b", "the failover to gateway-b")
        text = rb.run("cockpit status").stdout
        feed_lines = [x for x in text.splitlines() if "(ibkr)" in x]
        assert feed_lines[0].startswith("feed      gateway-b (ibkr) ACTIVE, healthy"), text
        assert feed_lines[1].startswith("          ibkr (ibkr) standby, UNHEALTHY: ") and "failed the quality gate" in text
        wanted = ("Feed failover to gateway-b", "Bad data: ", "Feed ibkr UNHEALTHY")
        wait_for(lambda: all(any(t.startswith(w) for t in stored_alert_titles(state)) for w in wanted),
                 "the feed's alerts stored")
        alerts = rb.run("cockpit alerts").stdout
        assert "Feed failover to gateway-b" in alerts and "Bad data: " in alerts and "Feed ibkr UNHEALTHY" in alerts
        assert "HALTED" in rb.run('cockpit halt --reason "<REASON>"', REASON="no clean prices").stdout
        cancelled = rb.run("cockpit cancel-all", answer="y")
        assert "CANCEL ALL 1 working order(s)" in cancelled.stdout and "cancel requested" in cancelled.stdout
        sim_a.send_signal(signal.SIGUSR1)  # clean again
        engine.wait(lambda s: _active(s) == "ibkr", "back on the primary")
        rb.run('cockpit resume --reason "<REASON>"', REASON="prices are clean again")
        assert "trading   ACTIVE" in rb.run("cockpit status").stdout
        wait_for(lambda: sim_working(tmp_path, "a") == [], "the cancel saved in the simulator's state file")

        # 3. The gateway dies and comes back on its port.
        sim_a.send_signal(signal.SIGKILL)
        sim_a.wait(10)
        engine.wait(lambda s: s["broker"]["status"].startswith("reconnecting (attempt")
                    and "connection refused" in s["broker"]["status"], "the broker down, reconnecting")
        down = rb.run("cockpit status").stdout
        assert "broker ibkr DISCONNECTED: reconnecting" in down and "connection refused" in down, down
        assert "HOLD      broker ibkr disconnected (connection to IB Gateway lost; reconnecting)" in down
        sim_a, _ = start_sim(tmp_path, "a", env, port=port_a)
        engine.wait(lambda s: s["broker"]["connected"] and s["hold"] is None, "reconnected and reconciled")
        back = rb.run("cockpit status").stdout
        assert "broker ibkr connected" in back and "HOLD" not in back
        assert "no breaks: the engine's book agrees with the broker's" in rb.run("cockpit breaks").stdout
        rb.done()
    finally:
        if engine is not None:
            engine.stop()
        stop_all(sim_a, sim_b)


# ---- scenario: hung, then dead ---------------------------------------------------------------


def test_ibkr_engine_hung_then_dead_then_started_again(clean_env: dict[str, str], tmp_path: Path) -> None:
    env = child_env(clean_env)
    sim, port = start_sim(tmp_path, "sim", env)
    engine: Engine | None = None
    try:
        config = ibkr_config(tmp_path, port, client_id=41, reconnect=(0.05, 0.5), settle=0.2)
        state = tmp_path / "state"
        engine = Engine(engine_command("cockpit.service", config, state), env, state, tmp_path / "engine.err")
        rb = Runbook("hung_then_dead", env, config, state, tmp_path)
        engine.wait(lambda s: s["broker"]["connected"] and s["hold"] is None, "the IBKR engine ready")
        engine.order(side="buy", symbol="AAPL", qty="5")
        wait_for(lambda: sim_positions(tmp_path, "sim") == {"AAPL": 5}, "AAPL 5 at the simulator")
        wait_for(lambda: store_qty(state, "AAPL") == 5, "AAPL 5 committed to the store")

        # 2. Hung.
        engine.proc.send_signal(signal.SIGSTOP)
        hung = rb.run("cockpit status", code=1, child=True, timeout=30)
        assert hung.stderr.strip() == (f"cockpit: engine at {state}/control.sock did not answer in 10 s: it may be hung; "
                                       "see the runbook (`cockpit flatten --all --direct` needs no engine)")
        line = f"cockpit flatten --all --direct --yes --client-id {HUNG_CLIENT_ID}"
        out = rb.run(line).stdout
        assert "DONE: everything cancelled and flat" in out and "audit: NOT written: an engine holds the state dir" in out
        assert sim_positions(tmp_path, "sim") == {}
        rb.run('sudo kill -KILL "$(cat /var/lib/cockpit/engine.lock)"')
        assert engine.proc.wait(10) == -signal.SIGKILL

        # 1. Dead.
        dead = rb.run("cockpit status", code=1)
        assert dead.stderr.startswith(f"cockpit: no cockpit engine answers on {state}/control.sock") and \
            "it stopped or was killed" in dead.stderr
        assert "AAPL" in rb.run("cockpit positions").stdout  # the book as last committed
        rb.run("cockpit orders --open")
        again = rb.run(line).stdout  # the direct flatten with the engine dead: nothing left, audited now
        assert "nothing to do" in again, again
        assert "chain intact" in rb.run("cockpit audit verify").stdout
        assert any(kind == "operator.flatten_direct" for kind, _ in audit_kinds(state))

        # 1, step 5: started again; it reconciles with IB before anything else, halted by the emergency.
        assert "next start: HALTED" in again
        engine.stop()
        engine = Engine(engine_command("cockpit.service", config, state), env, state, tmp_path / "engine.err")
        # The flatten's fills came from client 99, not the engine's: its book still says 5, IB 0.
        engine.wait(lambda s: s["broker"]["connected"] and [b["symbol"] for b in s["breaks"]] == ["AAPL"],
                    "started again, AAPL a break")
        text = rb.run("cockpit status").stdout
        assert "BREAKS    AAPL" in text and "trading   HALTED (operator halt by direct-flatten:" in text, text
        assert "start halted: after the emergency flatten" in text
        assert "engine 5, broker 0" in rb.run("cockpit breaks").stdout
        rb.run('cockpit resolve <SYMBOL> accept --reason "<REASON>"', answer="y", SYMBOL="AAPL",
               REASON="flattened directly at IB")
        engine.wait(lambda s: not s["breaks"] and _qty(s, "AAPL") == 0, "the book flat like IB")
        resumed = rb.run('cockpit resume --reason "<REASON>"', REASON="the book agrees with IB").stdout
        assert "trading ACTIVE (was HALTED)" in resumed, resumed
        rb.done()
    finally:
        if engine is not None:
            engine.stop()
        stop_all(sim)


# ---- scenario: the disk full -----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs inside the test's temp dir (root and mount rights, as tests/test_disk_full.py)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the disk-full steps are not run")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_free_space_and_start_again(clean_env: dict[str, str], tmp_path: Path, small_disk: Path) -> None:
    state = small_disk / "state"
    env = child_env(clean_env)
    rb = Runbook("disk_full", env, CONFIG, state, tmp_path)

    def replay(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(engine_command("cockpit.service", CONFIG, state), env={**env, **unit_environment(), **extra},
                              cwd=tmp_path,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    first = replay(COCKPIT_FEED__SPEED="max", COCKPIT_FEED__END="2008-01-15")  # a few sessions, a backup at a close
    assert first.returncode == 0, first.stderr[-2000:]
    assert "backup written:" in rb.run("cockpit backup").stdout  # a second one
    full = replay(COCKPIT_FEED__SPEED="max")
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-2000:]
    assert full.stderr.strip().splitlines()[-1] == (
        f"cockpit: disk full: 0.0 MB free in {state}: everything up to the last commit is kept; free some space and "
        "start again to resume")
    # what the engine held while it ran (its WAL, a backup it was writing) is freed when it exits,
    # so the runbook's df shows the disk nearly, not always exactly, full
    use = re.search(r"(\d+)% ", rb.run("df -h /var/lib/cockpit").stdout)
    assert use is not None and int(use.group(1)) >= 50, use
    assert "backups" in rb.run("sudo du -sh /var/lib/cockpit/*").stdout
    listing = rb.run("cockpit backup list").stdout
    names = re.findall(r"^(cockpit-\S+\.sqlite) ", listing, re.M)
    assert len(names) >= 2, listing  # newest first: delete the oldest, keep the newest
    before = len(list((state / "backups").iterdir()))
    rb.run("sudo rm /var/lib/cockpit/backups/<NAME>", NAME=names[-1])
    assert len(list((state / "backups").iterdir())) == before - 1
    # The journal vacuum frees space outside the state dir: here the tmpfs grows instead.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert "100%" not in rb.run("df -h /var/lib/cockpit").stdout
    assert "chain intact" in rb.run("cockpit audit verify").stdout
    engine = Engine(engine_command("cockpit.service", CONFIG, state), env, state, tmp_path / "engine.err")
    try:
        engine.wait(lambda s: s["trading_state"] == "ACTIVE", "started again")
        assert "trading   ACTIVE" in rb.run("cockpit status", child=True).stdout
    finally:
        engine.stop()
    assert engine.proc.returncode == 0
    rb.done()


# ---- scenario: paper to live and back --------------------------------------------------------


def test_live_refused_then_started_with_the_unit_override(clean_env: dict[str, str], tmp_path: Path) -> None:
    env = child_env(clean_env)
    live_sim, live_port = start_sim(tmp_path, "live", env, "--account", "U1234567")
    engine: Engine | None = None
    try:
        live_keys = toml_block("port = 4001")
        symbols = tomllib.loads(live_keys)["feed"]["symbols"]
        strategies = "".join(f"[strategies.{name}]\nsymbols = {json.dumps(symbols)}\n"
                             for name in tomllib.loads(CONFIG.read_text())["strategies"])
        base = with_keys(CONFIG.read_text(), strategies)  # "each strategy's symbols among the feed's"
        config = tmp_path / "config.toml"
        config.write_text(with_keys(base, live_keys.replace("port = 4001", f"port = {live_port}")))
        state = tmp_path / "state"
        rb = Runbook("live", env, config, state, tmp_path)
        assert "FAIL  paper traded" in rb.run("cockpit preflight", code=1).stdout

        refused = subprocess.run(engine_command("cockpit.service", config, state), env={**env, **unit_environment()},
                                 cwd=tmp_path,
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-2000:]
        assert refused.stderr.strip().splitlines()[-1].startswith(
            "cockpit: config error: refusing to trade a LIVE account: the go-live check fails: ")

        override = shlex.split(override_lines()[2].removeprefix("ExecStart="))
        reason = "rehearsal: known gaps accepted"
        from tests.deploy_files import rendered

        argv = [reason if a == "<REASON>" else a for a in rendered(override, config, state)]
        engine = Engine(argv, env, state, tmp_path / "engine.err")
        engine.wait(lambda s: s["broker"]["connected"], "the live account started with the override")
        text = rb.run("cockpit status", child=True).stdout
        assert f"broker ibkr connected: connected to 127.0.0.1:{live_port}" in text
        assert any(k == "preflight.override" and reason in d for k, d in audit_kinds(state))
        engine.stop()
        assert engine.proc.returncode == 0
        rb.done()
    finally:
        if engine is not None:
            engine.stop()
        stop_all(live_sim)
