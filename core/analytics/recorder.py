"""The daily reports in the store: the one writer of ``daily_reports``, from DailySummaryReady.

Its own migration component ("reports"), so its schema never collides with another part's.
One row per session date: a summary published again for a date (it is not, see
core/analytics/daily.py) replaces the row, never adds a second one. The row is buffered like
every other write and committed with the engine's next flush, in the same transaction as the
replay cursor that moved past the close: a crash loses both or neither.

It also writes ``report_curves`` (core/analytics/report_curves.py), the curves' part of each
summary as integers, in that same transaction: `cockpit metrics` reads it instead of the JSON.
Opening a store from before that table fills it from the stored summaries (idempotent: only the
days without a row; a reader never writes, and reads the summaries where a day has none).
"""

from __future__ import annotations

from core.analytics.report_curves import CURVES_TABLE, MISSING_SQL, PUT_CURVE, backfill_params, curve_params
from core.common.bus import Bus
from core.common.clock import Clock
from core.domain.daily_summary_json import summary_texts
from core.domain.events import DailySummaryReady
from core.persistence.store import Store

COMPONENT = "reports"
REPORTS_MIGRATIONS: list[str] = [
    # v1: one summary per exchange session (its JSON form, see core/domain/daily_summary.py)
    """
    CREATE TABLE daily_reports (
        date TEXT PRIMARY KEY,
        session_close TEXT NOT NULL,
        equity_open TEXT NOT NULL,
        equity_close TEXT NOT NULL,
        net TEXT NOT NULL,
        summary TEXT NOT NULL,
        written_at TEXT NOT NULL
    );
    """,
    # v2: the curves' part of each summary, as integers (filled from the summaries at open)
    CURVES_TABLE,
]
PUT_REPORT = (
    "INSERT INTO daily_reports (date, session_close, equity_open, equity_close, net, summary, written_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT(date) DO UPDATE SET session_close=excluded.session_close,"
    " equity_open=excluded.equity_open, equity_close=excluded.equity_close, net=excluded.net,"
    " summary=excluded.summary, written_at=excluded.written_at"
)


class ReportsRecorder:
    def __init__(self, store: Store, bus: Bus, wall_clock: Clock) -> None:
        self.store = store
        self.wall_clock = wall_clock
        bus.subscribe(DailySummaryReady, self.on_summary)  # critical: a store write

    async def open(self) -> None:
        """Create or migrate the table (the store is open)."""
        await self.store.migrate(COMPONENT, REPORTS_MIGRATIONS)
        await self.backfill()

    async def backfill(self) -> None:
        """The narrow row of every stored summary that has none yet (a store from before
        ``report_curves``), written with the next flush; a no-op once they all have one (a crash
        before that flush: the next open fills them again)."""
        for params in backfill_params(await self.store.fetchall(MISSING_SQL)):
            self.store.put(("report_curve", params[0]), PUT_CURVE, params)

    def on_summary(self, event: DailySummaryReady) -> None:
        texts = summary_texts(event.summary)  # the JSON, and the texts of what the columns hold too
        day, close = texts.date, texts.session_close
        self.store.put(("daily_report", day), PUT_REPORT,
                       (day, close, texts.equity_open, texts.equity_close, texts.net, texts.json,
                        self.wall_clock.now().isoformat()))
        curve = curve_params(day, close, texts.equity_open, texts.equity_close, texts.owners)
        if curve is not None:
            self.store.put(("report_curve", day), PUT_CURVE, curve)
        else:  # not held exactly (an owner's name with a tab, money past 64 bits): the reader reads the summary
            self.store.put(("report_curve", day), "DELETE FROM report_curves WHERE date = ?", (day,))
