"""deploy/systemd: both units pass `systemd-analyze verify` (on copies in tmp whose ExecStart is
this venv's real cockpit), and say what the design needs: notify + watchdog + a start limit for
the engine, OnFailure= into the emergency flatten with exactly `cockpit flatten --all --direct
--yes`, the same user, state dir, config and secrets for both, and the hardening options."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_files import COCKPIT_BIN, CONFIG_PATH, STATE_DIR, SYSTEMD, exec_start, one, unit

UNITS = ("cockpit.service", "cockpit-emergency.service")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet": "",
    "SystemCallFilter": "@system-service",
}


def venv_cockpit() -> Path:
    """The real `cockpit` entry point of the venv running the tests (pip install -e puts it there)."""
    found = shutil.which("cockpit", path=str(Path(sys.executable).parent))
    assert found, f"no cockpit script beside {sys.executable}: install the project into this venv (pip install -e .)"
    return Path(found)


def verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, "verify", *map(str, paths)], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    cockpit = venv_cockpit()
    copies = []
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        assert COCKPIT_BIN in text
        copy = tmp_path / name
        copy.write_text(text.replace(COCKPIT_BIN, str(cockpit)))
        copies.append(copy)
    result = verify(copies)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result

    # The check is real: a misspelt key and a missing binary are both reported.
    broken = tmp_path / "broken" / "cockpit.service"
    broken.parent.mkdir()
    broken.write_text(copies[0].read_text().replace("ProtectSystem=", "ProtectSytem=")
                      .replace(str(cockpit), str(tmp_path / "no-such-cockpit")))
    said = verify([broken])
    assert "Unknown key" in said.stderr and "ProtectSytem" in said.stderr, said
    assert "no-such-cockpit" in said.stderr and said.returncode != 0, said


def test_engine_unit_is_notify_with_watchdog_restart_and_start_limit() -> None:
    u = unit("cockpit.service")
    s = u["Service"]
    assert one(u, "Service", "Type") == "notify" and one(u, "Service", "NotifyAccess") == "main"
    assert int(one(u, "Service", "WatchdogSec")) >= 10  # the engine pings at half of it (cockpit/systemd_notify.py)
    assert one(u, "Service", "Restart") == "on-failure" and int(one(u, "Service", "RestartSec")) > 0
    assert int(one(u, "Unit", "StartLimitBurst")) >= 2 and one(u, "Unit", "StartLimitIntervalSec")
    assert one(u, "Unit", "OnFailure") == "cockpit-emergency.service"
    assert exec_start("cockpit.service") == [COCKPIT_BIN, "--no-ui", "--config", CONFIG_PATH, "--state-dir", STATE_DIR]
    assert one(u, "Install", "WantedBy") == "multi-user.target"
    assert "TimeoutStopSec" in s  # a stop flushes the store: it is given its time


def test_emergency_unit_runs_exactly_the_direct_flatten_after_stopping_the_engine() -> None:
    u = unit("cockpit-emergency.service")
    argv = exec_start("cockpit-emergency.service")
    assert argv[:5] == [COCKPIT_BIN, "flatten", "--all", "--direct", "--yes"]
    assert argv[5:] == ["--config", CONFIG_PATH, "--state-dir", STATE_DIR]
    assert one(u, "Service", "Type") == "oneshot"
    assert "OnFailure" not in u["Unit"]  # no chain of failure handlers
    assert one(u, "Unit", "Conflicts") == "cockpit.service"  # a restarting engine never trades against it
    assert "cockpit.service" in one(u, "Unit", "After").split()
    assert "Install" not in u  # started only by OnFailure= (or by hand), never at boot


@pytest.mark.parametrize("name", UNITS)
def test_both_units_share_user_state_config_secrets_and_hardening(name: str) -> None:
    u = unit(name)
    for key, value in {"User": "cockpit", "Group": "cockpit", "StateDirectory": "cockpit",
                       "StateDirectoryMode": "0700", "WorkingDirectory": STATE_DIR, "UMask": "0077",
                       "EnvironmentFile": "-/etc/cockpit/cockpit.env", **HARDENING}.items():
        assert one(u, "Service", key) == value, f"{name}: [Service] {key}"
    assert STATE_DIR == "/var/lib/" + one(u, "Service", "StateDirectory")  # what --state-dir names
