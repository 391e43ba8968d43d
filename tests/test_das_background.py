"""DASCallback(background=True): the fits run in a worker process beside training and log what the
same fits give in this process on one thread."""

import pytest
import torch

from callbacks.das import DASCallback
from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment
from numsym_pl.das.background import BackgroundFits, fit_alignments, in_one_thread
from numsym_pl.models import GRULM
from numsym_pl.tasks import VOCAB
from numsym_pl.threads import cpu_threads
from tests.test_das_callback import DATA, SETTINGS, _fit

NUMBERS = ("iia", "iia_identity", "iia_full_swap", "iia_random", "iia_effective", "iia_none", "steps", "iia_lo",
           "iia_hi")


def _das_columns(rows):
    """Every logged DAS number but the seconds, with the epoch and step it was logged at."""
    return sorted((r["epoch"], r["step"], k, r[k]) for r in rows for k in r if k.startswith("das/") and r[k]
                  and not k.endswith("/seconds"))


def test_background_fits_log_what_fits_here_log(tmp_path):
    """Both fit on one CPU thread, whatever the trainer's threads: the same rows, only later."""
    def make(background):
        return DASCallback([Alignment("up_down", "count", "state", Interchange(4)),
                            Alignment("up_up", "demo_count", "state", Interchange(2))],
                           every_n_epochs=2, settings=SETTINGS, at_fit_start=True, warm_start=True,
                           background=background)

    here = make(False)
    with cpu_threads(2):  # the trainer's threads; the callback fits on one
        _, rows_here = _fit(tmp_path / "here", [here], max_epochs=3, enable_checkpointing=False)
    away = make(True)
    _, rows_away = _fit(tmp_path / "away", [away], max_epochs=3, enable_checkpointing=False)
    assert [(r["epoch"], r["key"]) for r in away.history] == [(r["epoch"], r["key"]) for r in here.history]
    assert [r["epoch"] for r in away.history] == [-1, -1, 1, 1, 2, 2]  # epoch 2: the end of fit, warm-started
    assert [r["warm_start"] for r in away.history] == [False, False, False, False, True, True]
    for a, b in zip(away.history, here.history):
        assert {k: a[k] for k in NUMBERS} == {k: b[k] for k in NUMBERS}
    assert _das_columns(rows_away) == _das_columns(rows_here) and _das_columns(rows_here)


def test_the_worker_measures_the_net_as_it_was_when_asked(tmp_path):
    """A snapshot is taken at submission: changing the net afterwards changes nothing measured."""
    torch.manual_seed(0)
    net, task = GRULM(VOCAB.size, hidden_size=16), DATA["task"]
    alignments = [Alignment("up_down", "count", "state", Interchange(4))]
    with in_one_thread():
        (expected, _), = fit_alignments(net, task, alignments, SETTINGS, {})
    worker = BackgroundFits()
    try:
        worker.submit("tag", net, task, alignments, SETTINGS, {})
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)  # training goes on
        assert worker.asked == ["tag"]
        ((tag, [(result, state)]),) = worker.done(wait=True)
    finally:
        worker.close()
    assert tag == "tag" and state is not None and worker.asked == []
    assert (result.iia, result.baselines, result.fit["history"]) == (expected.iia, expected.baselines,
                                                                     expected.fit["history"])


def test_a_failed_background_fit_raises_where_it_is_collected():
    worker = BackgroundFits()
    try:
        worker.submit(0, GRULM(VOCAB.size, hidden_size=16), DATA["task"],
                      [Alignment("up_down", "count", "state", Interchange(64))], SETTINGS, {})  # wider than the state
        with pytest.raises(Exception, match="subspace"):
            worker.done(wait=True)
    finally:
        worker.close(cancel=True)


def test_the_worker_ends_when_the_process_that_started_it_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("from numsym_pl.das.background import BackgroundFits, _ready\n"
            "w = BackgroundFits(); w.start(); w._pool.submit(_ready).result()\n"
            "print(*w._pool._processes, flush=True)\n"
            "import time; time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        (worker,) = map(int, parent.stdout.readline().split())
        os.kill(parent.pid, signal.SIGKILL)  # no shutdown, no atexit: the worker is on its own
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{worker}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.exists(f"/proc/{worker}"), "the background worker outlived the fit"
    finally:
        parent.kill()
        try:
            os.kill(worker, signal.SIGKILL)
        except (ProcessLookupError, NameError, UnboundLocalError):
            pass


def test_a_trainer_on_one_thread_fits_in_its_own_process(tmp_path):
    """No core to spare (a study cell beside others): the callback fits between epochs, the same rows."""
    cb = DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=1, settings=SETTINGS,
                     background=True)
    with cpu_threads(1):
        _fit(tmp_path, [cb], max_epochs=2, enable_checkpointing=False)
    assert [r["epoch"] for r in cb.history] == [0, 1] and cb._worker._pool is None  # never started
