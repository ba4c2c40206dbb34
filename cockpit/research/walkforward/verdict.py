"""Whether a strategy holds up out of sample, in one line a newcomer can act on.

It holds up when every rule passes: the stitched out-of-sample Sharpe is above ``min_sharpe``,
its mean daily return is significant (t-statistic at least ``min_t``: 2.0 is about 5 % two-sided),
the walk-forward efficiency is at least ``min_wfe`` (the folk 0.5: out-of-sample keeps half of
what in-sample promised), at least ``min_positive`` of the windows made money out of sample,
the choices were stable (the same or a neighbouring grid point in at least ``min_stable`` of the
steps from one window to the next; not judged with one window) and there were at least
``min_trades`` trades out of sample (fewer say nothing). The line names every rule, failed first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rules:
    min_sharpe: float = 0.0
    min_t: float = 2.0
    min_wfe: float = 0.5
    min_positive: float = 0.5
    min_stable: float = 0.5
    min_trades: int = 10

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    text: str


@dataclass(frozen=True, slots=True)
class Verdict:
    holds: bool
    checks: tuple[Check, ...]

    @property
    def line(self) -> str:
        failed = [c.text for c in self.checks if not c.ok]
        passed = [c.text for c in self.checks if c.ok]
        if self.holds:
            return "HOLDS UP out of sample: " + "; ".join(passed)
        return "DOES NOT HOLD UP out of sample: " + "; ".join(failed) + (
            " (passed: " + "; ".join(passed) + ")" if passed else "")

    def as_dict(self) -> dict[str, Any]:
        return {"holds": self.holds, "line": self.line, "checks": [asdict(c) for c in self.checks]}


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "undefined" if value is None else format(value, fmt)


def judge(*, sharpe: float | None, t_stat: float | None, wfe: float | None, positive: int, windows: int,
          stable_steps: int, stable_pairs: int, trades: int, rules: Rules = Rules()) -> Verdict:
    checks = [
        Check("sharpe", sharpe is not None and sharpe > rules.min_sharpe,
              f"stitched OOS Sharpe {_num(sharpe)} {'>' if sharpe is not None and sharpe > rules.min_sharpe else '<='} "
              f"{rules.min_sharpe:g}"),
        Check("t_stat", t_stat is not None and t_stat >= rules.min_t,
              f"t-stat {_num(t_stat)} {'>=' if t_stat is not None and t_stat >= rules.min_t else '<'} {rules.min_t:g}"),
        Check("wfe", wfe is not None and wfe >= rules.min_wfe,
              f"WFE {_num(wfe)} {'>=' if wfe is not None and wfe >= rules.min_wfe else '<'} {rules.min_wfe:g}"
              + (" (in-sample return not above 0)" if wfe is None else "")),
    ]
    share = positive / windows if windows else 0.0
    checks.append(Check("positive_windows", windows > 0 and share >= rules.min_positive,
                        f"{positive}/{windows} windows positive OOS ({share:.0%}, "
                        f"{'>=' if share >= rules.min_positive else '<'} {rules.min_positive:.0%})"))
    if stable_pairs == 0:
        checks.append(Check("stability", True, "parameter stability not judged (one window)"))
    else:
        stable = stable_steps / stable_pairs
        ok = stable >= rules.min_stable
        checks.append(Check("stability", ok, f"parameters stable in {stable_steps}/{stable_pairs} steps "
                                             f"({stable:.0%}, {'>=' if ok else '<'} {rules.min_stable:.0%})"))
    checks.append(Check("trades", trades >= rules.min_trades,
                        f"{trades} OOS trades {'>=' if trades >= rules.min_trades else '<'} {rules.min_trades}"))
    return Verdict(all(c.ok for c in checks), tuple(checks))
