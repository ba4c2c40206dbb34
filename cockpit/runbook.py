"""The runbook ships inside the package: ``cockpit/RUNBOOK.md`` (package data), found through
``importlib.resources`` so that a wheel, a plain ``pip install`` (the Dockerfile's) and an
editable checkout all have it. ``docs/RUNBOOK.md`` in the repository is a symbolic link to
this one file: there is no second copy to drift.

``cockpit runbook`` prints it, so an operator inside a container can read it.
"""

from __future__ import annotations

import sys
from importlib import resources
from importlib.resources.abc import Traversable

PACKAGE = "cockpit"
NAME = "RUNBOOK.md"


def locate() -> Traversable:
    """Where the installed runbook is (it may be missing from a broken install: check ``is_file``)."""
    return resources.files(PACKAGE).joinpath(NAME)


def text() -> str:
    return locate().read_text(encoding="utf-8")


def run_runbook(args: object) -> int:
    """``cockpit runbook [--path]``: the text (or where it is), exit 1 if it is not installed."""
    found = locate()
    if not found.is_file():
        print(f"cockpit: the runbook is not installed ({found} is missing): reinstall the package", file=sys.stderr)
        return 1
    if getattr(args, "path", False):
        print(found)
        return 0
    sys.stdout.write(text())
    return 0
