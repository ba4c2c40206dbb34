"""The one alert router: the bus's events in, alerts out to every sink that wants them.

It subscribes to the bus as a non-critical subscriber (nothing it does can break the engine)
and does only cheap work on the engine's loop: word the event (``from_events``), apply the
policy (de-duplication, digests, resolved; ``policy``), record the alert, and put it in each
routed sink's bounded queue (``lane``). Delivery happens in one worker task per sink, so a
slow, failing or hung sink delays neither the engine nor another sink.

Nothing is dropped silently: an alert a sink never got (retries exhausted, refused for good,
its queue full, the engine stopped first) is recorded undelivered in the store, counted, and
announced to the other sinks (kind ``alerts.undelivered``: the pane shows the count).

Windows, timeouts, backoff and rate limits run on the clock the router is given (the engine's
wall clock): a ``SimClock`` drives them in tests.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from core.alerts import records
from core.alerts.from_events import MAPPERS, RESOLVABLE, BookLookup, alerts_for, order_may_alert, self_describing_events
from core.alerts.lane import Lane, LaneStats
from core.alerts.model import Alert, Severity
from core.alerts.policy import DedupePolicy, Folded, SummaryFold, with_folded
from core.alerts.probe import ProbeResult, probe
from core.alerts.sink import Sink
from core.common.bus import Bus
from core.common.clock import Clock
from core.config import AlertsConfig
from core.domain.events import DailySummaryReady, EngineStopped, FeedExhausted, FillApplied, OrderChanged
from core.persistence.store import Store

log = logging.getLogger("cockpit.alerts")

UNDELIVERED_KIND = "alerts.undelivered"
STOPPED = "the engine stopped before it was sent"
INTAKE_PER_QUEUE = 10  # events waiting to be worded, at most, per alerts.queue_size
EARLIER = timedelta(hours=24)  # undelivered alerts of earlier runs this recent are counted at start


@dataclass(frozen=True, slots=True)
class FixedBook:
    """The book's answer for one fill, taken when the fill was applied."""

    symbol: str
    owner: str
    account: Decimal
    owned: Decimal

    def position(self, symbol: str) -> Decimal:
        return self.account

    def owner_position(self, owner: str, symbol: str) -> Decimal:
        return self.owned


@dataclass(frozen=True, slots=True)
class RouterStats:
    """What the router did this run (and the undelivered ones found in the store at start)."""

    alerts: int
    suppressed: int
    undelivered: int
    undelivered_before: int
    overflow: int  # alerts a full sink queue refused
    intake_overflow: int  # events a full intake refused (before they became alerts)
    folded: int  # daily summaries a fast replay never sent (``SummaryFold``; their rows are stored)
    sinks: dict[str, LaneStats]


class RandomIds:
    """Random 64-bit ids in hex, like ``secrets.token_hex(8)``, drawn from the OS 512 at a time
    (one system call per alert was a visible cost when a replay raises thousands)."""

    def __init__(self, batch: int = 512) -> None:
        self._batch = batch
        self._pool: list[str] = []

    def next(self) -> str:
        if not self._pool:
            raw = secrets.token_bytes(8 * self._batch)
            self._pool = [raw[i:i + 8].hex() for i in range(0, len(raw), 8)]
        return self._pool.pop()


class AlertRouter:
    def __init__(self, config: AlertsConfig, bus: Bus, store: Store, clock: Clock, sinks: Sequence[Sink] = (),
                 book: BookLookup | None = None, new_id: Callable[[], str] | None = None,
                 fold_seconds: float | None = None) -> None:
        """``fold_seconds``: the engine's clock runs faster than live (a replay): daily summaries
        are folded to at most one per that many wall seconds (``SummaryFold``)."""
        self.config = config
        self.bus = bus
        self.store = store
        self.clock = clock
        self.book = book
        self._new_id = new_id or RandomIds().next
        self.lanes: dict[str, Lane] = {}
        self.policy = DedupePolicy(config.dedupe_window_seconds, clock, self._dispatch, RESOLVABLE)
        self.fold = SummaryFold(fold_seconds, clock, self._send_summary) if fold_seconds is not None else None
        self._event_types: list[type] = [*MAPPERS, *self_describing_events()]
        self._intake: deque[Alert | tuple[object, datetime, BookLookup | None]] = deque()
        self._pumping = False
        self.intake_overflow = 0  # events that came while the intake was full (counted, announced)
        self._overflow_told = 0
        self.started = False
        self.following = False  # the bus's events are taken (a non-critical subscription cannot be undone)
        self.stopping = False
        self.alerts = 0
        self.undelivered_before = 0
        self.html = False  # some sink shows an alert's HTML body (``renders_html``): word it then
        if self.fold is not None:
            self.follow(FeedExhausted)  # the replay's end lets the last summary out
        for sink in sinks:
            self.add_sink(sink)

    # ---- set-up --------------------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        """One more sink (before or after start); its route is ``[alerts.routes.<name>]``."""
        if sink.name in self.lanes:
            raise ValueError(f"two alert sinks are named {sink.name!r}")
        lane = self.lanes[sink.name] = Lane(sink, self.config, self.clock, self._record, self._on_undelivered)
        self.html = self.html or bool(getattr(sink, "renders_html", False))
        if sink.name not in self.config.routes:
            log.warning("alert sink %s has no [alerts.routes.%s]: it gets only test alerts", sink.name, sink.name)
        if self.started:
            lane.start()

    def follow(self, event_type: type) -> None:
        """Route ``event_type`` too: an event defined outside ``core.domain.events`` whose
        ``alert()`` words itself (e.g. the daily summary's)."""
        if event_type in self._event_types:
            return
        self._event_types.append(event_type)
        if self.started:
            self.bus.subscribe(event_type, self.on_event, critical=False)

    async def start(self) -> None:
        """Once the store is open: its schema, the bus, one worker per sink."""
        await records.migrate(self.store)
        self.undelivered_before = await records.undelivered_count(self.store, self.clock.now() - EARLIER)
        for event_type in self._event_types:
            self.bus.subscribe(event_type, self.on_event, critical=False)
        self.started = self.following = True
        for lane in self.lanes.values():
            lane.start()
        if self.undelivered_before:
            self._announce_undelivered(f"{self.undelivered_before} alert(s) of the last 24 h were never delivered "
                                       "(`cockpit alerts` lists them)")

    # ---- the bus handler: a few microseconds, never raises into the bus --------------

    def on_event(self, event: object) -> None:
        """Take the event in (with the moment and, for a fill, the position after: both change
        by the time it is worded); the wording, the policy and the queues run soon after, on
        the same loop but outside the engine's tick-to-order path."""
        if not self.following:
            return
        if type(event) is OrderChanged and not order_may_alert(event):
            return  # the usual order change: no alert comes of it
        book = self.book
        if book is not None and type(event) is FillApplied:
            symbol, owner = event.fill.symbol, event.strategy
            book = FixedBook(symbol, owner, book.position(symbol), book.owner_position(owner, symbol))
        self._take((event, self.clock.now(), book))

    def submit(self, alert: Alert) -> None:
        """An alert from outside the bus (a component without events)."""
        if self.following:
            self._take(alert)

    def _take(self, item: Alert | tuple[object, datetime, BookLookup | None]) -> None:
        if len(self._intake) >= INTAKE_PER_QUEUE * self.config.queue_size:
            self.intake_overflow += 1  # announced (and so recorded) once the router catches up
            return
        self._intake.append(item)
        if not self._pumping:
            self._pumping = True
            try:
                asyncio.get_running_loop().call_soon(self._pump)
            except RuntimeError:  # no loop running (a synchronous caller): word it all now
                self._pump(limit=len(self._intake))

    def _pump(self, limit: int = 256) -> None:
        """Word what came in, apply the policy, queue for the sinks; ``limit`` at a time, so a
        flood of fills yields to the engine between chunks."""
        intake, fold = self._intake, self.fold
        try:
            for _ in range(min(limit, len(intake))):
                item = intake.popleft()
                try:
                    if isinstance(item, Alert):
                        self.policy.offer(item)
                    elif fold is not None and type(item[0]) is DailySummaryReady:
                        fold.offer(item, item[0].summary.date.isoformat())  # worded only if it goes out
                    else:
                        if fold is not None and type(item[0]) in (FeedExhausted, EngineStopped):
                            # the last session's summary: when the replay ends (the cockpit stays up
                            # after it), at the latest before the stop's alert
                            fold.flush()
                        for alert in alerts_for(*item, html=self.html):
                            self.policy.offer(alert)
                except Exception:  # one event that cannot be worded must not stop the others
                    log.exception("the alert router failed on %s (ignored)", type(item).__name__)
            if self.intake_overflow > self._overflow_told:
                lost, self._overflow_told = self.intake_overflow - self._overflow_told, self.intake_overflow
                self._announce_undelivered(f"{lost} event(s) never became alerts: the router's intake was full "
                                           f"({INTAKE_PER_QUEUE} x alerts.queue_size {self.config.queue_size})")
        finally:
            self._pumping = False
            if intake:
                self._pumping = True
                asyncio.get_running_loop().call_soon(self._pump)

    def _send_summary(self, item: object, folded: Folded | None) -> None:
        """The fold lets a daily summary out: worded now, saying what it stands for."""
        assert isinstance(item, tuple)
        for alert in alerts_for(*item, html=self.html):
            self.policy.offer(alert if folded is None else with_folded(alert, folded))

    def _dispatch(self, alert: Alert) -> None:
        """The policy let ``alert`` out: record it and queue it for every routed sink (a notice
        that a sink failed is not queued for that sink)."""
        if not self.started or self.stopping:
            return
        alert = alert.with_id(self._new_id())
        self.alerts += 1
        records.record_alert(self.store, alert)
        exclude = dict(alert.fields).get("sink") if alert.kind == UNDELIVERED_KIND else None
        for lane in self.lanes.values():
            if lane.name != exclude and lane.route.accepts(alert):
                lane.offer(alert)

    def _record(self, alert: Alert, sink: str, status: str, tries: int, reason: str | None) -> None:
        if self.store.is_open:
            records.record_delivery(self.store, alert.id, sink, status, tries, reason, self.clock.now())

    def _on_undelivered(self, sink: str, alert: Alert, reason: str) -> None:
        if alert.kind == UNDELIVERED_KIND or self.stopping:
            return  # no notice about a notice; at a stop the store has it and `cockpit alerts` shows it
        self._announce_undelivered(f"alert '{alert.title}' ({alert.kind}) not delivered to {sink}: {reason}", sink)

    def _announce_undelivered(self, line: str, sink: str = "") -> None:
        """Through the policy: a flood of failures is one line and a digest, not a line each."""
        total = self.undelivered_total()
        self.policy.offer(Alert(kind=UNDELIVERED_KIND, severity=Severity.WARNING, title="Alerts not delivered",
                                text=line, key=f"{UNDELIVERED_KIND}:{sink}", at=self.clock.now(),
                                fields=(("sink", sink), ("undelivered", str(total)))))

    # ---- reading -------------------------------------------------------------------

    def undelivered_total(self) -> int:
        """Alerts never delivered: the store's from earlier runs and this run's so far."""
        return self.undelivered_before + sum(lane.stats.undelivered for lane in self.lanes.values())

    @property
    def stats(self) -> RouterStats:
        lanes = self.lanes.values()
        return RouterStats(alerts=self.alerts, suppressed=self.policy.suppressed,
                           folded=self.fold.folded if self.fold is not None else 0,
                           undelivered=sum(lane.stats.undelivered for lane in lanes),
                           undelivered_before=self.undelivered_before,
                           overflow=sum(lane.stats.overflow for lane in lanes), intake_overflow=self.intake_overflow,
                           sinks={lane.name: replace(lane.stats) for lane in lanes})

    # ---- operator actions ----------------------------------------------------------

    async def send_test(self, sink: str | None, origin: str) -> list[ProbeResult]:
        """One test alert through ``sink`` (None: every sink), one attempt each, recorded."""
        if sink is not None and sink not in self.lanes:
            raise KeyError(sink)
        chosen = [lane.sink for lane in self.lanes.values() if sink is None or lane.name == sink]
        results = await probe(chosen, self.clock, self.config.send_timeout_seconds,
                              self.store if self.store.is_open else None, origin)
        if self.store.is_open:
            await self.store.flush()  # durable now: the go-live check reads it, the loop may be idle for hours
        return results

    # ---- stopping ------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop following the bus, give the queues ``drain_seconds`` (wall time) to empty, then
        record what is left undelivered and close the sinks. Before the store closes."""
        if not self.started or self.stopping:
            return
        self.following = False
        while self._intake:  # the events before the stop (EngineStopped last) become alerts now
            self._pump(limit=len(self._intake))
        if self.fold is not None:
            self.fold.flush()
        self.policy.flush()
        lanes = list(self.lanes.values())
        if self.config.drain_seconds > 0 and not all(lane.idle for lane in lanes):
            try:
                await asyncio.wait_for(asyncio.gather(*(lane.drain() for lane in lanes)), self.config.drain_seconds)
            except TimeoutError:
                waiting = {lane.name: len(lane.queue) + (lane.busy is not None) for lane in lanes if not lane.idle}
                log.warning("alerts still waiting at the stop after %gs: %s", self.config.drain_seconds,
                            ", ".join(f"{n} {k}" for k, n in waiting.items()))
        self.stopping = True
        for lane in lanes:
            await lane.stop(STOPPED)
