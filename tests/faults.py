"""Fault-injection callbacks for the reliability tests (importable as ``tests.faults`` in configs)."""

import os
import signal

import lightning.pytorch as pl
import torch


class KillAt(pl.Callback):
    """SIGKILL this process at (epoch, batch): a crash that runs no cleanup at all."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


class NaNAt(pl.Callback):
    """Poison the weights at the start of an epoch, so the next loss is NaN."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                next(pl_module.net.parameters()).fill_(float("nan"))


class RaiseOnRank(pl.Callback):
    """Raise on one DDP rank only, in the middle of the first epoch."""

    def __init__(self, rank: int = 1):
        self.rank = rank

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == self.rank and batch_idx == 1:
            raise RuntimeError(f"injected failure on rank {self.rank}")
