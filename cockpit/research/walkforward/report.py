"""The walk-forward report: one JSON document (stored, printed with --json, drawn as HTML) and
the text a trader reads: a row per window, the stitched out-of-sample figures, and the verdict.

Money and equity are decimal strings (as everywhere in the CLI's JSON), ratios numbers, dates
ISO. ``timing`` is the only part that differs between two runs of the same walk-forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, TextIO

from cockpit.research.walkforward.analysis import Result, WindowResult
from cockpit.research.walkforward.grid import point_dict, point_text
from cockpit.research.walkforward.stats import run_annual_return
from core.domain.serialize import money
from core.domain.text import money as text_money

SCHEMA = 1


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:+.{digits}f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _score(objective: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if objective == "net" else f"{value:.2f}"


def _window_json(result: Result, w: WindowResult) -> dict[str, Any]:
    grid = result.grid
    oos_days = w.oos_outcome.days
    return {
        "index": w.window.index,
        "train": [w.window.train_start.isoformat(), w.window.train_end.isoformat()],
        "test": [w.window.test_start.isoformat(), w.window.test_end.isoformat()],
        "partial": w.window.partial,
        "warmup_from": {"is": w.is_range.data_start.isoformat(), "oos": w.oos_range.data_start.isoformat()},
        "params": point_dict(grid.points[w.chosen]),
        "point": w.chosen,
        "is_objective": w.is_score,
        "oos_objective": w.oos_score,
        "is_trades": len(w.is_outcome.closed) + w.is_outcome.open_trades,
        "oos_trades": len(w.oos_outcome.closed) + w.oos_outcome.open_trades,
        "is_annual_return": run_annual_return(w.is_outcome.days),
        "oos_annual_return": run_annual_return(oos_days),
        "oos_return": float(oos_days[-1].close / oos_days[0].open - 1) if oos_days else None,
        "oos_net": money(oos_days[-1].close - oos_days[0].open) if oos_days else money(Decimal(0)),
        "oos_sessions": len(oos_days),
        "scores": list(w.scores),
        "timing": {"seconds": round(w.seconds, 3), "backtest_seconds": round(w.run_seconds, 3)},
    }


def report_json(result: Result) -> dict[str, Any]:
    spec, st, r = result.spec, result.stitched, result.stitched.returns
    t = st.trades
    stab = result.stability
    open_trades = sum(w.oos_outcome.open_trades for w in result.windows)
    cfg = result.settings.strategies[spec.strategy]
    return {
        "schema": SCHEMA,
        "strategy": spec.strategy,
        "kind": result.kind,
        "symbols": cfg.symbols or [f.symbol for f in result.settings.feed.files],
        "created_at": result.created_at.isoformat(),
        "params": result.latest_params,
        "base_params": {k: str(v) if isinstance(v, Decimal) else v for k, v in cfg.params.items()},
        "grid": {"spec": spec.grid, "axes": {a.name: list(a.values) for a in result.grid.axes},
                 "points": len(result.grid.points), "refused": result.grid.refused,
                 "refused_example": result.grid.refused_example},
        "objective": spec.objective,
        "train": spec.train.text, "test": spec.test.text, "anchored": spec.anchored,
        "from": result.windows[0].window.train_start.isoformat(),
        "to": result.windows[-1].window.test_end.isoformat(),
        "warmup_sessions": result.warmup,
        "starting_cash": money(result.settings.paper.starting_cash),
        "windows": [_window_json(result, w) for w in result.windows],
        "stitched": {
            "first_day": r.first_day.isoformat() if r.first_day else None,
            "last_day": r.last_day.isoformat() if r.last_day else None,
            "sessions": r.sessions, "sharpe": r.sharpe, "sortino": r.sortino, "cagr": r.annual_return,
            "total_return": r.total_return, "max_drawdown": r.max_drawdown, "annual_volatility": r.annual_volatility,
            "profit_factor": t.profit_factor, "win_rate": t.win_rate, "trades": t.trades, "open_trades": open_trades,
            "net": money(st.days[-1].close - st.days[0].open) if st.days else money(Decimal(0)),
            "t_stat": st.t_stat,
            "equity": [[d.day.isoformat(), money(d.close)] for d in st.days],
        },
        "wfe": result.wfe,
        "positive_windows": sum(1 for w in result.windows if w.oos_net > 0),
        "stability": {"share": stab.share, "same": stab.same, "neighbouring": stab.neighbouring, "pairs": stab.pairs,
                      "mode": point_dict(result.grid.points[stab.mode]) if stab.mode is not None else None,
                      "mode_windows": stab.mode_count},
        "rules": spec.rules.as_dict(),
        "verdict": result.verdict.as_dict(),
        "timing": {"seconds": round(result.seconds, 3), "executor": result.executor,
                   "backtests": len(result.windows) * (len(result.grid.points) + 1)},
    }


def without_timing(report: dict[str, Any]) -> dict[str, Any]:
    """The report less what depends on the machine and the moment (for comparing two runs)."""
    out = {k: v for k, v in report.items() if k not in ("timing", "created_at")}
    out["windows"] = [{k: v for k, v in w.items() if k != "timing"} for w in report["windows"]]
    return out


def render_text(report: dict[str, Any], out: TextIO, notes: Sequence[str] = ()) -> None:
    """The report as a trader reads it; ``notes`` (where it was stored) come just before the
    verdict, which is the last line."""
    def p(text: str = "") -> None:
        print(text, file=out)

    g, st = report["grid"], report["stitched"]
    objective = report["objective"]
    p(f"Walk-forward of {report['strategy']} ({report['kind']}) on {' '.join(report['symbols'])}, "
      f"{report['from']} .. {report['to']}")
    refused = (f" ({g['refused']} refused, e.g. {g['refused_example']})" if g["refused"] else "")
    p(f"grid {g['spec']}: {g['points']} points{refused}; objective {objective}")
    p(f"{'anchored' if report['anchored'] else 'rolling'} windows: train {report['train']}, test {report['test']}, "
      f"{len(report['windows'])} windows; warm-up {report['warmup_sessions']} sessions before each run; "
      f"{report['timing']['backtests']} backtests on {report['timing']['executor']} in "
      f"{report['timing']['seconds']:.1f} s")
    p()
    head = (f"{'#':>3}  {'train':<23}  {'test':<23}  {'chosen':<22}  {'IS ' + objective:>10}  "
            f"{'OOS ' + objective:>11}  {'IS trades':>9}  {'OOS trades':>10}  {'OOS return':>10}  {'time':>6}")
    p(head)
    for w in report["windows"]:
        chosen = point_text(tuple(w["params"].items()))
        test = f"{w['test'][0]}..{w['test'][1]}" + ("*" if w["partial"] else "")
        p(f"{w['index']:>3}  {w['train'][0]}..{w['train'][1]}  {test:<23}  {chosen:<22}  "
          f"{_score(objective, w['is_objective']):>10}  {_score(objective, w['oos_objective']):>11}  "
          f"{w['is_trades']:>9}  {w['oos_trades']:>10}  {_pct(w['oos_return']):>10}  "
          f"{w['timing']['seconds']:>5.1f}s")
    if any(w["partial"] for w in report["windows"]):
        p("  * test window cut short by the end of the data")
    p()
    p(f"Stitched out of sample ({st['first_day']} .. {st['last_day']}, {st['sessions']} sessions, "
      f"from {report['starting_cash']}):")
    p(f"  Sharpe {_num(st['sharpe'])}   Sortino {_num(st['sortino'])}   CAGR {_pct(st['cagr'])}   "
      f"max drawdown {_pct(-st['max_drawdown'] if st['max_drawdown'] is not None else None)}   "
      f"profit factor {_num(st['profit_factor'])}   win rate "
      f"{'-' if st['win_rate'] is None else format(st['win_rate'], '.0%')}   trades {st['trades']}"
      + (f" (+{st['open_trades']} open at a window's end)" if st["open_trades"] else "")
      + f"   net {text_money(Decimal(st['net']))}")
    p(f"  t-stat of the mean daily return {_num(st['t_stat'])}")
    p(f"  walk-forward efficiency {_num(report['wfe'])} (annualised OOS return over the mean annualised IS return "
      "of the chosen parameters)")
    p(f"  windows positive out of sample: {report['positive_windows']}/{len(report['windows'])}")
    stab = report["stability"]
    if stab["share"] is None:
        p("  parameter stability: one window, not judged")
    else:
        mode = point_text(tuple(stab["mode"].items())) if stab["mode"] else "-"
        p(f"  parameter stability: {stab['same'] + stab['neighbouring']}/{stab['pairs']} steps chose the same or a "
          f"neighbouring point ({stab['share']:.0%}); {mode} chosen in {stab['mode_windows']}/{len(report['windows'])} "
          "windows")
    p(f"  parameters to trade next (the last window's choice): {point_text(tuple(report['params'].items()))}")
    for note in notes:
        p(note)
    p()
    p(report["verdict"]["line"])
