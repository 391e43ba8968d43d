"""Worker pools whose processes do not outlive the process that started them.

A ``ProcessPoolExecutor`` worker waits on its task queue, which it holds both ends of, so when its
parent dies without shutting the pool down (SIGKILL, an out-of-memory kill) it waits forever, and
a pool shut down while a task runs lets that task run to its end. The pools of numsym_pl (a study's
cells, the DAS callback's background fits) come from ``worker_pool``, whose workers end once their
parent is gone, and are stopped mid-task by ``end_pool``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

#: seconds between two looks at whether the parent is still there
POLL_SECONDS = 0.5


def worker_pool(max_workers: int, group: bool = False,
                initializer: Callable[[], None] | None = None) -> ProcessPoolExecutor:
    """Spawned workers that end with their parent. With ``group`` each leads a process group of its
    own, which what it starts (e.g. a fit subprocess) joins, so that one signal ends them all;
    ``initializer`` (a module-level function) then runs in each worker."""
    return ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                               initargs=(group, initializer))


def _start(group: bool, initializer: Callable[[], None] | None) -> None:
    if group:
        os.setpgrp()
    exit_with_parent(group)
    if initializer is not None:
        initializer()


def exit_with_parent(group: bool = False) -> None:
    """Watch, from a daemon thread, for this process's parent to go (the process is then adopted
    by another one), and end this process then; with ``group``, SIGTERM its whole process group
    first (the worker leads it: what it started goes too)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        if group:  # this process too, unless it handles SIGTERM: then os._exit below
            os.killpg(os.getpgrp(), signal.SIGTERM)
        os._exit(1)

    threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()


def end_pool(pool: ProcessPoolExecutor, grace: float = 10.0) -> None:
    """Stop ``pool`` now, tasks under way included: SIGTERM to each worker (to its whole process
    group where it leads one: a Lightning fit in it stops at its next batch), then SIGKILL to
    whatever is left after ``grace`` seconds."""
    workers = list(getattr(pool, "_processes", {}).values())  # pid -> Process, the executor's own table
    groups = {w.pid: _leads_group(w.pid) for w in workers}
    pool.shutdown(wait=False, cancel_futures=True)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for w in workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                (os.killpg if groups[w.pid] else os.kill)(w.pid, sig)
        deadline = time.monotonic() + grace
        while any(_alive(w, groups[w.pid]) for w in workers):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        else:
            return


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def _alive(worker, group: bool) -> bool:
    worker.join(0)  # reaps the worker once it has exited, so that its group can empty
    if not group:
        return worker.is_alive()
    try:
        os.killpg(worker.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
