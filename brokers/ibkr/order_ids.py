"""Order ids that never repeat for a client id, across reconnects, gateway restarts and our restarts.

A restarted gateway may announce a nextValidId below ids it already holds (seen live, and
rehearsed by the simulator); reusing one gets error 103 or, worse, modifies nothing we
meant. So the next id is ``max(nextValidId, highest id we ever used + 1)``. With a state
file, the highest id is persisted in blocks: the file records an upper bound of ids handed
out (written before any id of a new block is used, off the event loop), so a crash loses
at most the unused rest of a block, never a used id. The next block is written ahead, once half
of the current one is used, so an order waits for that fsync only if it outran it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("cockpit.ibkr")


class OrderIdAllocator:
    def __init__(self, path: Path | None, client_id: int, block: int = 100) -> None:
        self.path = path
        self.client_id = client_id
        self.block = block
        self._next = 1
        self._reserved = 0  # ids up to this one are durable (persisted) as used-or-reserved
        self._loaded = False
        self._ahead: asyncio.Task[None] | None = None  # the next block, being written ahead of need

    @property
    def next_id(self) -> int:
        """The id the next ``allocate`` will return (at least)."""
        return self._next

    async def load(self) -> None:
        """Read the state file (once); ids continue above what it records."""
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        data = await asyncio.to_thread(_read, self.path)
        reserved = int(data.get("clients", {}).get(str(self.client_id), 0))
        self._reserved = reserved
        self._next = max(self._next, reserved + 1)
        if reserved:
            log.info("order ids for client %d continue above %d (%s)", self.client_id, reserved, self.path)

    def floor(self, next_valid_id: int) -> None:
        """The gateway (or ib_async's counter) says ids below ``next_valid_id`` are taken."""
        self._next = max(self._next, next_valid_id)

    def skip_past(self, order_id: int, gap: int = 1000) -> None:
        """Error 103: the gateway holds ``order_id`` already, and maybe more above it: jump."""
        self._next = max(self._next, order_id + gap)

    def try_allocate(self) -> int | None:
        """``allocate()`` when it would not wait (the id is inside the block already durable): the
        id; else None, and nothing is allocated."""
        oid = self._next
        if self.path is not None and oid > self._reserved:
            return None
        self._next += 1
        if self.path is not None and self._reserved - oid < self.block // 2 and (
                self._ahead is None or self._ahead.done()):
            self._ahead = asyncio.ensure_future(self._reserve(self._reserved + self.block))
            self._ahead.add_done_callback(_retrieved)
        return oid

    async def allocate(self) -> int:
        oid = self._next
        self._next += 1
        if self.path is None:
            return oid
        if oid > self._reserved and self._ahead is not None:
            # the block written ahead may cover this id; if it failed, the write below tries again (and raises)
            await asyncio.gather(self._ahead, return_exceptions=True)
        if oid > self._reserved:
            await self._reserve(oid + self.block - 1)
        elif self._reserved - oid < self.block // 2 and (self._ahead is None or self._ahead.done()):
            # half a block left: the next one is written now, off the order's way (an fsync is milliseconds)
            self._ahead = asyncio.ensure_future(self._reserve(self._reserved + self.block))
            self._ahead.add_done_callback(_retrieved)
        return oid

    async def _reserve(self, upto: int) -> None:
        """The state file records ids up to ``upto`` as used or reserved, durably, before any is used."""
        assert self.path is not None
        await asyncio.to_thread(_write, self.path, self.client_id, upto)
        self._reserved = max(self._reserved, upto)


def _retrieved(task: asyncio.Task[None]) -> None:
    """A block written ahead that failed: logged; the order that needs it writes it again (and fails then)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("writing the next block of order ids ahead failed: %s", task.exception())


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"ibkr.id_state_file {path}: unreadable ({exc}); fix or remove it") from None
    return data if isinstance(data, dict) else {}


def _write(path: Path, client_id: int, reserved: int) -> None:
    data = _read(path)
    clients = data.setdefault("clients", {})
    clients[str(client_id)] = max(int(clients.get(str(client_id), 0)), reserved)
    data["what"] = "highest IB order id reserved per API client id (cockpit ibkr adapter)"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
