"""When a run counts as trained (trial accuracy >= 99.9 %; docs/method.md#trained), and stopping there."""

from __future__ import annotations

import time

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn

from numsym_pl.errors import ConfigError


class TrainedAt(pl.Callback):
    """The paper's criterion: every monitored metric the run logs (in-distribution and held-out
    trial accuracy by default) at or above ``threshold`` for ``patience`` consecutive validations.
    When it is met, logs ``trained/epoch``, ``trained/step`` and ``trained/seconds`` (wall time
    since fit start, across resumes) and, with ``stop``, ends the fit there (``trained/stopped`` is
    then 1); ``trainer.max_epochs`` stays the ceiling. The numsym_pl CLI adds one as the
    ``trained_at`` group (``--trained_at.patience 3``, ``--trained_at.stop false``).

    Args:
        monitor: the logged metrics that must all reach ``threshold``; one the run never logs
            (``val/acc_trial_heldout`` on a task without a held-out split) is left out, with a
            warning; the first one must be logged.
        threshold: the value that counts as trained.
        patience: how many consecutive validations must meet it.
        stop: stop training once met (otherwise keep training to ``max_epochs``, as the
            learning-dynamics curves need).
    """

    def __init__(self, monitor: str | list[str] = ("val/acc_trial", "val/acc_trial_heldout"), threshold: float = 0.999,
                 patience: int = 2, stop: bool = True):
        if patience < 1:
            raise ConfigError(f"trained_at.patience must be >= 1, got {patience}")
        self.monitor = [monitor] if isinstance(monitor, str) else list(monitor)
        self.threshold, self.patience, self.stop = threshold, patience, stop
        self.reached: dict | None = None
        self.streak = 0
        self._t0 = 0.0
        self._elapsed_before = 0.0
        self._warned: set[str] = set()

    def on_fit_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def _met(self, metrics: dict) -> bool | None:
        """Whether every logged monitor meets the threshold (None: the first one is not logged)."""
        if metrics.get(self.monitor[0]) is None:
            return None
        for name in self.monitor[1:]:
            if metrics.get(name) is None and name not in self._warned:
                self._warned.add(name)
                rank_zero_warn(f"TrainedAt: {name!r} is not logged by this run; the criterion leaves it out")
        return all(float(metrics[m]) >= self.threshold for m in self.monitor if metrics.get(m) is not None)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.reached:
            return
        met = self._met(trainer.callback_metrics)
        if met is None:
            return
        self.streak = self.streak + 1 if met else 0
        if self.streak < self.patience:
            return
        self.reached = {"epoch": trainer.current_epoch, "step": trainer.global_step,
                        "seconds": self._elapsed_before + time.perf_counter() - self._t0, "stopped": float(self.stop)}
        for logger in trainer.loggers:
            logger.log_metrics({f"trained/{k}": float(v) for k, v in self.reached.items()}, step=trainer.global_step)
        if self.stop:
            trainer.should_stop = True

    def state_dict(self) -> dict:
        elapsed = self._elapsed_before + (time.perf_counter() - self._t0 if self._t0 else 0.0)
        return {"reached": self.reached, "elapsed": elapsed, "streak": self.streak}

    def load_state_dict(self, state: dict) -> None:
        self.reached, self._elapsed_before = state["reached"], state["elapsed"]
        self.streak = state.get("streak", 0)
