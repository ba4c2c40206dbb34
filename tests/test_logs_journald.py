"""The log under systemd and logrotate.

- journald: a child process whose stderr is what ``$JOURNAL_STREAM`` names writes
  ``<priority>name: message`` lines (sd-daemon levels, no timestamp: the journal has its own);
  a variable that names another file, or none, keeps the terminal's timestamped lines. The real
  engine (``cockpit --no-ui``) in such a child does the same and keeps its timestamped log file.
- ``logging.rotate = false``: the file is reopened by name once moved away, as logrotate does it
  (deploy/logrotate/cockpit, run for real when logrotate is installed); ``true`` rotates by size.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.logs import StateDirLogFile, WatchedStateDirLogFile, setup_from_settings
from core.config import LoggingConfig
from tests.conftest import CONFIG, ROOT

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
JOURNAL_LINE = re.compile(r"^<[0-7]>\S")

SNIPPET = """
import logging
from cockpit.logs import setup_logging
setup_logging("DEBUG", None)
log = logging.getLogger("cockpit.t")
log.debug("d"); log.info("i"); log.warning("w"); log.error("e\\nsecond line"); log.critical("c")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("boom")
"""


def child_stderr(tmp_path: Path, env: dict[str, str], argv: list[str], journal: str | None, code: int = 0) -> str:
    """Run ``argv`` with stderr a file; ``journal``: "match" sets JOURNAL_STREAM to that file's
    dev:inode, any other text is put in the variable as it is, None leaves it out."""
    err = tmp_path / "stderr.txt"
    with err.open("w") as f:
        st = os.fstat(f.fileno())
        child_env = {k: v for k, v in env.items() if k != "JOURNAL_STREAM"}
        if journal is not None:
            child_env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}" if journal == "match" else journal
        proc = subprocess.run(argv, env=child_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=f,
                              stdin=subprocess.DEVNULL, timeout=120)
    text = err.read_text()
    assert proc.returncode == code, text[-2000:]
    return text


def test_stderr_that_is_the_journal_gets_priorities_and_no_timestamps(tmp_path: Path, clean_env: dict[str, str]) -> None:
    text = child_stderr(tmp_path, clean_env, [sys.executable, "-c", SNIPPET], journal="match")
    assert text.splitlines() == ["<7>cockpit.t: d", "<6>cockpit.t: i", "<4>cockpit.t: w", "<3>cockpit.t: e",
                                 "<3>second line", "<2>cockpit.t: c", "<3>cockpit.t: boom"]


@pytest.mark.parametrize("journal", [None, "1:1", "not-a-stream"])
def test_other_stderr_keeps_the_terminal_format(tmp_path: Path, clean_env: dict[str, str], journal: str | None) -> None:
    lines = child_stderr(tmp_path, clean_env, [sys.executable, "-c", SNIPPET], journal=journal).splitlines()
    assert len(lines) == 7 and all(STAMP.match(line) for line in lines if line != "second line"), lines
    assert "WARNING cockpit.t: w" in lines[2] and not any(JOURNAL_LINE.match(line) for line in lines)


@pytest.mark.parametrize("journal", ["match", None])
def test_a_refusal_is_an_error_in_the_journal(tmp_path: Path, clean_env: dict[str, str], journal: str | None) -> None:
    text = child_stderr(tmp_path, clean_env, [sys.executable, "-m", "cockpit", "status", "--config",
                                              str(tmp_path / "missing.toml")], journal=journal, code=2)
    prefix = "<3>" if journal else ""
    assert text == f"{prefix}cockpit: config error: config file not found: {tmp_path / 'missing.toml'} " \
                   "(pass --config PATH to an existing config.toml)\n"


def test_the_engine_under_journald_logs_once_with_levels_and_keeps_its_file(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    env = {**clean_env, "COCKPIT_FEED__SPEED": "max", "COCKPIT_FEED__END": "2008-02-15",
           "COCKPIT_DEADMAN__ENABLED": "false"}
    text = child_stderr(tmp_path, env, [sys.executable, "-m", "cockpit", "--no-ui", "--config", str(CONFIG),
                                        "--state-dir", str(state)], journal="match")
    lines = text.splitlines()
    assert lines and all(JOURNAL_LINE.match(line) for line in lines), lines[:20]
    assert not any(STAMP.match(line[3:]) for line in lines)  # no second timestamp after the priority
    assert any(line.startswith("<6>cockpit.headless: replay finished") for line in lines), lines[-5:]
    logged = (state / "logs" / "cockpit.log").read_text().splitlines()
    assert any("INFO    cockpit.headless: replay finished" in line for line in logged)
    assert all(STAMP.match(line) for line in logged if "cockpit." in line[:60])


def file_handler(root: logging.Logger) -> logging.FileHandler:
    [handler] = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    return handler


def test_rotate_true_rotates_by_size_and_false_leaves_it_to_logrotate(tmp_path: Path, root_logger: logging.Logger) -> None:
    setup_from_settings(LoggingConfig(), tmp_path, stderr=False)
    assert type(file_handler(root_logger)) is StateDirLogFile
    setup_from_settings(LoggingConfig(rotate=False), tmp_path, stderr=False)
    assert type(file_handler(root_logger)) is WatchedStateDirLogFile


def test_a_moved_log_file_is_reopened_by_name(tmp_path: Path, root_logger: logging.Logger) -> None:
    setup_from_settings(LoggingConfig(rotate=False), tmp_path, stderr=False)
    log_file = tmp_path / "logs" / "cockpit.log"
    log = logging.getLogger("cockpit.t")
    log.info("before the move")
    log_file.rename(log_file.with_name("cockpit.log.1"))
    log.info("after the move")
    assert "before the move" in log_file.with_name("cockpit.log.1").read_text()
    assert "after the move" in log_file.read_text() and "before" not in log_file.read_text()


def test_the_logrotate_example_names_the_units_log_file_and_moves_it() -> None:
    example = (ROOT / "deploy" / "logrotate" / "cockpit").read_text()
    directives = [line.split()[0] for line in example.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    unit = (ROOT / "deploy" / "systemd" / "cockpit.service").read_text()
    m = re.search(r"^StateDirectory=(\S+)$", unit, flags=re.M)
    assert m
    state = "/var/lib/" + m.group(1)
    assert directives[0] == f"{state}/{LoggingConfig().file}"  # the engine's default log file under the unit
    assert "copytruncate" not in directives and "create" in directives  # moved, then reopened by name
    assert "rotate = false" in example  # says which engine setting goes with it


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_logrotate_example_rotates_and_the_engine_writes_on(tmp_path: Path, root_logger: logging.Logger) -> None:
    logrotate = shutil.which("logrotate")
    assert logrotate is not None
    state = tmp_path / "state"
    setup_from_settings(LoggingConfig(rotate=False), state, stderr=False)
    log_file = state / "logs" / "cockpit.log"
    log = logging.getLogger("cockpit.t")
    log.info("before logrotate")
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    example = (ROOT / "deploy" / "logrotate" / "cockpit").read_text()
    assert example.count("/var/lib/cockpit/logs/cockpit.log") == 1
    conf = tmp_path / "logrotate.conf"
    conf.write_text(example.replace("/var/lib/cockpit/logs/cockpit.log", str(log_file))
                    .replace("su cockpit cockpit", f"su {user} {group}")
                    .replace("create 0600 cockpit cockpit", f"create 0600 {user} {group}"))
    done = subprocess.run([logrotate, "--force", "--state", str(tmp_path / "logrotate.status"), str(conf)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [rotated] = [p for p in log_file.parent.iterdir() if p.name != "cockpit.log"]
    assert rotated.name.startswith("cockpit.log-")  # dateext; compressed only at the next run (delaycompress)
    assert log_file.read_text() == "" and (log_file.stat().st_mode & 0o777) == 0o600
    log.info("after logrotate")
    assert "before logrotate" in rotated.read_text() and "after logrotate" not in rotated.read_text()
    assert "after logrotate" in log_file.read_text()
