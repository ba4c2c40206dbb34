"""The same walk-forward gives the same report whatever runs the backtests: this process, a
process pool, or a Dask cluster (a real ``distributed.LocalCluster`` of two worker processes on
127.0.0.1, reached by its scheduler's address as `--cluster` would)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.research.walkforward.analysis import Spec, walk_forward
from cockpit.research.walkforward.executors import DaskExecutor, Executor, PoolExecutor, SerialExecutor
from cockpit.research.walkforward.report import report_json, without_timing
from cockpit.research.walkforward.windows import parse_duration
from core.config import Settings, load_config
from tests.test_walkforward_cli import write_config


def small(tmp: Path) -> Settings:
    """The walk-forward CLI test's small config (two daily files, 2010, one sma_cross)."""
    return load_config(write_config(tmp))


SPEC = Spec("sma", "fast=5,10 slow=20", parse_duration("6m", "--train"), parse_duration("3m", "--test"))


def run(settings: Settings, executor: Executor) -> dict[str, object]:
    try:
        return without_timing(report_json(walk_forward(settings, SPEC, executor)))
    finally:
        executor.close()


def test_serial_pool_and_cluster_give_the_same_report(tmp_path: Path, clean_env: dict[str, str]) -> None:
    settings = small(tmp_path)
    serial = run(settings, SerialExecutor())
    assert len(serial["windows"]) == 2 and serial["stitched"]["sessions"] > 100  # type: ignore[arg-type,index]
    assert run(settings, PoolExecutor(2)) == serial
    distributed = pytest.importorskip("distributed", reason="the optional extra 'cluster' (Dask distributed) is not "
                                                            "installed: pip install 'cockpit[cluster]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, local_directory=str(tmp_path / "dask")) as cluster:
        executor = DaskExecutor(cluster.scheduler_address)
        assert "2 workers" in executor.name
        assert run(settings, executor) == serial
