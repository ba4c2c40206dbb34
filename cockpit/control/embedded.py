"""uvicorn's server as the engine embeds it: no signal handling of its own, and a stop that
is seen at once rather than at its next 0.1 s poll.

Imported only when the control API starts (``ControlServer.start``): uvicorn is not on the
import path of a command that never serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

_TICK = 0.1  # uvicorn's own main-loop period: its Date header is refreshed every 10 ticks


class EmbeddedServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runner handles signals

    def exit(self) -> None:
        """Ask the server to stop; its main loop wakes now (uvicorn's would within 0.1 s)."""
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick every 0.1 s until ``should_exit``), woken early by ``exit()``."""
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), _TICK)
            should_exit = await self.on_tick(counter)
