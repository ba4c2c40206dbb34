"""One alert as one Discord embed, always inside Discord's documented limits.

Limits (discord.com/developers/docs/resources/message#embed-object-embed-limits): title 256,
description 4096, at most 25 fields (name 256, value 1024), footer 2048, and 6000 characters
in all of a message's embeds together. Lengths are counted in UTF-16 code units, which is never
less than the count in code points, so the payload is valid whichever Discord counts. Anything
longer is cut with an ellipsis; fields beyond what fits are dropped and counted in a last field
("3 more fields not shown"), so the payload is never refused for its size.
"""

from __future__ import annotations

from typing import Any

from cockpit.alerts.wording import digest, state, utc
from core.alerts.model import Alert, Severity

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
TOTAL_MAX = 6000

ELLIPSIS = "\u2026"
EMPTY = "-"  # Discord refuses an empty or blank field name or value
# Kept free for the description while fields exist, and for the "N more fields" note.
_FIELDS_SHARE = 1000
_NOTE_RESERVE = 48
_MIN_VALUE = 16  # a field cut shorter than this is dropped rather than shown as a stub

COLOURS: dict[Severity, int] = {
    Severity.INFO: 0x3498DB,  # blue
    Severity.WARNING: 0xF1C40F,  # amber
    Severity.ERROR: 0xE67E22,  # orange
    Severity.CRITICAL: 0xE74C3C,  # red
}
RESOLVED_COLOUR = 0x2ECC71  # green


def units(text: str) -> int:
    """Length as Discord's limits count it, at the strictest: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` units, ending in an ellipsis when it was longer."""
    if units(text) <= limit:
        return text
    if limit <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out).rstrip() + ELLIPSIS


def _plain(text: str, fallback: str = EMPTY) -> str:
    return text if text.strip() else fallback


def title_of(alert: Alert) -> str:
    """``CRITICAL · Broker disconnected (x37 in 5 min)``; ``RESOLVED · ...`` once it clears."""
    tail = digest(alert)
    title = f"{state(alert)} \u00b7 {' '.join(alert.title.split()) or alert.kind}"
    return f"{title} ({tail})" if tail else title


def description_of(alert: Alert) -> str:
    tail = digest(alert)
    lines = [alert.text.strip()] if alert.text.strip() else []
    if tail:
        lines.append(f"**{tail}**")
    return "\n\n".join(lines)


def footer_of(alert: Alert) -> str:
    return f"cockpit \u00b7 {alert.severity} \u00b7 {alert.kind}"


def build_embed(alert: Alert) -> dict[str, Any]:
    """The embed for ``alert``: title, description, fields, colour by severity (green when
    resolved), footer and timestamp, cut to fit every limit (module docstring)."""
    title = cut(title_of(alert), TITLE_MAX)
    footer = cut(footer_of(alert), FOOTER_MAX)
    budget = TOTAL_MAX - units(title) - units(footer)

    raw_fields = [(_plain(" ".join(n.split())), _plain(v)) for n, v in alert.fields]
    fields_need = sum(min(units(n), FIELD_NAME_MAX) + min(units(v), FIELD_VALUE_MAX) for n, v in raw_fields)
    description = cut(description_of(alert), min(DESCRIPTION_MAX, budget - min(fields_need, _FIELDS_SHARE)))
    budget -= units(description)

    fields: list[dict[str, Any]] = []
    for i, (raw_name, raw_value) in enumerate(raw_fields):
        last = i == len(raw_fields) - 1
        if len(fields) == FIELDS_MAX - (0 if last else 1):
            break  # the last slot is kept for the note unless this is the last field
        name = cut(raw_name, FIELD_NAME_MAX)
        value = cut(raw_value, FIELD_VALUE_MAX)
        room = budget - (0 if last else _NOTE_RESERVE)
        if units(name) + units(value) > room:
            value = cut(raw_value, room - units(name))
            if units(value) < min(_MIN_VALUE, units(raw_value)):
                break
            fields.append(_field(name, value))
            budget -= units(name) + units(value)
            break
        fields.append(_field(name, value))
        budget -= units(name) + units(value)
    while len(fields) < len(raw_fields):
        left = len(raw_fields) - len(fields)
        note = _field(ELLIPSIS, f"{left} more field{'s' if left > 1 else ''} not shown")
        if units(note["name"]) + units(note["value"]) <= budget or not fields:
            fields.append(note)
            break
        dropped = fields.pop()  # no room for the note: one field fewer (never happens with the reserve)
        budget += units(dropped["name"]) + units(dropped["value"])

    embed: dict[str, Any] = {
        "title": title,
        "color": RESOLVED_COLOUR if alert.resolved else COLOURS.get(alert.severity, COLOURS[Severity.ERROR]),
        "footer": {"text": footer},
        "timestamp": utc(alert.at).isoformat(),
    }
    if description:
        embed["description"] = description
    if fields:
        embed["fields"] = fields
    return embed


def _field(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value, "inline": units(name) + units(value) <= 40}


def build_payload(alert: Alert) -> dict[str, Any]:
    """The webhook's JSON body: one embed, and no mentions ever parsed (an alert's text that
    says ``@everyone`` must not ping a channel)."""
    return {"embeds": [build_embed(alert)], "allowed_mentions": {"parse": []}}


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord's 6000 limit counts in one embed."""
    total = units(embed.get("title", "")) + units(embed.get("description", ""))
    total += units(embed.get("footer", {}).get("text", "")) + units(embed.get("author", {}).get("name", ""))
    total += sum(units(f["name"]) + units(f["value"]) for f in embed.get("fields", []))
    return total
