"""The email sink against a real SMTP server (aiosmtpd's Controller on an ephemeral loopback port):
real mail is received and parsed (subject, plain and HTML parts), logins go through AUTH over
STARTTLS and implicit TLS with a throwaway self-signed certificate (made by the openssl CLI in
a temp dir), and each failure has its kind: a refused recipient or login is permanent, a
greylisting 4xx, a server that is down or never greets is retryable. The password never shows."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from cockpit.alerts.email import EmailSink
from cockpit.alerts.email_message import subject_of
from cockpit.alerts.network_sinks import build_sinks
from core.alerts.model import Alert, Severity
from core.alerts.sink import SinkError
from core.config import ConfigError, load_config, validate_config
from core.config.alerts_sinks import EmailConfig

PASSWORD = "s3cret-Pa55word-for-the-relay"
USER = "cockpit-bot"
SENDER = "Cockpit <cockpit@example.org>"
TO = ["trader@example.org", "desk@example.net"]
AT = datetime(2024, 3, 8, 14, 30, 5, tzinfo=timezone.utc)

# aiosmtpd warns when a test server takes AUTH without TLS (tls = "none" is tested on purpose)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


# --- a real SMTP server ------------------------------------------------------------------------

class Inbox:
    """aiosmtpd's handler: keeps every message; refuses some recipients the way real servers do."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 <nobody@example.org>: no such user"
        if address.startswith("grey@"):
            return "450 4.2.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def message(self, i: int = -1) -> email.message.EmailMessage:
        return email.message_from_bytes(self.envelopes[i].original_content or self.envelopes[i].content,
                                        policy=email.policy.default)


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and \
        auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


class EphemeralController(Controller):
    """aiosmtpd's Controller bound to port 0: it learns the port the OS chose before its self-test."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start a Controller with the given options; every one started is stopped at teardown."""
    started: list[EphemeralController] = []

    def start(**kwargs: Any) -> tuple[EphemeralController, Inbox]:
        inbox = Inbox()
        controller = EphemeralController(inbox, hostname="127.0.0.1", port=0, **kwargs)
        controller.start()
        started.append(controller)
        return controller, inbox

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI to make a throwaway certificate")
    folder = tmp_path_factory.mktemp("cert")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """Trusts exactly the throwaway certificate (and verifies it, host name included)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


def alert(**kw: Any) -> Alert:
    base: dict[str, Any] = dict(
        kind="broker.disconnected", severity=Severity.CRITICAL, title="IB Gateway disconnected",
        text="The IB session dropped; new orders are held until it is back.", key="broker.disconnected",
        at=AT, fields=(("broker", "ibkr"), ("retries", "3")))
    base.update(kw)
    return Alert(**base)


def sink_for(controller: Controller, **kw: Any) -> EmailSink:
    options: dict[str, Any] = dict(tls="none", sender=SENDER, to=list(TO), timeout_seconds=5.0)
    options.update(kw)
    return EmailSink("127.0.0.1", controller.port, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- real mail ---------------------------------------------------------------------------------

async def test_a_mail_with_subject_plain_and_html_parts(smtp_server: Any) -> None:
    controller, inbox = smtp_server()
    await sink_for(controller).send(alert())

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "cockpit@example.org"
    assert envelope.rcpt_tos == TO
    msg = inbox.message()
    assert msg["Subject"] == "[cockpit] CRITICAL broker.disconnected: IB Gateway disconnected"
    assert msg["From"] == SENDER and msg["To"] == ", ".join(TO)
    assert msg["Auto-Submitted"] == "auto-generated" and msg["X-Cockpit-Severity"] == "critical"
    assert msg["Message-ID"].endswith("@example.org>")
    plain = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain.startswith("CRITICAL: IB Gateway disconnected\n\nThe IB session dropped;")
    assert "  broker   ibkr\n  retries  3\n" in plain
    assert "2024-03-08 14:30:05 UTC" in plain
    html = msg.get_body(("html",)).get_content()
    assert "<h2" in html and "IB Gateway disconnected" in html and "<th" in html and ">ibkr</td>" in html


async def test_the_alerts_own_html_is_the_html_part(smtp_server: Any) -> None:
    controller, inbox = smtp_server()
    summary = "<html><body><h1>Daily summary 2024-03-08</h1><table><tr><td>net</td><td>+1,234.56</td></tr></table>" \
              "</body></html>"
    await sink_for(controller).send(alert(kind="daily.summary", severity=Severity.INFO, title="Daily P&L 2024-03-08",
                                          text="Net +1,234.56", html=summary))
    msg = inbox.message()
    assert msg["Subject"] == "[cockpit] INFO daily.summary: Daily P&L 2024-03-08"
    assert msg.get_body(("html",)).get_content().strip() == summary
    assert "Net +1,234.56" in msg.get_body(("plain",)).get_content()


async def test_html_rendering_escapes_the_alerts_text(smtp_server: Any) -> None:
    controller, inbox = smtp_server()
    await sink_for(controller).send(alert(title="<script>alert(1)</script>", text="a < b & c",
                                          fields=(("<b>", "<img src=x onerror=y>"),)))
    html = inbox.message().get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "a &lt; b &amp; c" in html


async def test_digest_and_resolved_in_the_subject(smtp_server: Any) -> None:
    controller, inbox = smtp_server()
    sink = sink_for(controller)
    await sink.send(alert(severity=Severity.WARNING, kind="feed.stale", title="AAPL quotes stale", count=37,
                          window_seconds=300))
    await sink.send(alert(resolved=True, title="IB Gateway back"))
    assert inbox.message(0)["Subject"] == "[cockpit] WARNING feed.stale: AAPL quotes stale (x37 in 5 min)"
    assert inbox.message(1)["Subject"] == "[cockpit] RESOLVED broker.disconnected: IB Gateway back"
    assert inbox.message(1)["X-Cockpit-Severity"] == "resolved"


def test_a_subject_is_one_bounded_line() -> None:
    subject = subject_of(alert(title="line one\nline two\r\n" + "x" * 500))
    assert "\n" not in subject and "\r" not in subject and len(subject) == 200 and subject.endswith("\u2026")


# --- login and TLS -----------------------------------------------------------------------------

async def test_login_over_starttls(smtp_server: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    controller, inbox = smtp_server(tls_context=server_tls, require_starttls=True, authenticator=authenticator,
                                    auth_required=True)
    sink = sink_for(controller, tls="starttls", username=USER, password=SecretStr(PASSWORD), tls_context=client_tls)
    await sink.send(alert())
    assert len(inbox.envelopes) == 1


async def test_login_over_implicit_tls(smtp_server: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext) -> None:
    # aiosmtpd counts only STARTTLS as TLS for AUTH (its own limitation): this session is TLS from the first byte
    controller, inbox = smtp_server(ssl_context=server_tls, authenticator=authenticator, auth_required=True,
                                    auth_require_tls=False)
    sink = sink_for(controller, tls="tls", username=USER, password=PASSWORD, tls_context=client_tls)
    await sink.send(alert())
    assert len(inbox.envelopes) == 1


async def test_a_wrong_password_is_permanent_and_never_shown(
    smtp_server: Any, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    controller, inbox = smtp_server(tls_context=server_tls, require_starttls=True, authenticator=authenticator,
                                    auth_required=True)
    wrong = "not-the-" + PASSWORD
    sink = sink_for(controller, tls="starttls", username=USER, password=SecretStr(wrong), tls_context=client_tls)
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert err.value.permanent and "login refused" in err.value.reason and "535" in err.value.reason
    assert inbox.envelopes == []
    encoded = base64.b64encode(f"\0{USER}\0{wrong}".encode()).decode()
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]  # not the server's own log
    for text in [str(err.value), repr(sink), *ours]:
        assert wrong not in text and encoded not in text


async def test_starttls_is_required_never_a_fallback_to_plain_text(smtp_server: Any) -> None:
    controller, inbox = smtp_server(authenticator=authenticator, auth_require_tls=False)  # no STARTTLS offered
    sink = sink_for(controller, tls="starttls", username=USER, password=PASSWORD)
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert err.value.permanent and "STARTTLS" in err.value.reason and inbox.envelopes == []


async def test_an_untrusted_certificate_is_permanent(smtp_server: Any, server_tls: ssl.SSLContext) -> None:
    controller, inbox = smtp_server(ssl_context=server_tls)
    sink = sink_for(controller, tls="tls")  # the system's CAs: the self-signed certificate is not among them
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert err.value.permanent and "not trusted" in err.value.reason and inbox.envelopes == []


async def test_login_without_tls_when_the_operator_chose_none(smtp_server: Any) -> None:
    controller, inbox = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    await sink_for(controller, username=USER, password=PASSWORD).send(alert())
    assert len(inbox.envelopes) == 1


# --- failures and their kinds ------------------------------------------------------------------

async def test_a_refused_recipient_is_permanent(smtp_server: Any) -> None:
    controller, inbox = smtp_server()
    with pytest.raises(SinkError) as err:
        await sink_for(controller, to=["nobody@example.org"]).send(alert())
    assert err.value.permanent
    assert err.value.reason == "email: recipient refused: nobody@example.org (550 5.1.1 <nobody@example.org>: no such user)"
    assert inbox.envelopes == []


async def test_a_greylisted_recipient_is_retryable(smtp_server: Any) -> None:
    controller, _ = smtp_server()
    with pytest.raises(SinkError) as err:
        await sink_for(controller, to=["grey@example.org"]).send(alert())
    assert not err.value.permanent and "450" in err.value.reason


async def test_some_recipients_refused_is_delivered_with_a_warning(smtp_server: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    controller, inbox = smtp_server()
    caplog.set_level(logging.WARNING, logger="cockpit.alerts.email")
    await sink_for(controller, to=["trader@example.org", "nobody@example.org"]).send(alert())
    assert inbox.envelopes[0].rcpt_tos == ["trader@example.org"]
    [record] = [r for r in caplog.records if r.name == "cockpit.alerts.email"]
    assert "refused nobody@example.org (550" in record.getMessage()


async def test_a_server_that_is_down_is_retryable() -> None:
    port = free_port()
    sink = EmailSink("127.0.0.1", port, tls="none", sender=SENDER, to=TO, timeout_seconds=2.0)
    with pytest.raises(SinkError) as err:
        await sink.send(alert())
    assert not err.value.permanent and err.value.reason.startswith(f"email: cannot connect to 127.0.0.1:{port} (")


async def test_a_server_that_never_greets_times_out_quickly_and_is_retryable() -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = EmailSink("127.0.0.1", port, tls="none", sender=SENDER, to=TO, timeout_seconds=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(SinkError) as err:
            await sink.send(alert())
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 2.0
    assert not err.value.permanent and "timed out" in err.value.reason


# --- the config names --------------------------------------------------------------------------

def test_email_config_validation(clean_env: dict[str, str]) -> None:
    assert not EmailConfig().configured
    ok = EmailConfig(host="smtp.example.org", sender=SENDER, to=TO)
    assert ok.configured and ok.effective_port == 587
    assert EmailConfig(host="h", tls="tls", sender=SENDER, to=TO).effective_port == 465
    assert EmailConfig(host="h", tls="none", sender=SENDER, to="a@b.org, c@d.org").to == ["a@b.org", "c@d.org"]
    cases = {
        "host is missing": {"sender": SENDER, "to": TO},
        "sender is missing": {"host": "smtp.example.org"},
        "to is empty": {"host": "smtp.example.org", "sender": SENDER},
        "password is missing": {"host": "h", "sender": SENDER, "to": TO, "username": USER},
        "username is missing": {"host": "h", "sender": SENDER, "to": TO, "password": PASSWORD},
        "alerts.email.port": {"host": "h", "sender": SENDER, "to": TO, "port": 70000},
        "alerts.email.tls": {"host": "h", "sender": SENDER, "to": TO, "tls": "ssl"},
        "to[1] = 'desk' is not an email address": {"host": "h", "sender": SENDER, "to": ["a@b.org", "desk"]},
        "sender 'cockpit' is not an email address": {"host": "h", "sender": "cockpit", "to": TO},
        "host must be a host name": {"host": "smtp://mail.example.org", "sender": SENDER, "to": TO},
        "to lists a@b.org twice": {"host": "h", "sender": SENDER, "to": ["a@b.org", "A <a@b.org>"]},
    }
    for expected, section in cases.items():
        with pytest.raises(ConfigError) as err:
            validate_config({"alerts": {"email": section}})
        line = str(err.value)
        assert expected in line and "\n" not in line and "Traceback" not in line, line
        assert "alerts.email" in line and PASSWORD not in line


def test_a_password_is_never_quoted_back(clean_env: dict[str, str]) -> None:
    for bad in ([PASSWORD], {"x": PASSWORD}):
        with pytest.raises(ConfigError) as err:
            validate_config({"alerts": {"email": {"host": "h", "sender": SENDER, "to": TO, "username": USER,
                                                  "password": bad}}})
        assert PASSWORD not in str(err.value) and "alerts.email.password" in str(err.value)
    numeric = EmailConfig(host="h", sender=SENDER, to=TO, username=USER, password=123456)  # TOML: password = 123456
    assert numeric.password is not None and numeric.password.get_secret_value() == "123456"
    assert "123456" not in repr(numeric)
    with pytest.raises(ValueError) as direct:
        EmailConfig(host="h", sender="nope", to=TO, username=USER, password=PASSWORD)
    assert PASSWORD not in str(direct.value)


async def test_env_password_logs_in_through_build_sinks(
    smtp_server: Any, tmp_path: Path, clean_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tls = "none" so that build_sinks' sink (the system's CAs) can log in without the throwaway certificate
    controller, inbox = smtp_server(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    config = tmp_path / "config.toml"
    config.write_text(f'[alerts.email]\nhost = "127.0.0.1"\nport = {controller.port}\ntls = "none"\n'
                      f'username = "{USER}"\nsender = "{SENDER}"\nto = ["trader@example.org"]\ntimeout_seconds = 5\n')
    monkeypatch.setenv("COCKPIT_ALERTS__EMAIL__PASSWORD", PASSWORD)
    settings = load_config(config)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump(mode="json"))
    [sink] = build_sinks(settings.alerts)
    assert sink.name == "email"
    await sink.send(alert())
    await sink.close()
    assert inbox.envelopes[0].rcpt_tos == ["trader@example.org"]

    monkeypatch.delenv("COCKPIT_ALERTS__EMAIL__PASSWORD")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert "password is missing" in str(err.value)
