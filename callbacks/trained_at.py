"""Record when a run first counts as trained (SPEC §1: trial accuracy >= 99.9 %)."""

from __future__ import annotations

import time

import lightning.pytorch as pl


class TrainedAt(pl.Callback):
    """Logs ``trained/epoch``, ``trained/step`` and ``trained/seconds`` (wall time since fit start)
    the first time ``monitor`` reaches ``threshold``; optionally stops training there.

    Args:
        monitor: the logged metric to watch.
        threshold: the value that counts as trained.
        stop: stop training once reached (otherwise keep training, e.g. for learning dynamics).
    """

    def __init__(self, monitor: str = "val/acc_trial", threshold: float = 0.999, stop: bool = False):
        self.monitor, self.threshold, self.stop = monitor, threshold, stop
        self.reached: dict | None = None
        self._t0 = 0.0
        self._elapsed_before = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or self.reached or float(value) < self.threshold:
            return
        self.reached = {"epoch": trainer.current_epoch, "step": trainer.global_step,
                        "seconds": self._elapsed_before + time.perf_counter() - self._t0}
        for logger in trainer.loggers:
            logger.log_metrics({f"trained/{k}": float(v) for k, v in self.reached.items()}, step=trainer.global_step)
        if self.stop:
            trainer.should_stop = True

    def state_dict(self) -> dict:
        elapsed = self._elapsed_before + (time.perf_counter() - self._t0 if self._t0 else 0.0)
        return {"reached": self.reached, "elapsed": elapsed}

    def load_state_dict(self, state: dict) -> None:
        self.reached, self._elapsed_before = state["reached"], state["elapsed"]
