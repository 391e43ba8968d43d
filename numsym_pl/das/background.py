"""Alignments fitted in a worker process beside the caller (the DAS callback's ``background``).

On a CPU a small net's training does much of its work on one thread (the recurrent scan's steps),
and a DAS fit runs on one thread too, so fitting the alignments of epoch E in another process while
epochs E+1, E+2, ... train overlaps the two (in part: the training's multi-threaded ops then share a
core with the fit; ``bench/fit_floor.py`` measures what that costs). The worker gets a snapshot of the net
taken when the fit is asked for, so what it measures is the net of that epoch whatever training
does meanwhile; it runs ``run_alignment`` on one CPU thread, as ``in_one_thread`` does here, so that
a fit gives the same numbers in the worker and in this process.
"""

from __future__ import annotations

import contextlib
import copy
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.record import AlignmentResult
from numsym_pl.das.run import run_alignment
from numsym_pl.das.settings import SearchSettings
from numsym_pl.processes import end_pool, worker_pool
from numsym_pl.tasks.base import TaskFamily
from numsym_pl.threads import cpu_threads

#: CPU threads of a background fit (and of a fit ``in_one_thread``)
THREADS = 1

Fitted = list[tuple[AlignmentResult, "dict | None"]]  # per alignment: the result, the learned module's state


def in_one_thread() -> contextlib.AbstractContextManager:
    """Run the body on ``THREADS`` CPU threads, as a background fit runs."""
    return cpu_threads(THREADS)


def fit_alignments(net, task: TaskFamily, alignments: list[Alignment], settings: SearchSettings,
                   inits: dict[str, dict]) -> Fitted:
    """Each alignment's result and learned state (``inits``: warm starts by alignment key)."""
    out = []
    for a in alignments:
        result, swap = run_alignment(net, task, a, settings, init_rotation=inits.get(a.key))
        out.append((result, None if swap is None
                    else {k: v.detach().cpu().clone() for k, v in swap.state_dict().items()}))
    return out


def _one_thread() -> None:
    torch.set_num_threads(THREADS)


def _ready() -> None:
    """Nothing: submitted first, so that the worker has started and imported torch before it is needed."""


class BackgroundFits:
    """One spawned worker process that fits alignments on snapshots of a net, in the order asked;
    ``done`` hands back what has finished (or waits for everything) in that order."""

    def __init__(self):
        self._pool: ProcessPoolExecutor | None = None
        self._pending: deque[tuple[object, Future]] = deque()

    def start(self) -> None:
        if self._pool is None:
            self._pool = worker_pool(1, initializer=_one_thread)  # it ends with the fit, however the fit ends
            self._pool.submit(_ready)

    def submit(self, tag, net, task: TaskFamily, alignments: list[Alignment], settings: SearchSettings,
               inits: dict[str, dict]) -> None:
        """Fit ``alignments`` on ``net`` as it is now (a CPU copy is taken here); ``tag`` comes back with the
        results."""
        self.start()
        snapshot = copy.deepcopy(net).cpu().eval()
        self._pending.append((tag, self._pool.submit(fit_alignments, snapshot, task, alignments, settings, inits)))

    @property
    def asked(self) -> list:
        """The tags of the fits not yet handed back."""
        return [tag for tag, _ in self._pending]

    def done(self, wait: bool = False) -> list[tuple[object, Fitted]]:
        """(tag, results) of the fits finished so far, oldest first; with ``wait``, of all of them. A
        fit that failed raises its error here."""
        out = []
        while self._pending and (wait or self._pending[0][1].done()):
            tag, future = self._pending.popleft()
            out.append((tag, future.result()))
        return out

    def close(self, cancel: bool = False) -> None:
        """Stop the worker: after the fits asked for, or at once with ``cancel``."""
        if self._pool is not None:
            if cancel:
                end_pool(self._pool)
            else:
                self._pool.shutdown(wait=True)
        self._pool = None
        self._pending.clear()
