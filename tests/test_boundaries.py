"""The operator side reads one read model and sends commands: it never touches engine internals.

import-linter (pyproject.toml) forbids the imports; this test forbids the attribute reads an
import contract cannot see (``engine.oms``, ``engine.gate`` ...), and runs the contracts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_SIDE = [ROOT / "cockpit" / "tui", ROOT / "cockpit" / "control", ROOT / "cockpit" / "control_cli.py",
                 ROOT / "cockpit" / "engine_host.py", ROOT / "cockpit" / "headless.py", ROOT / "cockpit" / "web"]
# ``alerts``: the alert router, to add the pane's sink and send a test alert (no trading state).
ALLOWED = {"controls", "read_model", "bus", "settings", "start", "run", "shutdown", "request_stop", "stopping",
           "snapshot", "alerts"}


def _files() -> list[Path]:
    out: list[Path] = []
    for place in OPERATOR_SIDE:
        out += sorted(place.rglob("*.py")) if place.is_dir() else [place]
    return out


def test_the_operator_side_reads_only_the_read_model_and_the_command_handler() -> None:
    offences = []
    for path in _files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr not in ALLOWED:
                base = node.value
                name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
                if name == "engine":
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: engine.{node.attr}")
    assert offences == []


def test_import_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
