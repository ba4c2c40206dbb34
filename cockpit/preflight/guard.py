"""The start of a live account: the go-live check must pass (or be overridden, audited)."""

from __future__ import annotations

from cockpit.preflight.checks import CheckResult
from cockpit.preflight.cli import evaluate
from core.config import ConfigError, Settings
from core.persistence.store import DB_FILENAME


class PreflightRefused(ConfigError):
    """A live account with a failing go-live check: the engine does not trade (one line, exit 2)."""


def failing_checks(settings: Settings) -> list[CheckResult]:
    return [r for r in evaluate(settings, settings.state_dir / DB_FILENAME) if not r.ok]
