"""The state dir's log file: rotated by size with one fstat per record; ib_async quiet by default."""

from __future__ import annotations

import logging
from pathlib import Path

from cockpit.logs import FORMAT, StateDirLogFile, setup_logging


def test_rotates_at_max_bytes_and_writes_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.log"
    handler = StateDirLogFile(path, maxBytes=2_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.Logger("rotation-test")
    logger.addHandler(handler)
    try:
        for n in range(100):
            logger.warning("line %03d %s", n, "x" * 40)
    finally:
        handler.close()
    files = [path, *(path.with_name(f"cockpit.log.{i}") for i in (1, 2, 3))]
    assert all(f.exists() for f in files), "100 lines of ~90 bytes rotate a 2 kB file more than 3 times"
    for f in files:
        assert f.stat().st_size < 2_000  # never grows past max_bytes
    lines = [line for f in reversed(files) for line in f.read_text().splitlines()]
    numbers = [int(line.split("line ")[1][:3]) for line in lines]
    assert numbers == list(range(numbers[0], 100))  # in order, none twice, none lost since the oldest kept


def test_ib_async_logs_warnings_only_unless_asked(tmp_path: Path, root_logger: logging.Logger) -> None:
    setup_logging("INFO", tmp_path / "a.log", stderr=False)
    ib = logging.getLogger("ib_async.wrapper")
    ib.info("orderStatus: Trade(...)")
    ib.warning("Error 201, reqId 5: Order rejected")
    logging.getLogger("cockpit.oms").info("order c-1 SUBMITTED")
    text = (tmp_path / "a.log").read_text()
    assert "orderStatus" not in text and "Error 201" in text and "order c-1 SUBMITTED" in text

    setup_logging("INFO", tmp_path / "b.log", stderr=False, ib_async_level="INFO")
    ib.info("orderStatus: Trade(...)")
    assert "orderStatus" in (tmp_path / "b.log").read_text()
