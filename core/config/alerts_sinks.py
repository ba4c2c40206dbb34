"""The ``[alerts.discord]`` and ``[alerts.email]`` config sections: where alerts leave the box.

Self-contained sub-models (pydantic only, ``core.config.checks`` at most, never the package's
``__init__``), so the ``[alerts]`` section embeds them as ``discord: DiscordConfig`` and
``email: EmailConfig`` and their keys are the environment names users rely on:
``COCKPIT_ALERTS__DISCORD__WEBHOOK_URL``, ``COCKPIT_ALERTS__EMAIL__PASSWORD`` and the others.

A section with no settings is off (``configured`` is False). A half-configured one refuses to
start with one line naming the missing key. Secrets (the webhook URL, which carries its token,
and the SMTP password) are ``SecretStr``: their repr is ``'**********'``, and no message here
ever quotes them (URL checks run after the fields, so the error's input is the section, which
the loader never prints; ``hide_input_in_errors`` keeps pydantic's own text clean too).
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from core.config.checks import json_list_or_text

__all__ = ["DEFAULT_PORTS", "AlertsSinksConfig", "DiscordConfig", "EmailConfig", "LOOPBACK_HOSTS", "address_of"]

# http:// is allowed only for these hosts: a local stand-in for Discord in tests.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# The usual port for each TLS mode when ``port`` is not given.
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
_MAX_RECIPIENTS = 50

# A plain addr-spec: dot-atom local part, a host name (one label is fine: root@localhost) or [IP].
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_LOCAL}@(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])")
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?|\[?[0-9A-Fa-f:.]+\]?")


def address_of(text: str) -> str | None:
    """The bare address in ``text`` (``a@b.org`` or ``Name <a@b.org>``), or None if it is not one."""
    if not isinstance(text, str) or len(text) > 320:
        return None
    stripped = text.strip()
    name, addr = parseaddr(stripped)
    if not addr or (not name and addr != stripped and f"<{addr}>" != stripped):
        return None
    return addr if _ADDRESS.fullmatch(addr) and len(addr) <= 254 else None


def _secret_text(value: Any) -> Any:
    """Empty means not set (an exported but empty variable); a number is its text (``password = 1234``
    in TOML), so the loader never has a reason to quote a secret back in a type error."""
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, SecretStr) and not value.get_secret_value().strip():
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class _SinkSection(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


class DiscordConfig(_SinkSection):
    """``webhook_url``: the channel's webhook (Server settings > Integrations > Webhooks). It holds
    the webhook's token, so it is a secret: best given as ``COCKPIT_ALERTS__DISCORD__WEBHOOK_URL``.
    ``timeout_seconds`` bounds one delivery attempt (connect, send, answer)."""

    webhook_url: SecretStr | None = None
    timeout_seconds: float = Field(10.0, gt=0, le=120, allow_inf_nan=False)

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _blank_is_off(cls, value: Any) -> Any:
        return _secret_text(value)

    @model_validator(mode="after")
    def _https(self) -> DiscordConfig:
        if self.webhook_url is not None:
            problem = webhook_url_problem(self.webhook_url.get_secret_value())
            if problem is not None:
                raise ValueError(f"webhook_url {problem}")
        return self

    @property
    def configured(self) -> bool:
        """Is the Discord sink on (a webhook URL is set)?"""
        return self.webhook_url is not None


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook URL, in words that never quote it; or None."""
    fix = "copy the webhook URL from the channel's Integrations settings"
    if any(ch.isspace() for ch in url.strip()) or len(url) > 2048:
        return f"is not a URL (spaces or too long): {fix}"
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return f"is not a URL: {fix}"
    if not host:
        return f"has no host: {fix}"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return None  # a local stand-in (tests); never a real webhook
    return f"must start with https:// (http:// only for 127.0.0.1 or localhost): {fix}"


class EmailConfig(_SinkSection):
    """SMTP delivery. ``tls``: ``starttls`` (plain connect, then STARTTLS; port 587 by default),
    ``tls`` (TLS from the first byte; 465) or ``none`` (25; only for a relay on this host).
    ``username`` and ``password`` log in (both or neither; the password best given as
    ``COCKPIT_ALERTS__EMAIL__PASSWORD``). ``sender`` is the From address, ``to`` the recipients
    (a TOML list, or ``"a@x.org, b@y.org"`` from the environment). ``timeout_seconds`` bounds one
    whole delivery attempt (connect, TLS, login, send)."""

    host: str | None = Field(None, max_length=253)
    port: int | None = Field(None, ge=1, le=65535)
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(None, max_length=256)
    password: SecretStr | None = None
    sender: str | None = Field(None, max_length=320)
    to: Annotated[list[str], NoDecode] = Field(default_factory=list)  # NoDecode: "a@x, b@y" from the env
    timeout_seconds: float = Field(30.0, gt=0, le=300, allow_inf_nan=False)

    @field_validator("tls", mode="before")
    @classmethod
    def _tls_word(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in DEFAULT_PORTS:
                raise ValueError(f"tls must be \"starttls\", \"tls\" or \"none\", not {value[:40]!r}")
        return value

    @field_validator("host", "username", "sender", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("password", mode="before")
    @classmethod
    def _password_text(cls, value: Any) -> Any:
        return _secret_text(value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not _HOST.fullmatch(value):
            raise ValueError(f"host must be a host name or an IP address (no scheme, no port), not {value[:60]!r}")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and address_of(value) is None:
            raise ValueError(f"sender {value[:60]!r} is not an email address (name@example.org)")
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _to_text(cls, value: Any) -> Any:
        # "a@x.org, b@y.org" (or a JSON list) from an environment variable
        if isinstance(value, str):
            found = json_list_or_text("to", value)
            if isinstance(found, list):
                return found
            return [part.strip() for part in found.split(",") if part.strip()]
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if len(value) > _MAX_RECIPIENTS:
            raise ValueError(f"to lists {len(value)} recipients: at most {_MAX_RECIPIENTS}")
        cleaned = [v.strip() for v in value]
        for i, item in enumerate(cleaned):
            if address_of(item) is None:
                raise ValueError(f"to[{i}] = {item[:60]!r} is not an email address (name@example.org)")
        bare = [str(address_of(v)).lower() for v in cleaned]
        dupes = sorted({a for a in bare if bare.count(a) > 1})
        if dupes:
            raise ValueError(f"to lists {dupes[0]} twice")
        return cleaned

    @model_validator(mode="after")
    def _complete(self) -> EmailConfig:
        if not self._anything_set():
            return self
        missing = ("host" if self.host is None else "sender" if self.sender is None else "to" if not self.to else None)
        if missing is not None:
            what = "is empty" if missing == "to" else "is missing"
            raise ValueError(f"{missing} {what}: an email sink needs host, sender and to "
                             "(or remove the [alerts.email] settings to turn it off)")
        if (self.username is None) != (self.password is None):
            have, lack = ("username", "password") if self.password is None else ("password", "username")
            raise ValueError(f"{lack} is missing: {have} is set, and a login needs both "
                             "(the password best as COCKPIT_ALERTS__EMAIL__PASSWORD)")
        return self

    def _anything_set(self) -> bool:
        """Any key away from its default: by value, so a re-validated dump of an off section stays off."""
        defaults = type(self).model_fields
        return any(getattr(self, name) != (f.get_default(call_default_factory=True))
                   for name, f in defaults.items())

    @property
    def configured(self) -> bool:
        """Is the email sink on (host, sender and recipients given)?"""
        return self.host is not None

    @property
    def effective_port(self) -> int:
        """``port``, or the usual one for the TLS mode."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.tls]


class AlertsSinksConfig(_SinkSection):
    """The sinks' part of ``[alerts]``. The full section (routes, rate limits ...) embeds the
    same two fields, or subclasses this; ``build_sinks`` needs only these two."""

    discord: DiscordConfig = Field(default_factory=DiscordConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
