"""The go-live check's backup item: the newest backup is recent, passes its checks, and restores.

"Restores" is tried, not assumed: the backup is copied through SQLite into a temporary
folder (what `cockpit restore` does to the store) and that copy is checked again (integrity,
a cockpit schema, the audit chain). Nothing in the state dir is touched.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from cockpit.preflight.checks import CheckResult
from core.audit.verify import copy_problems
from core.config import Settings
from core.persistence.backup import BACKUPS_DIR, check_file, list_backups

NAME = "backup recent and restorable"


def backup_restores(settings: Settings, db: Path, now: datetime) -> CheckResult:
    backups = list_backups(settings.state_dir / BACKUPS_DIR)
    max_age = timedelta(hours=settings.preflight.backup_max_age_hours)
    if not backups:
        return CheckResult(NAME, False, "no backup in the state dir", "`cockpit backup` (the engine also takes one "
                                                                      "every backup.every_hours and at each close)")
    newest = backups[0]
    age = now - newest.taken_at
    if age > max_age:
        return CheckResult(NAME, False, f"the newest backup {newest.name} is {age.total_seconds() / 3600:.0f} h old "
                                        f"(preflight.backup_max_age_hours {max_age.total_seconds() / 3600:g})",
                           "`cockpit backup`, and check the engine's schedule ([backup] every_hours)")
    problems = check_file(newest.path, (copy_problems,))
    if problems:
        return CheckResult(NAME, False, f"{newest.name} fails its checks: {'; '.join(problems[:2])}",
                           "`cockpit backup` for a good one; keep the damaged one for a look")
    with tempfile.TemporaryDirectory(prefix="cockpit-preflight-") as tmp:
        trial = Path(tmp) / "restored.sqlite"
        try:
            src = sqlite3.connect(f"file:{newest.path}?mode=ro", uri=True)
            dst = sqlite3.connect(trial)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        except sqlite3.Error as exc:
            return CheckResult(NAME, False, f"{newest.name} did not restore: {exc}", "`cockpit backup` for a good one")
        problems = check_file(trial, (copy_problems,))
    if problems:
        return CheckResult(NAME, False, f"{newest.name} restored but the copy fails: {'; '.join(problems[:2])}",
                           "`cockpit backup` for a good one")
    return CheckResult(NAME, True, f"{newest.name}, {age.total_seconds() / 3600:.1f} h old, verified and restored "
                                   "into a scratch copy", "")
