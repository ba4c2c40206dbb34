"""IB account ids, masked wherever the cockpit writes them: logs, audit rows, the status line.

An account code (``DU1234567`` paper, ``U1234567`` live) names the customer at IB; logs and
audit exports get pasted into tickets and chats. So the adapter writes an id only through
:func:`mask_account`, and :class:`AccountRedactor`, a ``logging.Filter`` on every handler the
cockpit sets up (``install``), masks every id it knows in each record's final message,
traceback included: that covers ib_async's own lines too, which ``repr`` the account in
positions, portfolio items, orders, executions and account values.

The ids it knows: the configured ``[ibkr] account`` and every one IB's managedAccounts names
(the adapter calls :func:`remember_accounts` as that message is decoded, before any message
that carries an account; the filter also reads ib_async's DEBUG line of that message, which is
logged a moment earlier). An id is masked as a whole token only, never inside a longer word.

How an id is masked: the first 2 and the last 3 characters stay, a star replaces each one in
between (``DU1234567`` -> ``DU****567``, ``U1234567`` -> ``U1***567``), so that an operator can
still tell accounts apart. An id shorter than 8 characters would show 5 of at most 7 that
way: it is starred whole, keeping only its length (``DU123`` -> ``*****``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

__all__ = ["AccountRedactor", "forget_accounts", "install", "mask_account", "redact", "remember_accounts"]

KEEP_HEAD, KEEP_TAIL = 2, 3
MIN_PARTIAL = 8  # shorter ids are starred whole

_lock = threading.Lock()
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
# ib_async.client's DEBUG line of managedAccounts: "<<< 15,1,DU1234567,DU7654321"
_MANAGED_ACCOUNTS_LINE = re.compile(r"^<<< 15,1,(.*)$")


def mask_account(account: str) -> str:
    """``DU1234567`` -> ``DU****567``; shorter than 8 characters: all stars; empty stays empty."""
    n = len(account)
    if n < MIN_PARTIAL:
        return "*" * n
    return account[:KEEP_HEAD] + "*" * (n - KEEP_HEAD - KEEP_TAIL) + account[-KEEP_TAIL:]


def remember_accounts(accounts: Iterable[str]) -> None:
    """From now on, mask these ids (blank ones are ignored) in every log record."""
    global _pattern
    new = {a.strip() for a in accounts if a and a.strip()}
    with _lock:
        if new <= _known:
            return
        _known.update(new)
        alternatives = "|".join(re.escape(a) for a in sorted(_known, key=len, reverse=True))
        _pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


def forget_accounts() -> None:
    """Mask nothing any more (tests that need a clean slate)."""
    global _pattern
    with _lock:
        _known.clear()
        _pattern = None


def redact(text: str) -> str:
    """``text`` with every known account id masked."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(lambda m: mask_account(m.group(0)), text)


class AccountRedactor(logging.Filter):
    """Masks the known account ids in a record's message, arguments and traceback (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact(record)
        except Exception:  # a record whose arguments do not format: its handler reports that itself
            pass
        return True

    @staticmethod
    def _redact(record: logging.LogRecord) -> None:
        if record.name == "ib_async.client" and record.levelno == logging.DEBUG:
            learned = _MANAGED_ACCOUNTS_LINE.match(record.getMessage())
            if learned:
                remember_accounts(learned.group(1).split(","))
        if _pattern is None:
            return
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)


_FILTER = AccountRedactor()


def install(logger: logging.Logger | None = None) -> None:
    """Put the one redactor on every handler of ``logger`` (the root logger by default), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
