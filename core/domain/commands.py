"""Operator commands as typed objects, and the plan each one shows before it runs.

A command says what the operator asked and who asked (``actor``). The handler computes its
``Plan`` from current state: ``effect`` is exactly what executing it now would change (the
orders it cancels, the positions it closes, the value it sets), ``lines`` are the words a
confirm prompt shows. A command sent with the plan that was shown runs only if a fresh plan
has the same effect; otherwise the handler refuses with the new plan (``PlanChanged``) and the
operator is asked again. Display-only figures (prices, notionals) are kept out of ``effect``
so that a moving quote does not invalidate a confirm.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Command:
    actor: str
    reason: str | None = None

    @property
    def name(self) -> str:
        return _NAMES[type(self)]


@dataclass(frozen=True, slots=True)
class Halt(Command):
    pass


@dataclass(frozen=True, slots=True)
class Resume(Command):
    pass


@dataclass(frozen=True, slots=True)
class CancelAll(Command):
    pass


@dataclass(frozen=True, slots=True)
class Flatten(Command):
    symbol: str | None = None  # None: every position, and trading HALTED


@dataclass(frozen=True, slots=True)
class SetLimit(Command):
    key: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class SetAllocation(Command):
    """A strategy's capital allocation: ``value`` money ("50000"), a percentage of the equity at
    start ("25%"), or "none" (no allocation: not limited by one)."""

    strategy: str = ""
    value: str = ""


@dataclass(frozen=True, slots=True)
class SetStrategy(Command):
    strategy: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class OverridePosition(Command):
    symbol: str = ""
    qty: str | Decimal = "0"
    avg_cost: str | Decimal = "0"
    new_symbol: bool = False  # the operator knows the engine does not trade this symbol


@dataclass(frozen=True, slots=True)
class ManualOrder(Command):
    side: str = ""
    symbol: str = ""
    qty: str | Decimal = "0"
    limit: str | Decimal | None = None


@dataclass(frozen=True, slots=True)
class ResolveBreak(Command):
    symbol: str = ""
    action: str = ""


@dataclass(frozen=True, slots=True)
class Reconcile(Command):
    pass


@dataclass(frozen=True, slots=True)
class ConfirmPresence(Command):
    pass


@dataclass(frozen=True, slots=True)
class Backup(Command):
    """Back the store up now (into STATE/backups, checked, then rotated)."""


_NAMES: dict[type[Command], str] = {
    Halt: "halt", Resume: "resume", CancelAll: "cancel_all", Flatten: "flatten", SetLimit: "risk_set",
    SetStrategy: "strategy", OverridePosition: "position_set", ManualOrder: "order", ResolveBreak: "resolve",
    Reconcile: "reconcile", ConfirmPresence: "confirm", SetAllocation: "allocation_set", Backup: "backup",
}


@dataclass(frozen=True, slots=True)
class Plan:
    """What a command will do if it runs now; ``effect`` is compared, ``lines`` are shown."""

    command: str
    effect: dict[str, Any]
    lines: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)  # display-only figures, never compared

    @property
    def fingerprint(self) -> str:
        canon = json.dumps(self.effect, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(f"{self.command}:{canon}".encode()).hexdigest()[:16]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def as_dict(self) -> dict[str, Any]:
        return {"command": self.command, "effect": self.effect, "lines": list(self.lines), "info": self.info,
                "fingerprint": self.fingerprint}


class CommandRefused(Exception):
    """A command that cannot run as asked; the message says why and what to do."""


class PlanChanged(CommandRefused):
    """The state moved since the plan was shown: ``plan`` is what the command would do now."""

    def __init__(self, plan: Plan) -> None:
        super().__init__("the plan changed since it was shown; confirm the new plan:\n" + plan.text)
        self.plan = plan


@dataclass(frozen=True, slots=True)
class CommandResult:
    message: str
    data: dict[str, Any] = field(default_factory=dict)
