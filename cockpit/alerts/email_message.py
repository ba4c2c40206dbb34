"""One alert as one email: a subject that sorts and filters well, a plain-text body, and an HTML
alternative (the alert's own ``html`` when it has one, the daily summary's; otherwise a
rendering of its title, text and fields through Jinja2 with autoescape, so nothing in an
alert's text can become markup)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from jinja2 import Environment, StrictUndefined

from cockpit.alerts.wording import digest, one_line, state, utc
from core.alerts.model import Alert, Severity

SUBJECT_MAX = 200  # characters; a longer title is cut with an ellipsis
_NAME_WIDTH = 24  # field names are padded to the longest, at most this, in the plain body

COLOURS: dict[Severity, str] = {
    Severity.INFO: "#1f6feb",
    Severity.WARNING: "#9a6700",
    Severity.ERROR: "#bc4c00",
    Severity.CRITICAL: "#cf222e",
}
RESOLVED_COLOUR = "#1a7f37"

# Inline styles only: mail clients drop <style> blocks.
_HTML = """\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{ subject }}</title></head>
<body style="margin:0;padding:16px;background:#ffffff;color:#1f2328;\
font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;">
<div style="max-width:720px;border-left:6px solid {{ colour }};padding:8px 16px;">
<p style="margin:0;font-size:12px;font-weight:bold;letter-spacing:.08em;color:{{ colour }};">\
{{ state }}{% if digest %} &middot; {{ digest }}{% endif %}</p>
<h2 style="margin:4px 0 12px 0;font-size:20px;">{{ title }}</h2>
{% if text %}<div style="white-space:pre-wrap;font-size:14px;line-height:1.45;">{{ text }}</div>
{% endif %}{% if fields %}<table style="border-collapse:collapse;margin-top:12px;font-size:14px;">
{% for name, value in fields %}<tr>\
<th style="text-align:left;vertical-align:top;white-space:nowrap;padding:4px 16px 4px 0;\
color:#57606a;font-weight:normal;">{{ name }}</th>\
<td style="padding:4px 0;white-space:pre-wrap;">{{ value }}</td></tr>
{% endfor %}</table>
{% endif %}<p style="margin-top:16px;font-size:12px;color:#57606a;">\
{{ kind }} &middot; {{ severity }} &middot; {{ at }}</p>
</div></body></html>
"""

_env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
_template = _env.from_string(_HTML)


def subject_of(alert: Alert) -> str:
    """``[cockpit] CRITICAL broker.disconnected: IB Gateway disconnected (x37 in 5 min)``."""
    tail = digest(alert)
    title = f"{alert.title} ({tail})" if tail else alert.title
    return one_line(f"[cockpit] {state(alert)} {alert.kind}: {title}", SUBJECT_MAX)


def _stamp(alert: Alert) -> str:
    return f"{utc(alert.at):%Y-%m-%d %H:%M:%S} UTC"


def plain_body(alert: Alert) -> str:
    """The text part: heading, text, the fields aligned in two columns, and where it came from."""
    tail = digest(alert)
    heading = f"{state(alert)}: {' '.join(alert.title.split())}" + (f" ({tail})" if tail else "")
    parts = [heading]
    if alert.text.strip():
        parts.append(alert.text.strip())
    if alert.fields:
        width = min(_NAME_WIDTH, max(len(n) for n, _ in alert.fields))
        rows = []
        for name, value in alert.fields:
            lines = value.splitlines() or [""]
            rows.append(f"  {name:<{width}}  {lines[0]}")
            rows.extend(f"  {'':<{width}}  {line}" for line in lines[1:])
        parts.append("\n".join(rows))
    parts.append(f"-- \ncockpit: {alert.kind}, {alert.severity}, {_stamp(alert)}, key {alert.key}")
    return "\n\n".join(parts) + "\n"


def html_body(alert: Alert) -> str:
    """The HTML part: ``alert.html`` as given, else the escaped rendering of the alert."""
    if alert.html is not None:
        return alert.html
    tail = digest(alert)
    return _template.render(
        subject=subject_of(alert),
        colour=RESOLVED_COLOUR if alert.resolved else COLOURS.get(alert.severity, COLOURS[Severity.ERROR]),
        state=state(alert),
        digest=tail,
        title=" ".join(alert.title.split()),
        text=alert.text.strip(),
        fields=list(alert.fields),
        kind=alert.kind,
        severity=str(alert.severity),
        at=_stamp(alert),
    )


def build_message(alert: Alert, *, sender: str, to: list[str], now: datetime | None = None) -> EmailMessage:
    """The whole message: headers (with ``Auto-Submitted`` so auto-responders stay quiet, and
    ``X-Cockpit-*`` for mail filters), a plain part, and the HTML alternative."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject_of(alert)
    message["Date"] = format_datetime(now or datetime.now(timezone.utc))
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "cockpit.invalid"
    message["Message-ID"] = make_msgid("cockpit", domain=domain)  # a domain given: no DNS lookup
    message["Auto-Submitted"] = "auto-generated"
    message["X-Cockpit-Kind"] = one_line(alert.kind, 200)
    message["X-Cockpit-Severity"] = "resolved" if alert.resolved else str(alert.severity)
    message.set_content(plain_body(alert))
    message.add_alternative(html_body(alert), subtype="html")
    return message
