"""Where a study's cells run: processes on this machine, or an existing job engine (submitit:
SLURM on a cluster, or submitit's own local executor).

    executor: local        # max_parallel processes here, cores split between them
    executor: submitit     # one job per cell; executor_args go to AutoExecutor.update_parameters,
    executor_args: {cluster: slurm, slurm_partition: gpu, timeout_min: 240, gpus_per_node: 1, cpus_per_task: 8}
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import traceback
from concurrent.futures import as_completed
from pathlib import Path
from typing import Callable, Iterator

from numsym_pl.errors import ConfigError
from numsym_pl.processes import end_pool, worker_pool
from numsym_pl.study.cell import run_cell
from numsym_pl.study.spec import Cell


def safe_run_cell(cell: Cell) -> dict:
    """``run_cell``, with a failure returned as a record (one bad cell does not stop a study)."""
    try:
        return run_cell(cell)
    except Exception as err:  # noqa: BLE001 - reported per cell, the study goes on
        return {**cell.labels, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def local(cells: list[Cell], max_parallel: int) -> Iterator[dict]:
    """Cells in ``max_parallel`` spawned processes; results as they finish. Each worker leads a
    process group of its own, which its fit subprocesses join, so that a study that is stopped
    (Ctrl-C, or SIGTERM / SIGHUP under ``stop_on_signals``) takes its workers and their fits down
    with it instead of leaving them running as orphans; a study killed outright (SIGKILL) does too,
    a moment later (``numsym_pl.processes``)."""
    if max_parallel == 1:  # in this process; a fit's subprocess is killed with it (subprocess.run)
        yield from map(safe_run_cell, cells)
        return
    pool = worker_pool(max_parallel, group=True)  # a study killed outright takes its workers and their fits along
    try:
        futures = [pool.submit(safe_run_cell, c) for c in cells]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:  # interrupted, or the consumer stopped early (GeneratorExit)
        end_pool(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within it, SIGTERM and SIGHUP stop a study as Ctrl-C does (a KeyboardInterrupt in the main
    thread), so that ``local`` ends its workers and their fits. Outside the main thread, where
    Python cannot set signal handlers, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    before = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def submitit_jobs(cells: list[Cell], folder: Path, executor_args: dict) -> Iterator[dict]:
    """One submitit job per cell (a SLURM job array with ``cluster: slurm``); results as they finish."""
    try:
        import submitit
    except ImportError as err:
        raise ConfigError("executor: submitit is not installed (pip install 'numsym_pl[cluster]')") from err
    args = dict(executor_args)
    executor = submitit.AutoExecutor(folder=str(folder), cluster=args.pop("cluster", None))
    executor.update_parameters(**args)
    jobs = executor.map_array(safe_run_cell, cells)
    for job in submitit.helpers.as_completed(jobs):
        yield job.result()


def threads_per_cell(executor: str, max_parallel: int, executor_args: dict) -> int:
    if executor == "submitit":
        return int(executor_args.get("cpus_per_task", 1))
    return max(1, (os.cpu_count() or 1) // max_parallel)


def executor_for(name: str, max_parallel: int, folder: Path,
                 executor_args: dict) -> Callable[[list[Cell]], Iterator[dict]]:
    if name == "local":
        return lambda cells: local(cells, max_parallel)
    if name == "submitit":
        return lambda cells: submitit_jobs(cells, folder, executor_args)
    raise ConfigError(f"executor: unknown {name!r}; choose local or submitit")
