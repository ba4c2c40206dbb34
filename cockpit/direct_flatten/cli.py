"""``cockpit flatten --all --direct``: the arguments, the confirmation prompt, the printing."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

from cockpit.direct_flatten.alert import Trigger
from cockpit.direct_flatten.audit_sink import default_actor
from cockpit.direct_flatten.emergency import emergency_flatten
from cockpit.direct_flatten.outcome import EXIT_REFUSED
from cockpit.direct_flatten.plan import NotConfirmed, Plan
from core.config import Settings

log = logging.getLogger("cockpit.direct_flatten")


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

    declined = False  # the operator answered no at the prompt: nothing happened, nobody to alert

    def confirm(plan: Plan) -> bool:
        nonlocal declined
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed("refusing without confirmation: no terminal to ask on; pass --yes")
        declined = input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes")
        return not declined

    trigger = Trigger.from_env(os.environ)  # run by systemd's OnFailure=: which unit failed, and how
    reason = args.reason or (trigger.line() if trigger is not None else None)
    actor = default_actor()

    result = asyncio.run(emergency_flatten(settings, actor=actor, out=out, confirm=confirm, client_id=args.client_id,
                                           wait_seconds=args.wait, reason=reason, trigger=trigger,
                                           alert_wanted=lambda: not declined))
    if settings.broker.kind == "ibkr" and not declined and result.exit_code != EXIT_REFUSED:
        # After an emergency the next start is halted (the operator resumes): the latch, if no engine runs.
        from cockpit.halt_latch import latch_next_start

        out(latch_next_start(settings.state_dir, actor, "after the emergency flatten by " + actor
                             + (f" ({reason})" if reason else "")))
    if result.error:
        raise ControlCliError(result.error, result.exit_code)
    return result.exit_code


def _log_to_file(settings: Settings) -> None:
    """ib_async's and the adapter's log lines go to the engine's log file, not over the summary."""
    from cockpit.logs import setup_from_settings, setup_logging

    lcfg = settings.logging
    try:
        setup_from_settings(lcfg, settings.state_dir, stderr=False)
    except OSError:
        setup_logging("ERROR", None)  # no writable log file: only errors, on stderr
