"""Logging: to stderr and to a file in the state dir.

The file is size-rotated by this process (``logging.rotate = true``, the default), or left to
logrotate (``rotate = false``: the handler reopens the file once logrotate has moved it away;
deploy/logrotate/cockpit). Never both: two rotations of one file lose lines.

Under systemd, stderr goes to the journal (``$JOURNAL_STREAM`` names stderr's device and inode):
then each stderr line carries an sd-daemon priority prefix (``<3>`` for an error) and no
timestamp, because the journal keeps its own time and the level, and shows them once. The file
log stays on there too: it keeps timestamps and tracebacks, next to the rest of the state.
"""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import LoggingConfig

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"  # the journal adds time, host, unit and pid itself

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def syslog_priority(levelno: int) -> int:
    """The sd-daemon(3) priority of a logging level: 2 crit, 3 err, 4 warning, 6 info, 7 debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def stderr_is_journal(env: Mapping[str, str] | None = None, stream: IO[Any] | None = None) -> bool:
    """Is ``stream`` (stderr) the journal's stream socket, as ``$JOURNAL_STREAM`` (``dev:inode``) says?

    Set but not matching (a child whose stderr was redirected) is not the journal: systemd.exec(5).
    """
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat((sys.stderr if stream is None else stream).fileno())
    except (OSError, ValueError, AttributeError):  # closed, or no file descriptor (pytest's capture)
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


class _OneLine(logging.Formatter):
    """For the terminal: the message without a traceback (the log file keeps it)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


class JournalFormatter(_OneLine):
    """For the journal: ``<priority>name: message``, every line of it prefixed, so a message that
    runs to several lines keeps its level on each."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in (super().format(record).splitlines() or [""]))


class _StopsWhenDiskFull(logging.FileHandler):
    """A log file that, on a full disk, says so once and stops writing.

    The stdlib's handler prints a "--- Logging error ---" traceback for every record that
    cannot be written, hundreds on a full disk, burying the one line that says why.
    """

    stopped = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.stopped:
            super().emit(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last flush on a full disk: already said once, nothing more to do
            if exc.errno not in _FULL_ERRNOS:
                raise
            self.stopped = True

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            self.stopped = True
            sys.stderr.write(f"cockpit: the disk of {self.baseFilename} is full: logging to that file stopped "
                             "(stderr goes on)\n")
            return
        super().handleError(record)


class StateDirLogFile(_StopsWhenDiskFull, logging.handlers.RotatingFileHandler):
    """The log file in the state dir, rotated by size by this process (``logging.rotate = true``).

    The stdlib's size check costs, per record, two ``stat`` of the path, a seek, a text-mode
    ``tell`` and formatting the record twice (once to measure it, once to write it): on the
    engine's loop, for every line. Here one ``fstat`` of the open file answers both questions
    (a regular file? how big?), since every record is flushed as written, and the text measured
    is the text written."""

    _formatted: tuple[logging.LogRecord, str] | None = None

    def format(self, record: logging.LogRecord) -> str:
        last = self._formatted
        if last is not None and last[0] is record:
            return last[1]
        text = super().format(record)
        self._formatted = (record, text)
        return text

    def shouldRollover(self, record: logging.LogRecord) -> int:
        if self.stream is None:  # delay was set, or after a rollover
            self.stream = self._open()
        if self.maxBytes <= 0:
            return False
        st = os.fstat(self.stream.fileno())
        if not stat.S_ISREG(st.st_mode):  # bpo-45401: never roll over anything but a regular file
            return False
        return st.st_size + len(self.format(record)) + 1 >= self.maxBytes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        finally:
            self._formatted = None  # the record is not kept alive after it was written


class WatchedStateDirLogFile(_StopsWhenDiskFull, logging.handlers.WatchedFileHandler):
    """The log file in the state dir, rotated by logrotate (``logging.rotate = false``): when the
    file is moved away or removed, the next record reopens it by name."""


def setup_logging(level: str, file: Path | None, max_bytes: int = 10_000_000, backups: int = 5,
                  stderr: bool = True, rotate: bool = True, ib_async_level: str = "WARNING") -> None:
    """The root logger at ``level`` to stderr and/or ``file``; ib_async's loggers at ``ib_async_level``
    (``[logging] ib_async_level``: its per-message INFO lines repeat what the adapter logs)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    if stderr:
        console = logging.StreamHandler()
        console.setFormatter(JournalFormatter() if stderr_is_journal(stream=console.stream) else _OneLine(FORMAT))
        root.addHandler(console)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler_file: logging.FileHandler
        if rotate:
            handler_file = StateDirLogFile(file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        else:
            handler_file = WatchedStateDirLogFile(file, encoding="utf-8")
        handler_file.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler_file)
    from brokers.ibkr.redact import install as install_account_redaction  # IB account ids, masked in every handler
    install_account_redaction(root)
    for noisy in ("aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("ib_async").setLevel(ib_async_level)


def setup_from_settings(c: LoggingConfig, state_dir: Path, *, stderr: bool = True) -> None:
    """``setup_logging`` with the ``[logging]`` section: level, file in ``state_dir``, rotation."""
    setup_logging(c.level, state_dir / c.file, c.max_bytes, c.backups, stderr=stderr, rotate=c.rotate,
                  ib_async_level=c.ib_async_level)
