"""``cockpit flatten --all --direct``: the arguments, the confirmation prompt, the printing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from cockpit.direct_flatten.plan import NotConfirmed, Plan
from cockpit.direct_flatten.run import flatten_direct
from core.config import Settings


def run_from_cli(args: argparse.Namespace, load_settings: Callable[[], Settings]) -> int:
    """``cockpit flatten --all --direct [--client-id N] [--yes] [--wait S] [--reason TEXT]``.

    Raises ControlCliError (printed as one line by the CLI) for usage errors and failures.
    """
    from cockpit.control_cli import ControlCliError

    if not args.direct:
        raise ControlCliError("--client-id goes with --direct: `cockpit flatten --all --direct --client-id N`", 2)
    if not args.all:
        raise ControlCliError(f"--direct flattens everything: use `cockpit flatten --all --direct` "
                              f"(one symbol goes through the engine: `cockpit flatten {args.symbol}`)", 2)
    for flag, given in (("--json", args.json), ("--no-wait", args.no_wait)):
        if given:
            raise ControlCliError(f"{flag} is not available with --direct", 2)
    if args.wait <= 0:
        raise ControlCliError("--wait must be a positive number of seconds", 2)
    settings = load_settings()
    if settings.broker.kind == "ibkr":  # (anything else is refused at once, and should leave no log dir behind)
        _log_to_file(settings)

    def out(text: str) -> None:
        print(text, flush=True)

    def confirm(plan: Plan) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed("refusing without confirmation: no terminal to ask on; pass --yes")
        return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")

    result = asyncio.run(flatten_direct(settings, client_id=args.client_id, confirm=confirm, out=out,
                                        wait_seconds=args.wait, reason=args.reason))
    if result.error:
        raise ControlCliError(result.error, result.exit_code)
    return result.exit_code


def _log_to_file(settings: Settings) -> None:
    """ib_async's and the adapter's log lines go to the engine's log file, not over the summary."""
    from cockpit.logs import setup_logging

    lcfg = settings.logging
    try:
        setup_logging(lcfg.level, settings.state_dir / lcfg.file, lcfg.max_bytes, lcfg.backups, stderr=False)
    except OSError:
        setup_logging("ERROR", None)  # no writable log file: only errors, on stderr
