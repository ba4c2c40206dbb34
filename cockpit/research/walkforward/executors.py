"""Where the backtests run: in this process, on a pool of processes, or on a Dask cluster.

All three run the same function (``runner.run_job``) on the same self-contained jobs, so the
report is the same whatever the executor (tests/test_walkforward_executors.py compares them).
Each offers ``submit`` (a handle) and ``wait`` (some handles done, the rest pending), so the
walk-forward can hand a window's out-of-sample run in as soon as its grid is done.

- ``SerialExecutor`` (``--workers 1``): runs each job as it is submitted.
- ``PoolExecutor`` (the default, ``--workers N``, N = the machine's cores): a
  ``concurrent.futures.ProcessPoolExecutor``; each worker process keeps its calendars and cut
  files between jobs.
- ``DaskExecutor`` (``--cluster ADDRESS``): an existing ``dask.distributed`` scheduler (the
  optional extra ``cluster``: ``pip install 'cockpit[cluster]'``). Its workers need cockpit
  installed (the same version); the jobs carry their data, so no shared disk is needed.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Collection
from typing import Any, Protocol

from cockpit.research.walkforward.runner import RunJob, RunOutcome, run_job


class ExecutorError(RuntimeError):
    """The executor cannot start (no cluster there, the extra not installed): one line."""


class Executor(Protocol):
    name: str
    capacity: int  # backtests it runs at once

    def submit(self, job: RunJob) -> Any: ...

    def wait(self, pending: Collection[Any]) -> tuple[set[Any], set[Any]]: ...

    def result(self, handle: Any) -> RunOutcome: ...

    def close(self) -> None: ...


class SerialExecutor:
    name = "serial (this process)"
    capacity = 1

    def submit(self, job: RunJob) -> cf.Future[RunOutcome]:
        future: cf.Future[RunOutcome] = cf.Future()
        try:
            future.set_result(run_job(job))
        except BaseException as exc:  # re-raised by result(), like a pool's
            future.set_exception(exc)
        return future

    def wait(self, pending: Collection[Any]) -> tuple[set[Any], set[Any]]:
        return set(pending), set()

    def result(self, handle: Any) -> RunOutcome:
        outcome: RunOutcome = handle.result()
        return outcome

    def close(self) -> None:
        return None


class PoolExecutor:
    def __init__(self, workers: int) -> None:
        self.workers = self.capacity = workers
        self.name = f"process pool of {workers}"
        self._pool = cf.ProcessPoolExecutor(max_workers=workers)

    def submit(self, job: RunJob) -> cf.Future[RunOutcome]:
        return self._pool.submit(run_job, job)

    def wait(self, pending: Collection[Any]) -> tuple[set[Any], set[Any]]:
        done, rest = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        return set(done), set(rest)

    def result(self, handle: Any) -> RunOutcome:
        outcome: RunOutcome = handle.result()
        return outcome

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    def __init__(self, address: str, timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError("--cluster needs Dask distributed: pip install 'cockpit[cluster]' (or "
                                "'dask[distributed]'), on this machine and on the cluster's workers") from None
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"--cluster {address}: cannot reach a Dask scheduler there ({exc}); start one "
                                "(`dask scheduler` and `dask worker ADDRESS`) or check the address") from None
        info = self._client.scheduler_info().get("workers", {})
        workers = len(info)
        self.capacity = max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))
        self.name = f"Dask cluster at {address} ({workers} worker{'s' if workers != 1 else ''})"

    def submit(self, job: RunJob) -> Any:
        return self._client.submit(run_job, job, pure=False)

    def wait(self, pending: Collection[Any]) -> tuple[set[Any], set[Any]]:
        from distributed import wait

        with self._client.as_current():  # not the process's default client: a caller's own stays theirs
            done, rest = wait(list(pending), return_when="FIRST_COMPLETED")
        return set(done), set(rest)

    def result(self, handle: Any) -> RunOutcome:
        outcome: RunOutcome = handle.result()
        return outcome

    def close(self) -> None:
        self._client.close()


def make_executor(workers: int | None, cluster: str | None) -> Executor:
    if cluster:
        return DaskExecutor(cluster)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count <= 1:
        return SerialExecutor()
    return PoolExecutor(count)
