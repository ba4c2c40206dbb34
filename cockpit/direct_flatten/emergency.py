"""The emergency flatten as one call: the direct flatten, then its alert.

What `cockpit flatten --all --direct --yes` runs (the systemd unit cockpit-emergency.service)
and what the process watchdog runs when the engine dies or hangs (cockpit/watchdog/): the
same code, so the two cannot drift. A flatten that breaks still ends in a result and an
alert; the alert comes after the flatten, never in its way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from cockpit.direct_flatten.alert import Trigger, announce
from cockpit.direct_flatten.outcome import EXIT_FAIL, DirectFlattenResult
from cockpit.direct_flatten.plan import Plan
from cockpit.direct_flatten.run import flatten_direct
from core.config import Settings

log = logging.getLogger("cockpit.direct_flatten")


def _yes(_plan: Plan) -> bool:
    return True


async def emergency_flatten(settings: Settings, *, actor: str, out: Callable[[str], None],
                            confirm: Callable[[Plan], bool] = _yes, client_id: int | None = None,
                            wait_seconds: float = 30.0, reason: str | None = None, trigger: Trigger | None = None,
                            lock_held: bool = False,
                            alert_wanted: Callable[[], bool] = lambda: True) -> DirectFlattenResult:
    """Flatten at IB Gateway, then alert through the configured sinks (IBKR configs only: the
    paper broker has nothing outside the engine, its refusal is a usage error). ``alert_wanted``
    is asked after the flatten (the CLI: not when the operator answered no)."""
    try:
        result = await flatten_direct(settings, client_id=client_id, confirm=confirm, out=out,
                                      wait_seconds=wait_seconds, reason=reason, actor=actor, lock_held=lock_held)
    except Exception as exc:  # an emergency command that breaks must still say so, in one line and an alert
        log.exception("the direct flatten failed")
        result = DirectFlattenResult(EXIT_FAIL, error=(
            f"the direct flatten failed: {type(exc).__name__}: {exc} (traceback in the log file under "
            f"{settings.state_dir}); check IB Gateway in TWS or run the command again"))
    if settings.broker.kind == "ibkr" and alert_wanted():
        await announce(result, settings, out, actor=actor, trigger=trigger, lock_held=lock_held)
    return result
