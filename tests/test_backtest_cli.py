"""`cockpit backtest` as the user types it: the JSON's shape, --strategy, --param and --from/--to
(bad input one line, exit 2, before anything runs), the CSV and HTML files it writes, the text
output in 80 columns, the progress bar only on a terminal, and a kept store the readers read."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CONFIG, ROOT
from tests.pty_session import PtySession

WINDOW = ("--from", "2008-01-01", "--to", "2008-12-31")
FIGURES = {"return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "trades", "exposure",
           "gross_exposure", "annual_return", "pnl"}


def backtest(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from cockpit.cli import main

    capsys.readouterr()
    try:
        code = main(["backtest", "--config", str(CONFIG), *args])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _clean(clean_env: dict[str, str]) -> None:
    return None


def test_json_has_the_figures_per_strategy_and_for_the_account(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = backtest(capsys, *WINDOW, "--json")
    assert code == 0, err
    assert err == ""  # no progress bar off a terminal, no warning text around the JSON
    data = json.loads(out)
    assert set(data["strategies"]) == {"sma_cross", "rsi_reversion"}
    for figures in [data["account"], *data["strategies"].values()]:
        assert FIGURES <= set(figures)
        assert isinstance(figures["trades"], int) and 0 <= figures["exposure"] <= 1
        assert figures["return"] == figures["total_return"]
    assert data["first_day"] == "2008-01-02" and data["last_day"] == "2008-12-31"
    assert data["account"]["trades"] == sum(s["trades"] for s in data["strategies"].values())
    assert data["account"]["sessions"] == 253
    assert "time in market" in data["exposure_definition"]
    assert data["config"]["strategies"]["rsi_reversion"]["params"]["period"] == 3
    assert data["store"] is None and data["files"] == {} and data["fills"] > 0
    assert any("dropped" in w for w in data["warnings"]) or data["warnings"] == []


def test_strategy_param_and_dates_change_what_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = backtest(capsys, "--from", "2009-01-01", "--to", "2009-06-30", "--strategy", "sma_cross",
                              "--param", "sma_cross.fast=5", "--param", "sma_cross.notional=20000", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert list(data["strategies"]) == ["sma_cross"] and list(data["config"]["strategies"]) == ["sma_cross"]
    assert data["config"]["strategies"]["sma_cross"]["params"] == {"fast": 5, "slow": 30, "notional": "20000"}
    assert (data["first_day"], data["last_day"]) == ("2009-01-02", "2009-06-30")
    assert data["config"]["start"] == "2009-01-01"


@pytest.mark.parametrize(("args", "line"), [
    (("--param", "sma_cross.fast"), "cockpit: --param 'sma_cross.fast': write STRATEGY.KEY=VALUE, e.g. sma_cross.fast=5"),
    (("--param", "fast=5"), "cockpit: --param 'fast=5': write STRATEGY.KEY=VALUE"),
    (("--param", "sma_cross.fast=x"), "cockpit: --param sma_cross.fast=x: Input should be a valid integer"),
    (("--param", "sma_cross.speed=3"), "cockpit: --param sma_cross.speed: sma_cross has no parameter 'speed' "
                                       "(its parameters: fast, notional, slow)"),
    (("--param", "sma_cross.slow=5"), "cockpit: --param sma_cross.slow=5: fast (10) must be shorter than slow (5)"),
    (("--param", "rsi_reversion.entry=150"), "cockpit: --param rsi_reversion.entry=150: Input should be less than 100"),
    (("--param", "sma_cross.fast=5", "--param", "sma_cross.fast=6"), "cockpit: --param sma_cross.fast is given twice"),
    (("--strategy", "momentum"), "cockpit: --strategy momentum: no such strategy in the config"),
    (("--from", "2008-13-01"), "cockpit: --from '2008-13-01': not a date (YYYY-MM-DD"),
    (("--from", "2012-01-01", "--to", "2011-01-01"), "cockpit: --from/--to: start 2012-01-01 is after end 2011-01-01"),
    (("--from", "2030-01-01", "--to", "2030-12-31"), "cockpit: no bars to replay between 2030-01-01 and 2030-12-31"),
    (("--report", "r.pdf"), "cockpit: --report r.pdf: the file name must end in .html or .htm"),
    (("--trades", "/no/such/folder/t.csv"), "cockpit: --trades /no/such/folder/t.csv: no folder /no/such/folder"),
])
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], line: str) -> None:
    code, out, err = backtest(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith(line) and err.count("\n") == 1, err


def test_a_directory_as_report_is_refused_before_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "r.html"
    folder.mkdir()
    code, _, err = backtest(capsys, "--report", str(folder))
    assert (code, err) == (2, f"cockpit: --report {folder}: is a directory: name a file in it\n")


def test_files_written_are_sane(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trades, fills, report = tmp_path / "trades.csv", tmp_path / "fills.csv", tmp_path / "report.html"
    code, out, err = backtest(capsys, *WINDOW, "--json", "--trades", str(trades), "--fills", str(fills),
                              "--report", str(report))
    assert code == 0, err
    data = json.loads(out)
    assert data["files"] == {"trades": str(trades), "fills": str(fills), "report": str(report)}

    fill_rows = list(csv.DictReader(io.StringIO(fills.read_text())))
    assert len(fill_rows) == data["fills"]
    assert {r["strategy"] for r in fill_rows} == {"sma_cross", "rsi_reversion"}
    assert all(r["side"] in ("BUY", "SELL") and Decimal(r["qty"]) > 0 and Decimal(r["price"]) > 0 for r in fill_rows)
    assert [r["ts"] for r in fill_rows] == sorted(r["ts"] for r in fill_rows)

    trade_rows = list(csv.DictReader(io.StringIO(trades.read_text())))
    closed = [r for r in trade_rows if r["status"] == "closed"]
    assert len(closed) == data["account"]["trades"]
    assert len(trade_rows) - len(closed) == data["account"]["open_trades"]
    assert sum(Decimal(r["pnl"]) for r in closed) == Decimal(data["account"]["trades_net"])
    wins = sum(1 for r in closed if Decimal(r["pnl"]) > 0)
    assert wins / len(closed) == pytest.approx(data["account"]["win_rate"])

    html = report.read_text()
    assert html.count("<svg") == 2 and "Equity curve" in html and "Drawdown" in html
    assert "<script" not in html and "http" not in html and " src=" not in html  # self-contained
    assert html.count('<table class="monthly">') == 3  # rsi_reversion, sma_cross, account
    assert re.search(r"<th>2008</th>(<td[^>]*>[+-]\d+\.\d%</td>){12}", html)
    assert html.count("<tr><td>sma_cross</td>") + html.count("<tr><td>rsi_reversion</td>") == len(trade_rows)
    assert "Sharpe" in html and "profit factor" in html


def test_text_output_fits_80_columns_and_a_kept_store_is_readable(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path) -> None:
    store = tmp_path / "kept"
    code, out, err = backtest(capsys, *WINDOW, "--store", str(store))
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines if not line.startswith("store: ")) <= 80  # a path is never wrapped
    assert any(line.startswith("Sharpe") for line in lines) and any(line.startswith("trades") for line in lines)
    assert "Equity at each session close" in out and "┤" in out  # the chart, its axis
    assert f"store: {store}" in out
    assert "\x1b[" not in out  # no colour codes into a pipe

    from cockpit.cli import main

    capsys.readouterr()
    assert main(["metrics", "--json", "--config", str(CONFIG), "--state-dir", str(store)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["sessions"] == 253 and set(metrics["strategies"]) == {"sma_cross", "rsi_reversion"}


def test_the_progress_bar_shows_on_a_terminal(tmp_path: Path, clean_env: dict[str, str]) -> None:
    session = PtySession(["backtest", "--config", str(CONFIG), "--from", "2008-01-01", "--to", "2008-12-31",
                          "--no-chart"], cwd=ROOT, env={**clean_env, "PYTHONPATH": str(ROOT)}, size=(80, 24))
    try:
        assert session.wait_exit(timeout=60) == 0, session.text[-2000:]
    finally:
        session.close()
    assert re.search(r"backtest .*\d+%", session.text)  # the bar, drawn on stderr while it ran
    assert "Sharpe" in session.text
