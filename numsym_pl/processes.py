"""Worker processes that do not outlive the process that started them.

A ``ProcessPoolExecutor`` worker waits on its task queue, which it holds both ends of, so when its
parent dies without shutting the pool down (SIGKILL, an out-of-memory kill) it waits forever. The
pools of numsym_pl (a study's cells, the DAS callback's background fits) start their workers with
``exit_with_parent``, which ends a worker once its parent is gone.
"""

from __future__ import annotations

import os
import signal
import threading
import time

#: seconds between two looks at whether the parent is still there
POLL_SECONDS = 0.5


def exit_with_parent(group: bool = False) -> None:
    """Watch, from a daemon thread, for this process's parent to go (the process is then adopted
    by another one), and end this process then; with ``group``, SIGTERM its whole process group
    first (the worker leads it: what it started, e.g. a fit, goes too)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        if group:  # this process too, unless it handles SIGTERM: then os._exit below
            os.killpg(os.getpgrp(), signal.SIGTERM)
        os._exit(1)

    threading.Thread(target=watch, name="exit_with_parent", daemon=True).start()
