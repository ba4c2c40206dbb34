"""The CLI's side of the control API: HTTP over the engine's Unix socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from cockpit.identity import operator_id


class NoEngine(Exception):
    """No engine answers on the state dir's control socket."""


class ApiRefused(Exception):
    """The engine answered with a 4xx: the message is its reason."""


def actor() -> str:
    """Who is typing: the audit trail records it."""
    return operator_id("cli")


class ControlClient:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._client = httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://cockpit",
                                    timeout=timeout)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        if not self.path.exists():
            raise NoEngine(f"no cockpit engine is running here (no control socket at {self.path}): "
                           "start one with `cockpit` or `cockpit --no-ui`")
        try:
            response = self._client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            raise NoEngine(f"no cockpit engine answers on {self.path} ({exc}): it stopped or was killed; "
                           "start one with `cockpit` or `cockpit --no-ui`") from None
        except httpx.TimeoutException:
            raise NoEngine(f"engine at {self.path} did not answer in {self.timeout:g} s: it may be hung; "
                           "see the runbook (`cockpit flatten --all --direct` needs no engine)") from None
        except httpx.HTTPError as exc:
            raise NoEngine(f"engine at {self.path}: the request failed ({type(exc).__name__}: {exc})") from None
        try:
            data = response.json()
        except ValueError:
            raise NoEngine(f"engine at {self.path} answered HTTP {response.status_code} with something that is "
                           f"not JSON ({response.text[:80]!r}): is that socket a cockpit engine's?") from None
        if response.status_code >= 400:
            detail = data.get("detail", response.text) if isinstance(data, dict) else response.text
            raise ApiRefused(str(detail))
        return data

    def get(self, url: str, **params: Any) -> Any:
        return self._call("GET", url, params={k: v for k, v in params.items() if v is not None})

    def post(self, url: str, **body: Any) -> Any:
        return self._call("POST", url, json={"actor": actor(), **{k: v for k, v in body.items() if v is not None}})
