"""Where a study's cells run: processes on this machine, or an existing job engine (submitit:
SLURM on a cluster, or submitit's own local executor).

    executor: local        # max_parallel processes here, cores split between them
    executor: submitit     # one job per cell; executor_args go to AutoExecutor.update_parameters,
    executor_args: {cluster: slurm, slurm_partition: gpu, timeout_min: 240, gpus_per_node: 1, cpus_per_task: 8}
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator

from numsym_pl.errors import ConfigError
from numsym_pl.processes import exit_with_parent
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
    a moment later (``numsym_pl.processes.exit_with_parent``)."""
    if max_parallel == 1:  # in this process; a fit's subprocess is killed with it (subprocess.run)
        yield from map(safe_run_cell, cells)
        return
    pool = ProcessPoolExecutor(max_parallel, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker)
    try:
        futures = [pool.submit(safe_run_cell, c) for c in cells]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:  # interrupted, or the consumer stopped early (GeneratorExit)
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker() -> None:
    os.setpgrp()  # the worker's fits join its group: one signal reaches them all
    exit_with_parent(group=True)  # a study killed outright (SIGKILL) takes its workers and their fits along


def stop_workers(pool: ProcessPoolExecutor, grace: float = 10.0) -> None:
    """End every worker of ``pool`` and what it started: SIGTERM to each worker's process group
    (a Lightning fit stops at its next batch), then SIGKILL to whatever is left after ``grace``
    seconds."""
    workers = list(getattr(pool, "_processes", {}).values())  # pid -> Process, the executor's own table
    pool.shutdown(wait=False, cancel_futures=True)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for w in workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(w.pid, sig)
        deadline = time.monotonic() + grace
        while any(_group_alive(w) for w in workers):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return


def _group_alive(worker) -> bool:
    worker.join(0)  # reaps the worker once it has exited, so that its group can empty
    try:
        os.killpg(worker.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


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


def executor_for(name: str, max_parallel: int, folder: Path, executor_args: dict) -> Callable[[list[Cell]], Iterator[dict]]:
    if name == "local":
        return lambda cells: local(cells, max_parallel)
    if name == "submitit":
        return lambda cells: submitit_jobs(cells, folder, executor_args)
    raise ConfigError(f"executor: unknown {name!r}; choose local or submitit")
