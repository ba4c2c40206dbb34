"""The checks every config value passes first (plain text, bounded size and depth, paths, time
zones): re-exported from ``core.common.input_checks``, where they live so that a reader of the
state dir can run them without importing this package (and pydantic)."""

from __future__ import annotations

from core.common.input_checks import (
    MAX_DEPTH,
    MAX_ENV_VALUE,
    MAX_ITEMS,
    MAX_TEXT,
    check_environment,
    check_path,
    first_problem,
    text_problem,
    zone,
)

__all__ = ["MAX_DEPTH", "MAX_ENV_VALUE", "MAX_ITEMS", "MAX_TEXT", "check_environment", "check_path", "first_problem",
           "text_problem", "zone"]


def json_list_or_text(key: str, text: str) -> list[object] | str:
    """A list value given as text (an environment variable, the cockpit's prompt): a JSON list
    parsed, anything else stripped for the caller to split its own way."""
    text = text.strip()
    if not text.startswith("["):
        return text
    import json

    try:
        found = json.loads(text)
    except ValueError:
        raise ValueError(f"{key}: not a JSON list: {text[:60]!r}") from None
    return found if isinstance(found, list) else text

