"""The email sink: one SMTP session per attempt through aiosmtplib (connect, TLS, login, send, quit).

``tls``: ``starttls`` requires the server's STARTTLS (never falls back to plain text),
``tls`` speaks TLS from the first byte, ``none`` sends in the clear (a relay on this host).
Certificates are verified against the system's CAs (or the ``tls_context`` given).

Failures and what they mean for the router (``SinkError``):

- a 5xx reply (recipient, sender or message refused; login refused with 535): permanent;
- a 4xx reply (greylisting, mailbox busy, 454 temporary login failure): retryable;
- the server offers no STARTTLS or no AUTH, or its certificate is not trusted: permanent
  (the config and the server disagree; retrying cannot help);
- cannot connect, disconnected, timed out: retryable.

When some recipients are refused and others accepted the mail was delivered: ``send``
returns, and a warning names the refused ones (a retry would mail the others twice).
The password goes to the server and nowhere else: not in a log, an error or ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Literal

import aiosmtplib
from pydantic import SecretStr

from cockpit.alerts.email_message import build_message
from core.alerts.model import Alert
from core.alerts.sink import SinkError
from core.config.alerts_sinks import DEFAULT_PORTS, EmailConfig, address_of

log = logging.getLogger("cockpit.alerts.email")

TlsMode = Literal["starttls", "tls", "none"]


class EmailSink:
    """``send`` mails one alert to every recipient and returns once the server accepted it."""

    renders_html = True  # the mail's rich part is ``Alert.html``

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: TlsMode = "starttls",
        username: str | None = None,
        password: SecretStr | str | None = None,
        sender: str,
        to: list[str],
        timeout_seconds: float = 30.0,
        name: str = "email",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in DEFAULT_PORTS:
            raise ValueError(f"tls must be 'starttls', 'tls' or 'none', not {tls!r}")
        if not to:
            raise ValueError("an email sink needs at least one recipient")
        if (username is None) != (password is None):
            raise ValueError("an SMTP login needs both a username and a password")
        self.name = name
        self._host = host
        self._port = port if port is not None else DEFAULT_PORTS[tls]
        self._tls: TlsMode = tls
        self._username = username
        self._password = password if isinstance(password, SecretStr) or password is None else SecretStr(password)
        self._sender = sender
        self._to = list(to)
        self._envelope_from = address_of(sender) or sender
        self._envelope_to = [address_of(t) or t for t in to]
        self._timeout = float(timeout_seconds)
        self._tls_context = tls_context

    @classmethod
    def from_config(cls, config: EmailConfig, *, name: str = "email",
                    tls_context: ssl.SSLContext | None = None) -> EmailSink:
        if config.host is None or config.sender is None or not config.to:
            raise ValueError("alerts.email needs host, sender and to: the email sink is off")
        return cls(config.host, config.effective_port, tls=config.tls, username=config.username,
                   password=config.password, sender=config.sender, to=config.to,
                   timeout_seconds=config.timeout_seconds, name=name, tls_context=tls_context)

    def __repr__(self) -> str:
        return f"EmailSink(name={self.name!r}, host={self._host!r}, port={self._port}, tls={self._tls!r})"

    @property
    def where(self) -> str:
        return f"{self._host}:{self._port}"

    async def send(self, alert: Alert) -> None:
        message = build_message(alert, sender=self._sender, to=self._to)
        try:
            async with asyncio.timeout(self._timeout):  # aiosmtplib's timeout is per step; this bounds them all
                refused, _ = await aiosmtplib.send(
                    message,
                    sender=self._envelope_from,
                    recipients=self._envelope_to,
                    hostname=self._host,
                    port=self._port,
                    username=self._username,
                    password=self._password.get_secret_value() if self._password is not None else None,
                    use_tls=self._tls == "tls",
                    start_tls=self._tls == "starttls",
                    timeout=self._timeout,
                    tls_context=self._tls_context,
                )
        except TimeoutError:
            raise SinkError(f"{self.name}: {self.where} did not answer within {self._timeout:g} s (timed out)") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._error(exc) from None
        if refused:
            shown = ", ".join(f"{addr} ({resp.code} {_words(resp.message)})" for addr, resp in sorted(refused.items()))
            log.warning("%s: %s delivered, but the server refused %s", self.name, alert.kind, shown)
        log.debug("%s: delivered %s to %d recipient(s)", self.name, alert.kind, len(self._to) - len(refused))

    def _error(self, exc: BaseException) -> SinkError:
        """One attempt's failure as a SinkError: retryable or permanent (module docstring)."""
        name, where = self.name, self.where
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            shown = ", ".join(f"{r.recipient} ({r.code} {_words(r.message)})" for r in exc.recipients)
            permanent = all(r.code >= 500 for r in exc.recipients)
            return SinkError(self._scrub(f"{name}: recipient refused: {shown}"), permanent=permanent)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return SinkError(self._scrub(f"{name}: login refused by {where} ({exc.code} {_words(exc.message)}): "
                                         "check alerts.email.username and the password"),
                             permanent=not 400 <= exc.code < 500)
        if isinstance(exc, aiosmtplib.SMTPSenderRefused):
            return SinkError(self._scrub(f"{name}: sender {exc.sender} refused ({exc.code} {_words(exc.message)})"),
                             permanent=exc.code >= 500)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return SinkError(self._scrub(f"{name}: {where} answered {exc.code} {_words(exc.message)}"),
                             permanent=exc.code >= 500)
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or _not_offered(exc):
            return SinkError(self._scrub(f"{name}: {where}: {_words(str(exc))} (check alerts.email.tls and port)"),
                             permanent=True)
        if isinstance(exc, aiosmtplib.SMTPTimeoutError):
            return SinkError(f"{name}: {where} timed out ({_words(exc.message)})")
        cert = _cert_problem(exc)
        if cert is not None:
            return SinkError(f"{name}: the certificate of {where} is not trusted ({cert}): check alerts.email.host "
                             "and the server's certificate", permanent=True)
        if isinstance(exc, aiosmtplib.SMTPConnectError):
            cause = exc.__cause__
            why = _words(cause.strerror or str(cause)) if isinstance(cause, OSError) else _words(exc.message)
            return SinkError(self._scrub(f"{name}: cannot connect to {where} ({why})"))
        if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
            return SinkError(self._scrub(f"{name}: {where} closed the connection ({_words(exc.message)})"))
        if isinstance(exc, aiosmtplib.SMTPException):
            return SinkError(self._scrub(f"{name}: {where}: {_words(exc.message)}"))
        return SinkError(self._scrub(f"{name}: cannot reach {where} ({type(exc).__name__}: {_words(str(exc))})"))

    def _scrub(self, text: str) -> str:
        if self._password is not None and self._password.get_secret_value():
            text = text.replace(self._password.get_secret_value(), "**********")
        return text

    async def close(self) -> None:
        """Nothing to close: every attempt opens and ends its own SMTP session."""


def _not_offered(exc: BaseException) -> bool:
    """aiosmtplib says "STARTTLS / AUTH extension (is) not supported" with a plain SMTPException."""
    return type(exc) is aiosmtplib.SMTPException and "not supported" in str(exc)


def _cert_problem(exc: BaseException) -> str | None:
    """The verification failure behind ``exc`` (raised directly or as its cause), or None."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return _words(seen.verify_message or str(seen))
        seen = seen.__cause__ or seen.__context__
    return None


def _words(text: str) -> str:
    """A server's reply or an OS error as one short line."""
    return " ".join(str(text).split())[:200]
