"""The Discord sink against a real HTTP server on 127.0.0.1 standing in for Discord: what it
posts (checked against Discord's documented limits by a validator written here, from the
docs, not from the sink), what each answer means (delivered, 429 with its wait, 5xx, gone,
hung), and that the webhook URL never shows in an error, a repr or a log record."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from cockpit.alerts.discord import DiscordSink
from cockpit.alerts.network_sinks import build_sinks
from cockpit.alerts.wording import span
from core.alerts.model import Alert, Severity
from core.alerts.sink import SinkError
from core.config import ConfigError, load_config, validate_config
from core.config.alerts_sinks import AlertsSinksConfig, DiscordConfig

TOKEN = "Zx9-TOKEN-aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789_secret-part-of-the-webhook"
WEBHOOK_ID = "112233445566778899"
PATH = f"/api/webhooks/{WEBHOOK_ID}/{TOKEN}"
AT = datetime(2024, 3, 8, 14, 30, 5, tzinfo=timezone.utc)


# --- Discord's documented limits, as an independent validator --------------------------------

def _len16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def discord_problems(payload: dict) -> list[str]:
    """Why Discord would refuse ``payload`` (docs: resources/message, embed limits), or []."""
    problems: list[str] = []
    json.dumps(payload)  # must be JSON
    embeds = payload.get("embeds", [])
    if not 1 <= len(embeds) <= 10:
        problems.append(f"{len(embeds)} embeds")
    if len(payload.get("content", "")) > 2000:
        problems.append("content > 2000")
    total = 0
    for e in embeds:
        checks = [("title", e.get("title", ""), 256), ("description", e.get("description", ""), 4096),
                  ("footer.text", e.get("footer", {}).get("text", ""), 2048),
                  ("author.name", e.get("author", {}).get("name", ""), 256)]
        for where, text, limit in checks:
            if not isinstance(text, str):
                problems.append(f"{where} not text")
            elif max(len(text), _len16(text)) > limit:
                problems.append(f"{where} {len(text)} > {limit}")
            total += _len16(text)
        fields = e.get("fields", [])
        if len(fields) > 25:
            problems.append(f"{len(fields)} fields > 25")
        for f in fields:
            name, value = f.get("name"), f.get("value")
            if not isinstance(name, str) or not name.strip():
                problems.append("field name empty")
            elif _len16(name) > 256:
                problems.append(f"field name {len(name)} > 256")
            if not isinstance(value, str) or not value.strip():
                problems.append("field value empty")
            elif _len16(value) > 1024:
                problems.append(f"field value {len(value)} > 1024")
            if "inline" in f and not isinstance(f["inline"], bool):
                problems.append("inline not a bool")
            total += _len16(name or "") + _len16(value or "")
        colour = e.get("color")
        if colour is not None and not (isinstance(colour, int) and 0 <= colour <= 0xFFFFFF):
            problems.append(f"color {colour!r}")
        if "timestamp" in e:
            datetime.fromisoformat(e["timestamp"])
    if total > 6000:
        problems.append(f"{total} characters > 6000")
    return problems


# --- a stand-in for Discord: a small HTTP/1.1 server on an ephemeral loopback port ------------

@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False  # read the request, never answer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class FakeDiscord:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.seen: list[Seen] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._forever = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}{PATH}"

    def answer(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = line.split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines if ":" in h)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.seen.append(Seen(method, path, headers, body))
                answer = self.answers.pop(0) if self.answers else Answer()
                if answer.hang:
                    await self._forever.wait()
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                writer.write(f"HTTP/1.1 {answer.status} X\r\nContent-Length: {len(answer.body)}\r\n{extra}\r\n"
                             .encode() + answer.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def sink(discord: FakeDiscord) -> AsyncIterator[DiscordSink]:
    s = DiscordSink(SecretStr(discord.url), timeout_seconds=2.0)
    yield s
    await s.close()


def alert(**kw) -> Alert:
    base = dict(kind="broker.disconnected", severity=Severity.CRITICAL, title="IB Gateway disconnected",
                text="The IB session dropped; new orders are held until it is back.", key="broker.disconnected",
                at=AT, fields=(("broker", "ibkr"), ("retries", "3")))
    base.update(kw)
    return Alert(**base)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free now, and nobody listens on it


def json_answer(status: int, body: dict, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode())


# --- what it posts ----------------------------------------------------------------------------

async def test_one_embed_with_title_text_fields_colour_footer_and_time(discord: FakeDiscord, sink: DiscordSink) -> None:
    await sink.send(alert())

    [seen] = discord.seen
    assert seen.method == "POST" and seen.path == PATH  # the real webhook, on the wire only
    assert seen.headers["content-type"] == "application/json"
    payload = seen.json()
    assert discord_problems(payload) == []
    assert payload["allowed_mentions"] == {"parse": []}  # "@everyone" in an alert's text pings nobody
    [embed] = payload["embeds"]
    assert embed["title"] == "CRITICAL \u00b7 IB Gateway disconnected"
    assert embed["description"] == "The IB session dropped; new orders are held until it is back."
    assert [(f["name"], f["value"]) for f in embed["fields"]] == [("broker", "ibkr"), ("retries", "3")]
    assert embed["color"] == 0xE74C3C
    assert embed["footer"]["text"] == "cockpit \u00b7 critical \u00b7 broker.disconnected"
    assert datetime.fromisoformat(embed["timestamp"]) == AT


async def test_each_severity_has_its_colour_and_resolved_is_green(discord: FakeDiscord, sink: DiscordSink) -> None:
    for severity in Severity:
        await sink.send(alert(severity=severity))
    await sink.send(alert(resolved=True, title="IB Gateway back"))
    colours = [s.json()["embeds"][0]["color"] for s in discord.seen]
    assert len(set(colours[:4])) == 4
    assert colours[4] == 0x2ECC71
    assert discord.seen[4].json()["embeds"][0]["title"] == "RESOLVED \u00b7 IB Gateway back"


async def test_a_digest_says_how_many_in_what_window(discord: FakeDiscord, sink: DiscordSink) -> None:
    await sink.send(alert(severity=Severity.WARNING, kind="feed.stale", title="AAPL quotes stale", count=37,
                          window_seconds=300))
    embed = discord.seen[0].json()["embeds"][0]
    assert embed["title"] == "WARNING \u00b7 AAPL quotes stale (x37 in 5 min)"
    assert "x37 in 5 min" in embed["description"]


async def test_a_huge_alert_is_cut_to_discords_limits_and_accepted(discord: FakeDiscord, sink: DiscordSink) -> None:
    fields = tuple((f"field {i} " + "n" * 300, f"{i}:" + "v" * 5000) for i in range(100))
    await sink.send(alert(title="T" * 1000, text="d" * 10_000, fields=fields))

    payload = discord.seen[0].json()
    assert discord_problems(payload) == []
    [embed] = payload["embeds"]
    assert embed["title"].endswith("\u2026") and len(embed["title"]) == 256
    assert embed["description"].endswith("\u2026")
    assert 2 <= len(embed["fields"]) <= 25
    shown = embed["fields"][:-1]
    assert all(f["value"].startswith(f"{i}:") for i, f in enumerate(shown))  # in order, none skipped
    note = embed["fields"][-1]
    assert note["value"] == f"{100 - len(shown)} more fields not shown"
    # the budget is used, not wasted: within a few characters of the 6000 limit
    total = sum(_len16(t) for t in (embed["title"], embed["description"], embed["footer"]["text"]))
    total += sum(_len16(f["name"]) + _len16(f["value"]) for f in embed["fields"])
    assert 5800 <= total <= 6000


async def test_many_small_fields_stop_at_25_with_a_count_of_the_rest(discord: FakeDiscord, sink: DiscordSink) -> None:
    await sink.send(alert(fields=tuple((f"k{i}", str(i)) for i in range(40))))
    fields = discord.seen[0].json()["embeds"][0]["fields"]
    assert len(fields) == 25
    assert [f["value"] for f in fields[:24]] == [str(i) for i in range(24)]
    assert fields[24]["value"] == "16 more fields not shown"

    await sink.send(alert(fields=tuple((f"k{i}", str(i)) for i in range(25))))
    assert [f["value"] for f in discord.seen[1].json()["embeds"][0]["fields"]] == [str(i) for i in range(25)]


async def test_wide_characters_blank_values_and_empty_text_still_valid(discord: FakeDiscord, sink: DiscordSink) -> None:
    emoji = "\U0001F4C8"  # two UTF-16 units each
    await sink.send(alert(title=emoji * 300, text="", fields=(("", ""), ("  ", "x"), ("n", emoji * 2000))))
    payload = discord.seen[0].json()
    assert discord_problems(payload) == []
    embed = payload["embeds"][0]
    assert "description" not in embed
    assert embed["fields"][0]["name"] == "-" and embed["fields"][0]["value"] == "-"


# --- what each answer means -------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "wait"), [
    (json_answer(429, {"message": "You are being rate limited.", "retry_after": 2.5, "global": False}), 2.5),
    (json_answer(429, {"retry_after": 3.0}, {"X-RateLimit-Reset-After": "0.75"}), 0.75),  # the header wins
    (json_answer(429, {"retry_after": 51000}), 51.0),  # milliseconds (discord-api-docs #4722)
    (json_answer(429, {"retry_after": 1e9}), 60.0),
    (json_answer(429, {}, {"X-RateLimit-Reset-After": "3600"}), 60.0),  # absurd: clamped
    (json_answer(429, {"retry_after": "soon"}, {"X-RateLimit-Reset-After": "-4"}), 1.0),
    (Answer(429, {"Retry-After": "7"}, b"<html>slow down</html>"), 7.0),
    (Answer(429), 1.0),
])
async def test_429_is_retryable_with_the_wait_discord_asked_for_clamped(
    discord: FakeDiscord, sink: DiscordSink, answer: Answer, wait: float,
) -> None:
    discord.answer(answer)
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert not err.value.permanent
    assert err.value.retry_after == pytest.approx(wait)
    assert "429" in err.value.reason and err.value.reason.startswith("discord:")


async def test_a_global_rate_limit_says_so(discord: FakeDiscord, sink: DiscordSink) -> None:
    discord.answer(json_answer(429, {"retry_after": 1.5, "global": True}))
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert "global" in err.value.reason and err.value.retry_after == 1.5


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retryable(discord: FakeDiscord, sink: DiscordSink, status: int) -> None:
    discord.answer(Answer(status, {}, b"<html>Bad gateway</html>"))
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert not err.value.permanent and err.value.retry_after is None
    assert f"HTTP {status}" in err.value.reason


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_a_webhook_that_is_gone_or_wrong_is_permanent(discord: FakeDiscord, sink: DiscordSink, status: int) -> None:
    discord.answer(json_answer(status, {"message": "Unknown Webhook", "code": 10015}))
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert err.value.permanent
    assert err.value.reason == (f"discord: HTTP {status}: the webhook is gone or the URL is wrong "
                                "(check alerts.discord.webhook_url)")


async def test_a_refused_payload_is_permanent_with_discords_words(discord: FakeDiscord, sink: DiscordSink) -> None:
    discord.answer(json_answer(400, {"message": "Invalid Form Body", "code": 50035, "errors": {}}))
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert err.value.permanent
    assert err.value.reason == "discord: HTTP 400: refused (Discord 50035: Invalid Form Body)"


async def test_a_hung_server_times_out_quickly_and_is_retryable(discord: FakeDiscord) -> None:
    discord.answer(Answer(hang=True))
    sink = DiscordSink(SecretStr(discord.url), timeout_seconds=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(SinkError) as err:
            await sink.send(alert())
    finally:
        await sink.close()
    assert time.monotonic() - started < 2.0
    assert not err.value.permanent
    assert "timed out" in err.value.reason and "0.3 s" in err.value.reason


async def test_a_server_that_is_down_is_retryable() -> None:
    sink = DiscordSink(f"http://127.0.0.1:{free_port()}{PATH}", timeout_seconds=2.0)
    try:
        with pytest.raises(SinkError) as err:
            await sink.send(alert())
    finally:
        await sink.close()
    assert not err.value.permanent
    assert "ConnectError" in err.value.reason


async def test_an_ipv6_loopback_webhook_and_a_closed_sink(sink: DiscordSink) -> None:
    v6 = DiscordSink(f"http://[::1]:{free_port()}{PATH}", timeout_seconds=1.0)
    try:
        with pytest.raises(SinkError) as err:
            await v6.send(alert())  # nobody listens (or no IPv6 here): a network error either way
        assert not err.value.permanent and TOKEN not in err.value.reason
    finally:
        await v6.close()
    await sink.close()
    with pytest.raises(SinkError) as closed:
        await sink.send(alert())
    assert closed.value.permanent and closed.value.reason == "discord: the sink is closed"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (45, "45 s"), (60, "1 min"), (90, "1 min 30 s"), (300, "5 min"), (899, "15 min"), (3599, "1 h"),
    (3600, "1 h"), (5400, "1 h 30 min"), (86399, "1 d"), (86400 * 2, "2 d"),
])
def test_digest_windows_read_as_a_trader_says_them(seconds: float, text: str) -> None:
    assert span(seconds) == text


async def test_the_client_is_reused_across_sends(discord: FakeDiscord, sink: DiscordSink) -> None:
    for _ in range(3):
        await sink.send(alert())
    assert len(discord.seen) == 3
    assert all(s.headers.get("connection", "keep-alive") != "close" for s in discord.seen)


# --- the URL is a secret -----------------------------------------------------------------------

async def test_the_webhook_url_is_in_no_error_repr_or_log_record(
    discord: FakeDiscord, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs every request at INFO, httpcore at DEBUG
    discord.answer(Answer(204), json_answer(429, {"retry_after": 1}), Answer(500), json_answer(404, {"message": PATH}),
                   json_answer(400, {"message": f"bad {discord.url} {TOKEN}"}), Answer(hang=True))
    sink = DiscordSink(SecretStr(discord.url), timeout_seconds=0.3)
    errors: list[SinkError] = []
    try:
        for _ in range(6):
            try:
                await sink.send(alert())
            except SinkError as exc:
                errors.append(exc)
    finally:
        await sink.close()
    down = DiscordSink(f"http://127.0.0.1:{free_port()}{PATH}", timeout_seconds=1.0)
    try:
        with pytest.raises(SinkError) as err:
            await down.send(alert())
        errors.append(err.value)
    finally:
        await down.close()

    assert len(errors) == 6 and len(discord.seen) == 6
    texts = [str(e) for e in errors] + [e.reason for e in errors] + [repr(sink), repr(down)]
    texts += [r.getMessage() for r in caplog.records]
    assert any("HTTP Request: POST" in r.getMessage() for r in caplog.records)  # httpx did log each request
    for text in texts:
        assert TOKEN not in text and WEBHOOK_ID not in text and "/api/webhooks" not in text, text


def test_a_config_error_about_the_url_never_quotes_it(clean_env: dict[str, str]) -> None:
    for url in (f"http://discord.com{PATH}", f"ftp://127.0.0.1{PATH}", f"https://{PATH}", f"{PATH} {TOKEN}"):
        with pytest.raises(ConfigError) as err:
            validate_config({"alerts": {"discord": {"webhook_url": url}}})
        assert TOKEN not in str(err.value) and "webhook_url" in str(err.value)
        with pytest.raises(ConfigError) as err:
            validate_config({}, {"COCKPIT_ALERTS__DISCORD__WEBHOOK_URL": url})
        assert TOKEN not in str(err.value)
    with pytest.raises(ValueError) as direct:
        DiscordConfig(webhook_url=f"http://discord.com{PATH}")  # pydantic's own text hides the input too
    assert TOKEN not in str(direct.value)
    assert TOKEN not in repr(DiscordConfig(webhook_url=f"https://discord.com{PATH}"))


# --- the config names ---------------------------------------------------------------------------

def test_discord_config_https_only_except_loopback_and_blank_is_off() -> None:
    assert not DiscordConfig().configured
    assert not DiscordConfig(webhook_url="  ").configured  # an exported but empty variable
    assert DiscordConfig(webhook_url=f"https://discord.com{PATH}").configured
    for host in ("127.0.0.1:8080", "localhost", "[::1]:9"):
        assert DiscordConfig(webhook_url=f"http://{host}{PATH}").configured
    for bad in (f"http://10.0.0.1{PATH}", f"http://discord.com{PATH}", "discord.com/x", "https://", f"https://h:99999{PATH}"):
        with pytest.raises(ValueError):
            DiscordConfig(webhook_url=bad)
    with pytest.raises(ValueError):
        DiscordConfig(timeout_seconds=0)


async def test_the_env_webhook_url_reaches_discord_through_build_sinks(
    discord: FakeDiscord, tmp_path: Path, clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[alerts.discord]\ntimeout_seconds = 2\n")
    monkeypatch.setenv("COCKPIT_ALERTS__DISCORD__WEBHOOK_URL", discord.url)
    settings = load_config(config)
    assert settings.alerts.discord.webhook_url is not None
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump(mode="json"))
    sinks = build_sinks(settings.alerts)
    assert [s.name for s in sinks] == ["discord"]
    try:
        await sinks[0].send(alert())
    finally:
        for s in sinks:
            await s.close()
    assert discord.seen[0].path == PATH


def test_no_settings_no_sinks() -> None:
    assert build_sinks(AlertsSinksConfig()) == []
