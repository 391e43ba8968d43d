"""TrialDataModule: a task family's training pool and its in-distribution, held-out and OOD
validation sets. The task is an argument (``class_path`` + ``init_args``), stored in checkpoints
as plain data (``hparams.task``)."""

from __future__ import annotations

from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from numsym_pl.errors import ConfigError
from numsym_pl.tasks import NumericEquivalence, TaskFamily, Trials

#: names of the validation sets, in dataloader order; keys are suffixed with these (``id`` has none)
VAL_SETS: tuple[str, ...] = ("id", "heldout", "ood")


class TrialDataset(Dataset):
    """Trials as tensors. A batch is a dict: ``tokens`` [B, L], ``scored`` [B, L-1] (the targets
    trial accuracy scores), ``prompt_end`` [B] and each task quantity (e.g. ``count``) [B]."""

    def __init__(self, trials: Trials):
        self.columns = {"tokens": torch.as_tensor(trials.tokens), "scored": torch.as_tensor(trials.scored),
                        "prompt_end": torch.as_tensor(trials.prompt_end),
                        **{k: torch.as_tensor(v) for k, v in trials.quantities.items()}}

    def __len__(self) -> int:
        return len(self.columns["tokens"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.columns.items()}

    def __getitems__(self, idx):  # batched fetch: one gather instead of a Python loop over items
        idx = torch.as_tensor(idx)
        return {k: v[idx] for k, v in self.columns.items()}


def _identity_collate(batch):
    return batch


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation that depends on (seed, epoch) only, so a run resumed from a
    checkpoint sees the same batches as an uninterrupted one (Lightning calls ``set_epoch``)."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=gen).tolist())


class TrialDataModule(pl.LightningDataModule):
    """Trials of a task family (default: numeric equivalence, docs/method.md#tasks).

    Args:
        task: the task family and its settings, e.g. ``{class_path: numsym_pl.tasks.NumericEquivalence,
            init_args: {variant: same}}``; its held-out and OOD splits are validated separately.
        train_size: trials in the training pool (reference: a fixed pool of 1,000).
        fresh_samples: draw a new pool every epoch instead of a fixed one (needs the trainer's
            ``reload_dataloaders_every_n_epochs: 1``).
        val_size: trials in each validation set (in-distribution, held-out, OOD).
        batch_size: training batch size.
        val_batch_size: batch size of the validation sets (the metrics do not depend on it). The
            CPU runs these nets faster on batches that fit its caches: 256 takes 1.2-1.5x less than
            one batch of 1,000 per set on the reference GRU and RoPE net and the same on the LSTM
            (``bench/validation.py``, idle 2-core machine); a GPU may prefer larger ones.
        seed: seed of the data (the pool and the validation sets); independent of the model seed.
        num_workers: DataLoader workers (0 is fastest for these in-memory tensors).
    """

    def __init__(
        self,
        task: Optional[TaskFamily] = None,
        train_size: int = 1000,
        fresh_samples: bool = False,
        val_size: int = 1000,
        batch_size: int = 128,
        val_batch_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.task = NumericEquivalence() if task is None else task
        if not isinstance(self.task, TaskFamily):
            raise ConfigError(f"data.task: must be a TaskFamily, got {type(self.task).__name__}")
        self.save_hyperparameters(ignore=["task"])
        self.hparams["task"] = self.task.config()  # plain data in the checkpoint, never a pickled object
        if train_size < 1:
            raise ConfigError(f"train_size: must be >= 1, got {train_size}")
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if val_batch_size < 1:
            raise ConfigError(f"val_batch_size: must be >= 1, got {val_batch_size}")
        self.val_sets: dict[str, TrialDataset] = {}

    # ---- what the CLI links into the model ----------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.task.vocab.size

    @property
    def pad_id(self) -> int:
        return self.task.vocab.PAD

    # ---- datasets ---------------------------------------------------------------------------------
    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.hparams.seed, *stream])

    def train_pool(self, epoch: int = 0) -> TrialDataset:
        rng = self._rng(0, epoch if self.hparams.fresh_samples else 0)
        return TrialDataset(self.task.sample("train", self.hparams.train_size, rng))

    def setup(self, stage: str | None = None) -> None:
        if self.val_sets:
            return
        for i, name in enumerate(VAL_SETS):
            split = {"id": "train"}.get(name, name)
            if self.task.has_split(split):
                self.val_sets[name] = TrialDataset(self.task.sample(split, self.hparams.val_size, self._rng(1, i)))

    def _loader(self, ds: TrialDataset, batch_size: int, shuffle: bool) -> DataLoader:
        sampler = EpochShuffleSampler(len(ds), self.hparams.seed) if shuffle else None
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, collate_fn=_identity_collate,
                          num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> DataLoader:
        epoch = 0
        if self.hparams.fresh_samples:
            if self.trainer is not None and self.trainer.reload_dataloaders_every_n_epochs != 1:
                raise ConfigError("data.fresh_samples: needs trainer.reload_dataloaders_every_n_epochs: 1")
            epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return self._loader(self.train_pool(epoch), self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> list[DataLoader]:
        self.setup()
        return [self._loader(self.val_sets[n], self.hparams.val_batch_size, False) for n in self.val_set_names]

    def predict_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.val_sets["id"], self.hparams.val_batch_size, False)

    @property
    def val_set_names(self) -> list[str]:
        self.setup()
        return [n for n in VAL_SETS if n in self.val_sets]
