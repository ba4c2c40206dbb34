"""The readers' tables written without rich (cockpit/tables.py, for output that is not a terminal)
are what rich writes, byte for byte: on random tables, on every command over a real store, and
rich itself wherever the two might differ."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cockpit import tables
from tests.conftest import CONFIG, ROOT

ALPHABET = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",))


def rich_text(t: tables._Table) -> str:
    out = io.StringIO()
    console = Console(width=tables._WIDTH, file=out)
    table = Table(title=t.title, show_header=t.show_header)
    for header, justify in t.columns:
        table.add_column(header, justify="right" if justify == "right" else "left")
    for row in t.rows:
        table.add_row(*(Text(c) for c in row))
    console.print(table)
    return out.getvalue()


@st.composite
def random_tables(draw: st.DrawFn) -> tables._Table:
    n = draw(st.integers(1, 12))
    width = draw(st.sampled_from([3, 12, 40]))
    text = st.text(ALPHABET, max_size=width)
    columns = [(draw(text), draw(st.sampled_from(["left", "right"]))) for _ in range(n)]
    rows = draw(st.lists(st.lists(text, min_size=n, max_size=n), max_size=6))
    return tables._Table(draw(st.text(ALPHABET, max_size=60)), columns, rows, draw(st.booleans()))


@settings(max_examples=400, deadline=None)
@given(random_tables())
def test_a_table_reads_as_rich_draws_it(t: tables._Table) -> None:
    plain = tables._plain_table(t)
    if plain is not None:
        assert plain == rich_text(t)


def test_what_it_leaves_to_rich() -> None:
    ok = tables._Table("T", [("a", "left")], [["x"]])
    assert tables._plain_table(ok) is not None
    for bad in (ok._replace(title="[bold]T"), ok._replace(title="a :smile: b"), ok._replace(rows=[["\u4e2d"]]),
                ok._replace(rows=[["tab\there"]]), ok._replace(rows=[["x" * 230]]), ok._replace(title="x" * 10)):
        assert tables._plain_table(bad) is None
    assert tables._plain([tables._Line("a [b] c", markup=True)]) is None
    assert tables._plain([tables._Line("a [b] c", markup=False)]) == "a [b] c\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("tables") / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_")}
    env.update(COCKPIT_FEED__START="2008-01-01", COCKPIT_FEED__END="2008-12-31")
    done = subprocess.run([sys.executable, "-m", "cockpit", "--config", str(CONFIG), "--state-dir", str(state),
                           "--no-ui", "--speed", "max"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return state


@pytest.mark.slow
@pytest.mark.parametrize("args", [["positions"], ["positions", "--all"], ["orders"], ["orders", "--limit", "5"],
                                  ["fills"], ["pnl"], ["metrics"], ["metrics", "--strategy", "sma_cross"],
                                  ["report", "daily"], ["report", "daily", "--date", "2008-11-28"],
                                  ["report", "daily", "--date", "2008-11-29"]])
def test_every_command_prints_what_rich_prints(store: Path, args: list[str]) -> None:
    """FORCE_COLOR="" makes rich treat the output as it treats a pipe, and sends ours to rich."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COCKPIT_") and k not in ("FORCE_COLOR",
                                                                                               "TTY_COMPATIBLE")}
    argv = [sys.executable, "-m", "cockpit", *args, "--config", str(CONFIG), "--state-dir", str(store)]
    plain = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=120)
    through_rich = subprocess.run(argv, env={**env, "FORCE_COLOR": ""}, cwd=ROOT, capture_output=True, timeout=120)
    assert plain.returncode == through_rich.returncode == 0
    assert plain.stdout == through_rich.stdout and plain.stderr == through_rich.stderr
    assert plain.stdout.strip()


def test_a_reader_table_imports_no_rich(store: Path) -> None:
    code = ("import sys, cockpit.cli as c; c.main(['positions', '--config', sys.argv[1], '--state-dir', sys.argv[2]]);"
            "assert 'rich' not in sys.modules, 'rich imported'")
    subprocess.run([sys.executable, "-c", code, str(CONFIG), str(store)], check=True, cwd=ROOT, capture_output=True)
