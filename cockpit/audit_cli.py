"""`cockpit audit verify` and `cockpit audit export`: read the audit log, no engine needed.

Both open the store read-only (safe while an engine runs: WAL, one snapshot per command).
Outcomes are exit codes (verify: ``VERIFY_CODES``: 0 intact or empty, 1 tampered, 3 no trail
to check); failures that stop a command from running raise ``AuditCliError`` with a one-line
message and an exit code (2 for bad usage such as an unreadable --since, 1 for an unreadable
store; export: 1 for a missing store too).

Hooking into cockpit/cli.py::

    add_audit_parser(sub, configure=lambda p: _common(p, suppress=True))   # in build_parser
    if command == "audit": return run_audit(args, db_path(_settings(args)))  # in _dispatch
    # ...and turn AuditCliError into CliError(str(exc), exc.code)
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from cockpit.readers import NoState, connect_readonly

# The export formats (core.audit.export.FORMATS; tests/test_reader_config.py keeps them equal): named
# here so that building the parser for `cockpit --help` does not load the audit modules.
FORMATS = ("jsonl", "csv")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NO_TRAIL = 0, 1, 2, 3
VERIFY_CODES = f"""exit codes:
  {EXIT_OK}  the chain is intact, or the trail is empty (no audit rows yet: nothing to check)
  {EXIT_FAIL}  the audit log was tampered with (each problem on its own line), or the store cannot be read
  {EXIT_USAGE}  bad usage or config
  {EXIT_NO_TRAIL}  no audit trail here: no store in the state dir, or a store the audit log was never
     created in (an engine stopped or killed before it got that far); not tampering"""
MAX_PRINTED = 100  # problems printed one per line; beyond that a count

SINCE_FORMS = ("an ISO date (2024-05-01), an ISO date and time (2024-05-01T13:30, naive = UTC, "
               "or with an offset: 2024-05-01T13:30+02:00), or a time back from now (90s, 30m, 2h, 3d, 1w)")
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class AuditCliError(Exception):
    """An expected failure: one line for the operator, with the exit code to use."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``--since``: ISO date or datetime (naive = UTC) or relative "2h"; aware UTC back.

    Relative forms count back from the wall clock (``now``). Rows are selected by ``ts``, their
    wall-clock time (since audit schema v2; the engine's simulated time of a replay is in
    ``engine_ts``). Rows written before v2 carry the engine's time in ``ts``.
    """
    m = _RELATIVE.match(text)
    if m:
        base = now if now is not None else datetime.now(UTC)
        return base - timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        when = datetime.fromisoformat(value)
    except ValueError:
        raise AuditCliError(f"--since {text!r} is not a time: use {SINCE_FORMS}", EXIT_USAGE) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _open(db: Path) -> sqlite3.Connection:
    try:
        return connect_readonly(db)
    except NoState as exc:
        raise AuditCliError(str(exc), EXIT_FAIL) from None
    except sqlite3.Error as exc:
        raise AuditCliError(f"cannot read {db}: {exc}", EXIT_FAIL) from None


def audit_verify(db: Path, out: TextIO, err: TextIO) -> int:
    """Check the chain: "audit: N rows, chain intact ..." and 0, or one line per problem and 1;
    no trail at all is one line and 3, an empty one 0 (see VERIFY_CODES)."""
    if not db.is_file():
        print(f"audit: no audit trail: no cockpit store at {db} (no engine has run on this state dir, "
              "or pass --state-dir DIR)", file=out)
        return EXIT_NO_TRAIL
    from core.audit.verify import check

    conn = _open(db)
    try:
        report = check(conn)
    except sqlite3.Error as exc:
        raise AuditCliError(f"cannot read {db}: {exc} (is it a cockpit state dir?)", EXIT_FAIL) from None
    finally:
        conn.close()
    if report.absent is not None:
        print(f"audit: no audit trail in {db} yet: {report.absent} (not tampering)", file=out)
        return EXIT_NO_TRAIL
    if not report.problems and report.rows == 0:
        print("audit: no audit rows yet: the trail is empty, nothing to check", file=out)
        return EXIT_OK
    if not report.problems:
        print(f"audit: {report.rows} rows, chain intact; head row {report.last_seq} hash {report.last_hash}",
              file=out)
        return EXIT_OK
    for problem in report.problems[:MAX_PRINTED]:
        print(f"audit: {problem.message}", file=out)
    more = len(report.problems) - MAX_PRINTED
    if more > 0:
        print(f"audit: ... and {more} more problems", file=out)
    n = len(report.problems)
    print(f"audit: {report.rows} rows, {n} problem{'s' if n != 1 else ''}: the audit log was tampered with",
          file=err)
    return EXIT_FAIL


def audit_export(db: Path, since: str | None, fmt: str, out: TextIO, err: TextIO | None = None,
                 *, now: datetime | None = None) -> int:
    """Write the rows at or after ``since`` as jsonl or csv to ``out``; exit code back."""
    if fmt not in FORMATS:
        raise AuditCliError(f"--format {fmt!r}: use jsonl or csv", EXIT_USAGE)
    from core.audit.export import export as export_rows
    from core.audit.schema import table_exists

    when = parse_since(since, now) if since is not None else None
    conn = _open(db)
    try:
        if not table_exists(conn, "audit"):
            raise AuditCliError(f"no audit log in {db} yet (no engine with the audit log has run on it)", EXIT_FAIL)
        n = export_rows(conn, when, fmt, out)
    except sqlite3.Error as exc:
        raise AuditCliError(f"cannot read {db}: {exc} (is it a cockpit state dir?)", EXIT_FAIL) from None
    finally:
        conn.close()
    if err is not None:
        print(f"audit: exported {n} row{'s' if n != 1 else ''}", file=err)
    return EXIT_OK


def _since_arg(text: str) -> str:
    try:
        parse_since(text)  # refuse a bad value at parse time; kept as text so "2h" is relative to run time
    except AuditCliError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_audit_parser(
    subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]  # argparse's generic is private
    parents: Sequence[argparse.ArgumentParser] = (),
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Add `audit verify` and `audit export --since WHEN --format jsonl|csv`.

    ``parents`` are given to the two leaf parsers (for common options such as --config);
    ``configure`` is called on each leaf too (e.g. ``lambda p: _common(p, suppress=True)``).
    """
    group = subparsers.add_parser("audit", help="check or export the audit log")
    actions = group.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", parents=list(parents),
                                help="check the hash chain: names any edited, deleted or reordered row",
                                description="Check the audit log's hash chain: names any edited, deleted, "
                                            "reordered or inserted row.",
                                epilog=VERIFY_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    export = actions.add_parser("export", parents=list(parents), help="write audit rows as JSON lines or CSV")
    export.add_argument("--since", metavar="WHEN", default=None, type=_since_arg,
                        help="only rows at or after WHEN: ISO date/time (naive = UTC) or 30m, 2h, 3d, 1w")
    export.add_argument("--format", dest="format", choices=FORMATS, default="jsonl",
                        help="output format (default: jsonl)")
    if configure is not None:
        configure(verify)
        configure(export)


def run_audit(args: argparse.Namespace, db: Path, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Dispatch a parsed `audit ...` command; raises AuditCliError for the caller to print."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if args.audit_command == "verify":
        return audit_verify(db, out, err)
    if args.audit_command == "export":
        return audit_export(db, args.since, args.format, out, err)
    raise AuditCliError(f"unknown audit action {args.audit_command!r}: use verify or export", EXIT_USAGE)
