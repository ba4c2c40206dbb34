"""Readers for the files in deploy/ that the deployment tests share: systemd units, the
Dockerfile, the README's install section, and the install paths rendered into a test's tmp dir
(the real command with this interpreter, a temp config and a temp state dir)."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
DOCKER = DEPLOY / "docker"
README = ROOT / "README.md"

# The install layout the units, the Dockerfile and the README share.
COCKPIT_BIN = "/opt/cockpit/venv/bin/cockpit"
CONFIG_PATH = "/etc/cockpit/config.toml"
STATE_DIR = "/var/lib/cockpit"
INSTALL_SECTION = "## Install as a service (systemd) or in docker"


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file as section -> key -> values (a key may repeat; comments and blank
    lines dropped). Enough for the units shipped here: no line continuations, no quoting."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        assert not line.endswith("\\"), f"{name}: line continuations are not expected: {line}"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{name}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{name}: not key=value: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(u: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = u[section][key]
    assert len(values) == 1, f"[{section}] {key} is set {len(values)} times"
    return values[0]


def exec_start(name: str) -> list[str]:
    """The unit's ExecStart as argv (no systemd specifiers or variables in ours)."""
    command = one(unit(name), "Service", "ExecStart")
    assert not re.search(r"%|\$", command), f"{name}: ExecStart uses specifiers or variables: {command}"
    return shlex.split(command)


def rendered(argv: list[str], config: Path, state: Path) -> list[str]:
    """``argv`` with the install paths replaced by this test's: this interpreter's cockpit, the
    temp config and the temp state dir. Every install path must be one of the three."""
    out: list[str] = []
    for arg in argv:
        if arg == COCKPIT_BIN:
            out += [sys.executable, "-m", "cockpit"]
        elif arg == CONFIG_PATH:
            out.append(str(config))
        elif arg == STATE_DIR:
            out.append(str(state))
        else:
            assert not arg.startswith("/"), f"an install path the test does not know how to render: {arg}"
            out.append(arg)
    return out


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (DOCKER / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def exec_form(args: str) -> list[str]:
    """A JSON exec-form argument list (``CMD ["a", "b"]``)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), args
    return value


def healthcheck() -> list[str]:
    """The HEALTHCHECK's command (after its --interval and other options)."""
    [args] = instruction("HEALTHCHECK")
    m = re.fullmatch(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])", args)
    assert m, f"HEALTHCHECK is not `[--option=value ...] CMD [...]`: {args}"
    return exec_form(m.group(2))


def install_section() -> str:
    """The README's install section, up to the next section of the same level."""
    text = README.read_text()
    start = text.index(INSTALL_SECTION)
    end = text.find("\n## ", start + len(INSTALL_SECTION))
    return text[start:] if end < 0 else text[start:end]


def shell_lines(markdown: str) -> list[str]:
    """The command lines of the ```sh blocks in ``markdown`` (comments cut, continuations joined)."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S):
        pending = ""
        for raw in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", raw).strip() if not raw.lstrip().startswith("#") else ""
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            line = (pending + line).strip()
            pending = ""
            if line:
                lines.append(line)
    return lines
