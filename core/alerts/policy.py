"""De-duplication, digests and "resolved": what of the alerts the events give actually goes out.

Per key (kind + symbol or strategy): the first occurrence goes out at once and opens a window
of ``window_seconds``; repeats inside it are counted, and when it closes they go out as one
digest ("x37 in 5 min", with the latest wording), which opens the next window. A condition
that fired (a disconnect, a stale feed, a break) and then clears sends one "resolved" alert
with how often it fired, to the same sinks (same kind and severity). A resolution for a key
that is not firing (the broker connecting at start) is not an alert. Time is the clock's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from core.alerts.model import Alert
from core.common.clock import Clock, TimerHandle

#: Firing conditions remembered at most (distinct keys); the oldest is forgotten beyond it.
MAX_FIRING = 10_000


@dataclass(slots=True)
class _Window:
    since: datetime
    pending: int = 0
    last: Alert | None = None
    timer: TimerHandle | None = None


@dataclass(slots=True)
class _Firing:
    alert: Alert
    since: datetime
    count: int = 1


def span(seconds: float) -> str:
    """A window as a trader says it: ``45 s``, ``1 min 30 s``, ``5 min``, ``1 h 30 min``, ``2 d``
    (every sink says it this way: ``cockpit.alerts.wording`` re-uses this)."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 600:
        minutes, rest = divmod(s, 60)
        return f"{minutes} min" if rest == 0 else f"{minutes} min {rest} s"
    minutes = round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"
    days, hours = divmod(round(s / 3600), 24)
    return f"{days} d" if hours == 0 else f"{days} d {hours} h"


def note(alert: Alert) -> str | None:
    """What a digest or a resolution adds to the alert's own line: ``x37 in 5 min``, ``again``,
    ``resolved after 3 min, fired x12``; None for a first occurrence."""
    if alert.resolved:
        fired = f", fired x{alert.count}" if alert.count > 1 else ""
        return f"resolved after {span(alert.window_seconds)}{fired}"
    if alert.window_seconds > 0:
        return "again" if alert.count == 1 else f"x{alert.count} in {span(alert.window_seconds)}"
    return None


def line(alert: Alert) -> str:
    """The alert as one line for a pane or a log: its text (its title when the text runs to
    several lines, like the daily summary's), then what a digest or resolution adds."""
    body = alert.title if "\n" in alert.text.strip() else alert.text
    body = " ".join(body.split())
    extra = note(alert)
    return f"{body} ({extra})" if extra else body


class DedupePolicy:
    """Offer every alert; ``emit`` gets what must go out, now or when a window closes."""

    def __init__(self, window_seconds: float, clock: Clock, emit: Callable[[Alert], None],
                 resolvable: frozenset[str] = frozenset()) -> None:
        """``resolvable``: the kinds that are conditions (a later resolution clears them)."""
        self.window = window_seconds
        self._horizon = timedelta(seconds=window_seconds)  # the window as a span (made once)
        self.resolvable = resolvable
        self.clock = clock
        self.emit = emit
        self._windows: OrderedDict[str, _Window] = OrderedDict()  # oldest window first
        self._firing: OrderedDict[str, _Firing] = OrderedDict()
        self.suppressed = 0  # repeats folded into digests, and resolutions of nothing

    def offer(self, alert: Alert) -> None:
        now = self.clock.now()
        if alert.resolved:
            self._resolve(alert, now)
            return
        firing = self._firing.get(alert.key)
        if firing is not None:
            firing.count += 1
        elif alert.kind in self.resolvable:
            self._fire(alert, now)
        if self.window <= 0:
            self.emit(alert)
            return
        self._prune(now)
        window = self._windows.get(alert.key)
        if window is None or now >= window.since + self._horizon and window.pending == 0:
            if window is not None:
                del self._windows[alert.key]
            self._windows[alert.key] = _Window(now)
            self.emit(alert)
            return
        window.pending += 1
        window.last = alert if window.last is None or alert.severity >= window.last.severity else \
            replace(alert, severity=window.last.severity)
        self.suppressed += 1
        if window.timer is None:
            key = alert.key
            window.timer = self.clock.call_at(window.since + timedelta(seconds=self.window), lambda: self._close(key))

    def _fire(self, alert: Alert, now: datetime) -> None:
        self._firing[alert.key] = _Firing(alert, now)
        while len(self._firing) > MAX_FIRING:
            self._firing.popitem(last=False)

    def flush(self) -> None:
        """Every pending digest goes out now (at a stop: counted repeats are never lost)."""
        for key in [k for k, w in self._windows.items() if w.pending]:
            window = self._windows[key]
            if window.timer is not None:
                window.timer.cancel()
            self._close(key)

    def is_firing(self, key: str) -> bool:
        return key in self._firing

    def _close(self, key: str) -> None:
        """A window with repeats closes: one digest goes out and the next window opens."""
        window = self._windows.pop(key, None)
        if window is None or window.pending == 0 or window.last is None:
            return
        digest = self._digest(window.last, window.pending, self.window)
        self._windows[key] = _Window(self.clock.now())
        self.emit(digest)

    @staticmethod
    def _digest(last: Alert, count: int, seconds: float) -> Alert:
        """The latest occurrence standing for ``count``; each sink words it (``note``; Discord
        and email put "x37 in 5 min" after the title)."""
        return replace(last, count=count, window_seconds=seconds, id="")

    def _resolve(self, alert: Alert, now: datetime) -> None:
        firing = self._firing.pop(alert.key, None)
        window = self._windows.pop(alert.key, None)
        if window is not None and window.timer is not None:
            window.timer.cancel()
        if firing is None:
            self.suppressed += 1
            return
        lasted = (now - firing.since).total_seconds()
        self.emit(replace(alert, kind=firing.alert.kind, severity=firing.alert.severity, count=firing.count,
                          window_seconds=lasted, resolved=True, id=""))

    def _prune(self, now: datetime) -> None:
        """Forget windows that closed without repeats (one per unique key, fills among them)."""
        horizon = self._horizon
        windows = self._windows
        while windows:
            key, window = next(iter(windows.items()))
            if window.pending or now < window.since + horizon:
                break
            del windows[key]


#: A replay faster than live sends at most one daily summary per this many wall seconds.
FOLD_SECONDS = 60.0


@dataclass(slots=True)
class Folded:
    """What a fold held back before the summary it lets out: how many, their first and last day."""

    count: int
    first: str
    last: str


class SummaryFold:
    """Daily summaries of a replay that closes sessions faster than a trader reads them: at most
    one goes out per ``seconds`` of wall time, the latest, saying how many it stands for; at the
    end of the run (``flush``) the last session's. The ones held back are never worded (the
    wording is most of a session close's cost); their rows are in the store all the same.

    ``send(item, folded)`` words and sends ``item`` (``folded``: what was held back before it,
    None for none). A summary that comes ``seconds`` after the last one sent goes out at once."""

    def __init__(self, seconds: float, clock: Clock, send: Callable[[object, Folded | None], None]) -> None:
        self.seconds = seconds
        self.clock = clock
        self.send = send
        self._horizon = timedelta(seconds=seconds)
        self._since: datetime | None = None  # when the last one went out (the window it opened)
        self._held: object | None = None  # the latest summary not sent yet
        self._folded: Folded | None = None  # the ones before it, never to be sent
        self._held_day = ""
        self._timer: TimerHandle | None = None
        self.folded = 0  # summaries never sent this run (their rows are in the store)

    def offer(self, item: object, day: str) -> None:
        now = self.clock.now()
        if self._held is None and (self._since is None or now >= self._since + self._horizon):
            self._since = now
            self.send(item, None)
            return
        if self._held is not None:  # the one held is overtaken: folded, never worded
            self.folded += 1
            f = self._folded
            self._folded = Folded(1, self._held_day, self._held_day) if f is None else \
                Folded(f.count + 1, f.first, self._held_day)
        self._held, self._held_day = item, day
        if self._timer is None and self._since is not None:
            self._timer = self.clock.call_at(self._since + self._horizon, self._release)

    def _release(self) -> None:
        self._timer = None
        held, folded = self._held, self._folded
        self._held, self._folded = None, None
        if held is not None:
            self._since = self.clock.now()
            self.send(held, folded)

    def flush(self) -> None:
        """The one held goes out now (the end of the run: the last session's summary)."""
        if self._timer is not None:
            self._timer.cancel()
        self._release()


def with_folded(alert: Alert, folded: Folded, reader: str = "cockpit report daily") -> Alert:
    """The summary that stands for ``folded`` others says so: in its title (the log's and the
    pane's line), its text, its HTML body and a field."""
    n = folded.count
    days = folded.first if n == 1 else f"{folded.first} to {folded.last}"
    said = "1 earlier session's summary is" if n == 1 else f"{n:,} earlier sessions' summaries are"
    line = (f"+ {said} in the store ({days}), not sent: the replay closed sessions faster than one a minute; "
            f"read them with `{reader}` (one session: `{reader} --date YYYY-MM-DD`)")
    html = alert.html
    if html is not None:
        from html import escape  # only a sink with an HTML body gets here
        html = f"{html}<p>{escape(line)}</p>"
    return replace(alert, title=f"{alert.title} (+{n:,} earlier folded)", text=f"{alert.text}\n\n{line}",
                   fields=(*alert.fields, ("folded", str(n))), html=html)
