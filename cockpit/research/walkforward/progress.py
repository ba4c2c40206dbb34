"""A progress bar per window on stderr, and one line with its timing when a window is done.

On a terminal the bar of the window in hand is redrawn in place; elsewhere (a pipe, a log) only
the done lines are written, so a log reads as a list of windows.
"""

from __future__ import annotations

from typing import TextIO

from cockpit.research.walkforward.analysis import Progress
from cockpit.research.walkforward.grid import point_text

_WIDTH = 24


class ProgressBar:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._drawn = False

    def update(self, step: Progress) -> None:
        w = step.window
        done = step.finished
        if done is not None:
            self._clear()
            score = "-" if done.is_score is None else f"{done.is_score:.2f}"
            oos = done.oos_score
            print(f"window {w.index:>2}/{step.windows}  test {w.test_start}..{w.test_end}  "
                  f"{point_text(done.point)}  IS {done.objective} {score}  OOS "
                  f"{'-' if oos is None else f'{oos:.2f}'}  {step.total} runs in {done.seconds:.1f} s "
                  f"(backtests {done.run_seconds:.1f} s)  [{step.all_done}/{step.all_total}]",
                  file=self.out, flush=True)
            return
        if not self.tty:
            return
        filled = round(_WIDTH * step.done / step.total)
        self.out.write(f"\rwindow {w.index:>2}/{step.windows} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
                       f"{step.done}/{step.total} runs  (all {step.all_done}/{step.all_total})")
        self.out.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r\x1b[K")
            self._drawn = False

    def close(self) -> None:
        self._clear()
        self.out.flush()
