"""Where a sweep's batches run: in this process, on joblib's loky processes, or on Dask.

Every backend calls ``sim.sweep.results.run_batch`` on the same batches, with a ``tqdm.auto``
progress bar (a widget in Jupyter, text in a terminal) counting finished batches.
"""

from __future__ import annotations

import gc
from typing import Any

from sim.errors import ConfigError, KafkaLabError
from sim.sweep.grid import Plan, Run
from sim.sweep.results import run_batch


def run_locally(jobs: int, plan: Plan, batches: list[list[Run]], bar: bool
                ) -> tuple[list[tuple[list[dict[str, Any]], float]], str]:
    """The batches on joblib's loky workers, or in this process when one job (or batch)."""
    if jobs > 1 and len(batches) > 1:
        return _on_joblib(jobs, plan, batches, bar), "loky"
    return _in_process(plan, batches, bar), "in-process"


def _bar(total: int, show: bool, unit: str = "batch") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not show, unit=unit, desc="sweep")


def _in_process(plan: Plan, batches: list[list[Run]], show: bool
                ) -> list[tuple[list[dict[str, Any]], float]]:
    results = []
    with _bar(len(batches), show) as bar:
        for batch in batches:
            results.append(run_batch(plan, batch))
            bar.update(1)
    return results


def _on_joblib(jobs: int, plan: Plan, batches: list[list[Run]], show: bool
               ) -> list[tuple[list[dict[str, Any]], float]]:
    from joblib import Parallel, delayed

    results = []
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    with _bar(len(batches), show) as bar:
        for result in parallel(delayed(worker_batch)(plan, batch) for batch in batches):
            results.append(result)
            bar.update(1)
    return results


def worker_batch(plan: Plan, batch: list[Run]) -> tuple[list[dict[str, Any]], float]:
    """``run_batch`` in a loky worker process.

    The worker's first batch first freezes the objects importing ``sim`` (and pandas, NumPy,
    SimPy) created: the garbage collector's full passes during the runs then skip those few
    hundred thousand long-lived objects, which they would otherwise walk every time. The
    collector then runs once after each run instead of during it (about 30 passes per
    standard schedule): a run leaves some 27,000 objects in reference cycles, and one pass
    over them costs less than the many passes that find few. Results do not depend on when
    the collector runs; the caller's process (and a Dask worker, which may be a thread of it)
    keeps its own collector settings.
    """
    global _frozen
    if not _frozen:
        gc.freeze()
        _frozen = True
    gc.disable()
    try:
        return run_batch(plan, batch, after_run=gc.collect)
    finally:
        gc.enable()


_frozen = False
"""True once this worker process has frozen its start-up objects."""


def connect(address: str) -> Any:
    """A Dask client of the scheduler at ``address``, or a lab error saying it is not there."""
    from dask.distributed import Client

    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise KafkaLabError(f"cannot reach the Dask scheduler at {address!r} "
                            f"({' '.join(str(exc).split())}); start one with dask scheduler, "
                            "or leave out the address to sweep on this machine.") from None


def dask_workers(client: Any) -> int:
    """Threads over the cluster's workers (each runs one batch at a time per thread)."""
    from dask.distributed import Client

    if not isinstance(client, Client):
        raise ConfigError(f"client must be a dask.distributed.Client or a scheduler address "
                          f"such as 'tcp://host:8786' but is {client!r}.")
    return max(1, sum(client.nthreads().values()))


def on_dask(client: Any, plan: Plan, batches: list[list[Run]], show: bool
             ) -> list[tuple[list[dict[str, Any]], float]]:
    from dask.distributed import as_completed

    remote_plan = client.scatter(plan, broadcast=True)
    futures = [client.submit(run_batch, remote_plan, batch, pure=False) for batch in batches]
    results = []
    with _bar(len(batches), show) as bar:
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(1)
    return results
