"""Checks every config value passes before its own validator: plain text, bounded size and depth.

Hostile input does not crash the loader with OSError, RecursionError or a traceback from a
library: a NUL byte or a control character in any text, a text longer than ``MAX_TEXT``, a
list or table with more than ``MAX_ITEMS`` entries or nested deeper than ``MAX_DEPTH``, an
environment value beyond ``MAX_ENV_VALUE`` or nested too deep to decode, a time zone name
that is a path or too long for the file system, a path with a component too long: each is
one line naming the key. The config (``core.config``, through ``core.config.checks``) runs
them; they live in ``core.common`` so that a reader of the state dir (cockpit/reader_config.py)
can run the same checks without importing the config package and pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # zoneinfo is imported by zone(): a reader of the state dir never needs it
    from zoneinfo import ZoneInfo

__all__ = ["MAX_DEPTH", "MAX_ENV_VALUE", "MAX_ITEMS", "MAX_TEXT", "RESERVED_STATE_NAMES", "check_environment",
           "check_path", "first_problem", "state_relative", "text_problem", "zone"]

MAX_DEPTH = 16  # the config's own shape is 4 deep (strategies.x.params.key); JSON parsers recurse
MAX_TEXT = 4096  # characters in one text (PATH_MAX); every real value is far shorter
MAX_ITEMS = 10_000  # entries in one list or table
MAX_ENV_VALUE = 1 << 20  # characters in one COCKPIT_* environment value
_ZONE_MAX = 64  # the longest IANA zone name has 32 characters
_NAME_MAX, _PATH_MAX = 255, 4095  # bytes in one path component, in a whole path (Linux)


def _control(text: str) -> str | None:
    """The first character that does not belong in one line of plain text (tab is allowed)."""
    for ch in text:
        if (ch < " " and ch != "\t") or ch == "\x7f":
            return ch
    return None


def text_problem(text: str) -> str | None:
    """Why ``text`` is not plain one-line text of a sane length, or None."""
    if "\x00" in text:
        return "contains a NUL byte: config values must be plain text"
    if len(text) > MAX_TEXT:
        return f"is {len(text)} characters long: at most {MAX_TEXT}"
    bad = _control(text)
    if bad is not None:
        return f"contains the control character {bad!r}: config values must be plain one-line text"
    return None


def _key(prefix: str, key: object) -> str:
    shown = str(key)
    if text_problem(shown) is not None or not shown or any(c in shown for c in ". []"):
        shown = repr(shown[:40]) + ("..." if len(shown) > 40 else "")
    return f"{prefix}.{shown}" if prefix else shown


def first_problem(data: Any, where: str = "") -> tuple[str, str] | None:
    """The first (dotted key, problem) in a raw config tree, or None; iterative, so any depth is safe."""
    stack: list[tuple[Any, str, int]] = [(data, where, 0)]
    while stack:
        value, at, depth = stack.pop()
        if depth > MAX_DEPTH:
            return at or "(top level)", f"nests more than {MAX_DEPTH} levels deep"
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                return at or "(top level)", problem
        elif isinstance(value, Mapping):
            if len(value) > MAX_ITEMS:
                return at or "(top level)", f"has {len(value)} entries: at most {MAX_ITEMS}"
            for k, v in value.items():
                name = _key(at, k)
                if not isinstance(k, str):
                    continue  # pydantic names a key of the wrong type itself
                problem = text_problem(k)
                if problem is not None:
                    return name, f"the key {problem}"
                stack.append((v, name, depth + 1))
        elif isinstance(value, (list, tuple)):
            if len(value) > MAX_ITEMS:
                return at or "(top level)", f"has {len(value)} items: at most {MAX_ITEMS}"
            stack.extend((v, f"{at}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _depth(text: str) -> int:
    """How deep the JSON-ish ``[``/``{`` nesting of ``text`` goes (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def _shown_name(name: str) -> str:
    """A variable's name for a one-line message: as it is when plain and short, else repr'd and cut."""
    if len(name) <= 80 and text_problem(name) is None:
        return name
    return repr(name[:80]) + ("..." if len(name) > 80 else "")


def check_environment(env: Mapping[str, str], prefix: str, fields: frozenset[str]) -> str | None:
    """Why one of the ``prefix`` variables that feed the config (their first part names one of
    ``fields``) would crash its decoding, naming the variable; or None."""
    plen = len(prefix)
    for name, value in env.items():
        if len(name) <= plen or name[:plen].upper() != prefix:
            continue
        parts = name[plen:].lower().split("__")
        if parts[0] not in fields:
            continue
        key = _shown_name(".".join(parts))
        if len(parts) > MAX_DEPTH:
            return f"environment {_shown_name(name)}: nests {len(parts)} levels deep ({key}): at most {MAX_DEPTH}"
        if len(name) > MAX_TEXT:
            return f"environment {_shown_name(name)}: the name is {len(name)} characters long: at most {MAX_TEXT}"
        name = _shown_name(name)
        if len(value) > MAX_ENV_VALUE:
            return f"environment {name} ({key}): the value is {len(value)} characters long: at most {MAX_ENV_VALUE}"
        if _depth(value) > MAX_DEPTH:
            return f"environment {name} ({key}): the value nests more than {MAX_DEPTH} levels deep"
    return None


def zone(name: str) -> ZoneInfo:
    """The time zone ``name``; ValueError (one line) for anything that is not one.

    ``ZoneInfo`` turns its argument into a file name: a long one raises OSError (name too
    long), a folder IsADirectoryError. Both are a bad value here, not a crash.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("empty time zone: give an IANA name such as 'America/New_York'")
    if len(name) > _ZONE_MAX or text_problem(name) is not None:
        raise ValueError(f"{name[:40]!r}{'...' if len(name) > 40 else ''} ({len(name)} characters) is not a "
                         "time zone name: give an IANA name such as 'America/New_York'")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as 'America/New_York'") from None


def check_path(key: str, value: Path | str) -> None:
    """ValueError naming ``key`` for a path the file system cannot take (too long, NUL byte)."""
    text = str(value)
    if "\x00" in text:
        raise ValueError(f"{key} contains a NUL byte: give a plain path")
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > _PATH_MAX:
        raise ValueError(f"{key} is {size} bytes long: a path has at most {_PATH_MAX}")
    for part in Path(text).parts:
        part_size = len(part.encode("utf-8", "surrogateescape"))
        if part_size > _NAME_MAX:
            raise ValueError(f"{key}: the path component {part[:40]!r}... is {part_size} bytes long: at most {_NAME_MAX}")


# Names inside the state dir that belong to the engine itself: no other path may take them.
# engine.run, watchdog.json and halt-on-start.json: the run record, the watchdog's heartbeat and the
# halt-on-start latch (cockpit/run_record.py, cockpit/watchdog/heartbeat.py, cockpit/halt_latch.py).
RESERVED_STATE_NAMES = frozenset({"cockpit.sqlite", "cockpit.sqlite-wal", "cockpit.sqlite-shm", "engine.lock",
                                  "ibkr_order_ids.json", "engine.run", "watchdog.json", "halt-on-start.json"})


def state_relative(key: str, value: str) -> str:
    """A path that must stay inside the state dir: relative, no ``..``, not empty, no NUL, not
    one of the engine's own files, not too long. Returned normalised; ValueError names the fix."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must name a file inside the state dir, got an empty value")
    if "\x00" in value:
        raise ValueError(f"{key} contains a NUL byte: name a plain file inside the state dir")
    if len(value.encode()) > 200:
        raise ValueError(f"{key} is {len(value.encode())} bytes long: keep it under 200")
    path = Path(value)
    if path.is_absolute() or value.startswith("~"):
        raise ValueError(f"{key} = {value!r} is outside the state dir: give a path relative to it")
    if ".." in path.parts:
        raise ValueError(f"{key} = {value!r} climbs out of the state dir with '..': give a path inside it")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise ValueError(f"{key} = {value!r} is the state dir itself: name a file inside it")
    if parts[0] in RESERVED_STATE_NAMES or parts[-1] in RESERVED_STATE_NAMES:
        raise ValueError(f"{key} = {value!r} is one of the engine's own files: pick another name")
    return str(Path(*parts))
