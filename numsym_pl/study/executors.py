"""Where a study's cells run: processes on this machine, or an existing job engine (submitit:
SLURM on a cluster, or submitit's own local executor).

    executor: local        # max_parallel processes here, cores split between them
    executor: submitit     # one job per cell; executor_args go to AutoExecutor.update_parameters,
    executor_args: {cluster: slurm, slurm_partition: gpu, timeout_min: 240, gpus_per_node: 1, cpus_per_task: 8}
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterator

from numsym_pl.errors import ConfigError
from numsym_pl.study.cell import run_cell
from numsym_pl.study.spec import Cell


def safe_run_cell(cell: Cell) -> dict:
    """``run_cell``, with a failure returned as a record (one bad cell does not stop a study)."""
    try:
        return run_cell(cell)
    except Exception as err:  # noqa: BLE001 - reported per cell, the study goes on
        return {**cell.labels, "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}


def local(cells: list[Cell], max_parallel: int) -> Iterator[dict]:
    """Cells in ``max_parallel`` spawned processes; results as they finish."""
    if max_parallel == 1:
        yield from map(safe_run_cell, cells)
        return
    with ProcessPoolExecutor(max_parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(safe_run_cell, c) for c in cells]
        for future in as_completed(futures):
            yield future.result()


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
