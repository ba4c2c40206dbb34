"""Builds the alert sinks the config turns on.

``BUILDERS`` maps a sink's name to a function of the settings that returns the sink, or None
when the config leaves it off (a sink with no settings is off). The log sink is always on; the
pane's sink exists only while the cockpit's screen runs (``make_sinks(settings, tui=buffer)``);
Discord and email are on when ``[alerts.discord]`` / ``[alerts.email]`` have settings. Another
sink registers the same way::

    BUILDERS["pager"] = pager_from_settings   # (settings) -> Sink | None; ConfigError if bad

A builder that cannot build from what the config says raises ``ConfigError`` with one line
naming the key. ``extra`` sinks (any object with ``name``, ``send`` and ``close``, e.g. a
test's) are added as given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cockpit.alerts.log_sink import LogSink
from cockpit.alerts.tui_sink import AlertBuffer, TuiSink
from core.alerts.sink import Sink
from core.config import ConfigError, Settings

SinkBuilder = Callable[[Settings], Sink | None]


def _log(_settings: Settings) -> Sink:
    return LogSink()


def _discord(settings: Settings) -> Sink | None:
    if not settings.alerts.discord.configured:
        return None
    from cockpit.alerts.discord import DiscordSink  # httpx only when Discord is on

    return DiscordSink.from_config(settings.alerts.discord)


def _email(settings: Settings) -> Sink | None:
    if not settings.alerts.email.configured:
        return None
    from cockpit.alerts.email import EmailSink  # aiosmtplib only when email is on

    return EmailSink.from_config(settings.alerts.email)


BUILDERS: dict[str, SinkBuilder] = {
    "log": _log,
    "discord": _discord,
    "email": _email,
}


def make_sinks(settings: Settings, *, tui: AlertBuffer | None = None, extra: Sequence[Sink] = ()) -> list[Sink]:
    """Every sink the config turns on (the pane's too when ``tui`` is given), then ``extra``."""
    sinks: list[Sink] = [TuiSink(tui)] if tui is not None else []
    for name, build in BUILDERS.items():
        try:
            sink = build(settings)
        except ValueError as exc:  # a section the config check let through but the sink cannot use
            raise ConfigError(f"alerts.{name}: {exc}") from None
        if sink is not None:
            if sink.name != name:
                raise ConfigError(f"alerts: the {name} builder made a sink named {sink.name!r}")
            sinks.append(sink)
    names = [s.name for s in sinks]
    for sink in extra:
        if sink.name in names:
            raise ConfigError(f"alerts: two sinks are named {sink.name!r}")
        names.append(sink.name)
        sinks.append(sink)
    return sinks

