"""The Discord webhook sink: one embed per alert, one POST per attempt, over one httpx client.

Answers and what they mean for the router (``SinkError``):

- 2xx (Discord answers 204): delivered.
- 429: rate limited; ``retry_after`` from the ``X-RateLimit-Reset-After`` header (seconds,
  preferred: it avoids clock skew), else the JSON body's ``retry_after``, else ``Retry-After``.
  Clamped to 0..60 s: a body value above 60 is taken as milliseconds first (discord-api-docs
  #4722 saw it so), a header value above 60 is cut to 60, a value that is no number (or NaN,
  negative) gives the default 1 s. A longer wait is the router's call, not Discord's.
- 5xx and 408: retryable. 401/403/404: permanent (the webhook was deleted or the URL is wrong).
  Any other 4xx (400: the payload) and a redirect: permanent, retrying the same body cannot help.
- Network errors and timeouts: retryable. A timeout after the request went out may still
  have been delivered; a retry can then post it twice (Discord has no idempotency key).

The webhook URL carries its token, so it is a secret: the client only ever sees a redacted URL
(``https://discord.com/webhook-redacted``) and a small transport swaps in the real one for the
wire, so neither httpx's request log, nor an exception, nor ``repr`` can show it. Errors name
the sink and the status, never the URL (and any text that echoes it is scrubbed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import httpx
from pydantic import SecretStr

from cockpit.alerts.discord_embed import build_payload
from core.alerts.model import Alert
from core.alerts.sink import SinkError
from core.config.alerts_sinks import DiscordConfig

log = logging.getLogger("cockpit.alerts.discord")

RETRY_AFTER_MAX = 60.0  # seconds; see the module docstring
RETRY_AFTER_DEFAULT = 1.0  # a 429 that says nothing usable
_REDACTED_PATH = "/webhook-redacted"
_GONE = (401, 403, 404)


class _SecretUrlTransport(httpx.AsyncBaseTransport):
    """Sends each request to the real webhook URL while the client (and its log) only knows the
    redacted one. The origin is the same, so the Host header and the connection pool agree."""

    def __init__(self, url: SecretStr, inner: httpx.AsyncBaseTransport) -> None:
        self._url = url
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        real = httpx.Request(request.method, httpx.URL(self._url.get_secret_value()), headers=request.headers,
                             stream=request.stream, extensions=request.extensions)
        return await self._inner.handle_async_request(real)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _redacted(url: str) -> str:
    """The webhook's origin with a placeholder path: what the client, its log and its errors see."""
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.netloc.decode('ascii')}{_REDACTED_PATH}"


class DiscordSink:
    """``send`` posts one embed to the webhook and returns once Discord accepted it (module docstring)."""

    def __init__(self, webhook_url: SecretStr | str, *, timeout_seconds: float = 10.0, name: str = "discord") -> None:
        self.name = name
        self._url = webhook_url if isinstance(webhook_url, SecretStr) else SecretStr(webhook_url)
        self._timeout = float(timeout_seconds)
        self._shown = _redacted(self._url.get_secret_value())
        transport = _SecretUrlTransport(self._url, httpx.AsyncHTTPTransport(retries=0))
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            headers={"User-Agent": "cockpit-alerts"},
        )

    @classmethod
    def from_config(cls, config: DiscordConfig, *, name: str = "discord") -> DiscordSink:
        if config.webhook_url is None:
            raise ValueError("alerts.discord.webhook_url is not set: the Discord sink is off")
        return cls(config.webhook_url, timeout_seconds=config.timeout_seconds, name=name)

    def __repr__(self) -> str:
        return f"DiscordSink(name={self.name!r})"

    async def send(self, alert: Alert) -> None:
        if self._client.is_closed:
            raise SinkError(f"{self.name}: the sink is closed", permanent=True)
        payload = build_payload(alert)
        try:
            async with asyncio.timeout(self._timeout):  # one bound for the whole attempt
                response = await self._client.post(self._shown, json=payload)
        except (TimeoutError, httpx.TimeoutException):
            raise SinkError(f"{self.name}: no answer within {self._timeout:g} s (timed out)") from None
        except httpx.HTTPError as exc:
            raise SinkError(f"{self.name}: {self._scrub(_describe(exc))}") from None
        self._check(response)
        log.debug("%s: delivered %s (HTTP %d)", self.name, alert.kind, response.status_code)

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429:
            wait, scope = retry_after(response)
            raise SinkError(f"{self.name}: HTTP 429 rate limited{scope}, retry after {wait:g} s", retry_after=wait)
        if status >= 500 or status == 408:
            raise SinkError(f"{self.name}: HTTP {status} (Discord's side){self._detail(response)}")
        if status in _GONE:
            raise SinkError(f"{self.name}: HTTP {status}: the webhook is gone or the URL is wrong "
                            "(check alerts.discord.webhook_url)", permanent=True)
        raise SinkError(f"{self.name}: HTTP {status}: refused{self._detail(response)}", permanent=True)

    def _detail(self, response: httpx.Response) -> str:
        """Discord's own words for a refusal (``message``, ``code``), one line, short, scrubbed."""
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict) or "message" not in body:
            return ""
        code = f" {body['code']}" if isinstance(body.get("code"), int) else ""
        text = " ".join(str(body["message"]).split())[:200]
        return f" (Discord{code}: {self._scrub(text)})"

    def _scrub(self, text: str) -> str:
        """``text`` with the webhook URL and its path parts (id, token) taken out."""
        url = self._url.get_secret_value()
        text = text.replace(url, "<webhook>")
        path = httpx.URL(url).path
        for part in sorted((p for p in path.split("/") if len(p) >= 8), key=len, reverse=True):
            text = text.replace(part, "<redacted>")
        return text

    async def close(self) -> None:
        await self._client.aclose()


def _describe(exc: httpx.HTTPError) -> str:
    """A network failure in a few words: its kind and the OS's reason, never the request."""
    reason = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


def retry_after(response: httpx.Response) -> tuple[float, str]:
    """How long a 429 asks us to wait, clamped to 0..RETRY_AFTER_MAX, and its scope (``global``)."""
    body: Any = None
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    body = body if isinstance(body, dict) else {}
    scope = " (global)" if body.get("global") is True or response.headers.get("X-RateLimit-Global") == "true" else ""
    header = _number(response.headers.get("X-RateLimit-Reset-After"))
    if header is not None:
        return min(header, RETRY_AFTER_MAX), scope
    in_body = _number(body.get("retry_after"))
    if in_body is not None:
        if in_body > RETRY_AFTER_MAX:
            in_body /= 1000.0  # milliseconds, as seen once (discord-api-docs #4722)
        return min(in_body, RETRY_AFTER_MAX), scope
    standard = _number(response.headers.get("Retry-After"))
    if standard is not None:
        return min(standard, RETRY_AFTER_MAX), scope
    return RETRY_AFTER_DEFAULT, scope


def _number(value: Any) -> float | None:
    """A non-negative finite number of seconds from a header or JSON value, or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None
