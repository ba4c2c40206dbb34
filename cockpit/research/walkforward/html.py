"""The report as one self-contained HTML page: the verdict, the stitched out-of-sample equity
curve (an inline SVG, the web dashboard's own drawing), the figures and the window table.
No script, no external file: it opens from disk anywhere."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from cockpit.research.walkforward.grid import point_text
from cockpit.web.svg import equity_svg

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.4em} .verdict{padding:.6em 1em;border-radius:4px;font-weight:600}
.holds{background:#e6f4ea;color:#0b5d1e} .fails{background:#fdecea;color:#8a1c12}
table{border-collapse:collapse;width:100%;margin:1em 0} th,td{padding:.25em .6em;border-bottom:1px solid #ddd;
text-align:right} th:nth-child(-n+4),td:nth-child(-n+4){text-align:left} .curve{width:100%;height:220px;color:#1a5fb4}
.muted{color:#666} .small{font-size:.85em} dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{color:#555}
"""


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render_html(report: dict[str, Any]) -> str:
    st, stab, verdict = report["stitched"], report["stability"], report["verdict"]
    curve = [(datetime.combine(date.fromisoformat(d), time()), Decimal(v)) for d, v in st["equity"]]
    rows = []
    for w in report["windows"]:
        rows.append(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in (
                str(w["index"]), f"{w['train'][0]} .. {w['train'][1]}",
                f"{w['test'][0]} .. {w['test'][1]}" + (" (partial)" if w["partial"] else ""),
                point_text(tuple(w["params"].items())), _f(w["is_objective"], ".2f"), _f(w["oos_objective"], ".2f"),
                str(w["is_trades"]), str(w["oos_trades"]), _f(w["oos_return"], "+.1%"),
                f"{w['timing']['seconds']:.1f} s")) + "</tr>")
    figures = [
        ("Sharpe", _f(st["sharpe"], ".2f")), ("t-stat (mean daily return)", _f(st["t_stat"], ".2f")),
        ("Sortino", _f(st["sortino"], ".2f")), ("CAGR", _f(st["cagr"], "+.2%")),
        ("max drawdown", _f(st["max_drawdown"], ".2%")), ("profit factor", _f(st["profit_factor"], ".2f")),
        ("win rate", _f(st["win_rate"], ".0%")), ("trades", f"{st['trades']} (+{st['open_trades']} open)"),
        ("net", st["net"]), ("walk-forward efficiency", _f(report["wfe"], ".2f")),
        ("windows positive", f"{report['positive_windows']}/{len(report['windows'])}"),
        ("parameter stability", "-" if stab["share"] is None else f"{stab['share']:.0%} of {stab['pairs']} steps"),
        ("parameters to trade next", point_text(tuple(report["params"].items()))),
    ]
    objective = escape(report["objective"])
    body = Markup(
        f"<h1>Walk-forward: {escape(report['strategy'])} ({escape(report['kind'])})</h1>"
        f"<p class=muted>{escape(' '.join(report['symbols']))} · {escape(report['from'])} .. {escape(report['to'])} · "
        f"grid {escape(report['grid']['spec'])} ({report['grid']['points']} points) · objective {objective} · "
        f"{'anchored' if report['anchored'] else 'rolling'} train {escape(report['train'])} / test "
        f"{escape(report['test'])} · made {escape(report['created_at'])}</p>"
        f"<p class='verdict {'holds' if verdict['holds'] else 'fails'}'>{escape(verdict['line'])}</p>"
        f"<h2>Stitched out-of-sample equity</h2>{equity_svg(curve)}"
        "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in figures) + "</dl>"
        "<h2>Windows</h2><table><thead><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in ("#", "train", "test", "chosen", f"IS {report['objective']}",
                                                     f"OOS {report['objective']}", "IS trades", "OOS trades",
                                                     "OOS return", "time"))
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Walk-forward "
            f"{escape(report['strategy'])}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n")


def write_html(report: dict[str, Any], path: Path) -> None:
    path.write_text(render_html(report), encoding="utf-8")
