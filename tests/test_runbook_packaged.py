"""The runbook ships with the package: a wheel built from this tree, installed (not editable) into
a throwaway venv in tmp, has cockpit/RUNBOOK.md; `cockpit runbook` there prints it; and the go-live
check's "runbook present" passes there. In the repository, docs/RUNBOOK.md is a link to that one
file, never a second copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import CONFIG, ROOT

pytestmark = pytest.mark.slow

PACKAGED = ROOT / "cockpit" / "RUNBOOK.md"


def test_docs_runbook_is_a_link_to_the_packaged_one() -> None:
    link = ROOT / "docs" / "RUNBOOK.md"
    assert link.is_symlink(), "docs/RUNBOOK.md must stay a link to cockpit/RUNBOOK.md (one source of truth)"
    assert link.resolve() == PACKAGED.resolve()
    from cockpit.runbook import locate

    assert Path(str(locate())).resolve() == PACKAGED.resolve()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv in tmp with the wheel of this tree installed (no deps: those come from this venv's
    site-packages through a .pth line, which does not run this venv's editable-install hooks)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # what the install copies (README, "Install as a service"); the build writes in here, not in ROOT
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "config.toml"):
        shutil.copy(ROOT / name, src / name)
    for name in ("core", "brokers", "cockpit"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp / "dist").glob("cockpit-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                           str(wheel)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "cockpit-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COCKPIT_", "PYTHON"))}
    return subprocess.run([str(venv / "bin" / "cockpit"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_installed_package_has_the_runbook_and_prints_it(installed: Path, tmp_path: Path) -> None:
    where = run(installed, "runbook", "--path", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    path = Path(where.stdout.strip())
    assert path.is_file() and path.is_relative_to(installed) and not path.is_symlink(), path  # the wheel's, not ours
    assert path.read_bytes() == PACKAGED.read_bytes()
    printed = run(installed, "runbook", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == PACKAGED.read_text(), printed.stderr


def test_preflight_finds_the_installed_runbook(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    shutil.copy(CONFIG, config)
    out = run(installed, "preflight", "--json", "--config", str(config), "--state-dir", str(tmp_path / "state"),
              cwd=tmp_path)
    assert "Traceback" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    [check] = [c for c in report["checks"] if c["name"] == "runbook present"]
    assert check["ok"], check
    assert check["detail"].startswith(str(installed)), check  # found in the install, not in this checkout


def test_a_broken_install_without_the_runbook_fails_the_check(installed: Path, tmp_path: Path) -> None:
    """The check is real: the same install with the file taken away FAILs, naming the fix."""
    where = Path(run(installed, "runbook", "--path", cwd=tmp_path).stdout.strip())
    kept = where.read_bytes()
    where.unlink()
    try:
        config = tmp_path / "config.toml"
        shutil.copy(CONFIG, config)
        out = run(installed, "preflight", "--json", "--config", str(config), "--state-dir", str(tmp_path / "state"),
                  cwd=tmp_path)
        [check] = [c for c in json.loads(out.stdout)["checks"] if c["name"] == "runbook present"]
        assert not check["ok"] and "reinstall" in check["fix"], check
        missing = run(installed, "runbook", cwd=tmp_path)
        assert missing.returncode == 1 and missing.stderr.startswith("cockpit: the runbook is not installed")
    finally:
        where.write_bytes(kept)
