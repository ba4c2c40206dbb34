"""The network sinks the config turns on: Discord and email. The router's factory calls this
and adds the TUI pane and the log; a section with no settings gives no sink."""

from __future__ import annotations

from typing import Protocol

from cockpit.alerts.discord import DiscordSink
from cockpit.alerts.email import EmailSink
from core.alerts.sink import Sink
from core.config.alerts_sinks import DiscordConfig, EmailConfig


class SinksConfig(Protocol):
    """What ``build_sinks`` reads of ``[alerts]``: ``AlertsSinksConfig`` or the full section."""

    @property
    def discord(self) -> DiscordConfig: ...

    @property
    def email(self) -> EmailConfig: ...


def build_sinks(alerts_config: SinksConfig) -> list[Sink]:
    """The configured network sinks, named ``discord`` and ``email``, in that order. Building one
    opens nothing (the first ``send`` connects); the caller closes them with ``close()``."""
    sinks: list[Sink] = []
    if alerts_config.discord.configured:
        sinks.append(DiscordSink.from_config(alerts_config.discord))
    if alerts_config.email.configured:
        sinks.append(EmailSink.from_config(alerts_config.email))
    return sinks
