"""What adapts a run's loggers before it starts: a wandb run that cannot start falls back to CSV
(a flaky logger never takes a run down), and a resumed run keeps its CSV history."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger


def fall_back_from_unreachable_loggers(trainer) -> None:
    """Start every wandb run now; one that cannot start (misconfigured, unreachable) is replaced by
    a CSV logger in the same save_dir, with a warning, instead of failing the run later."""
    loggers = []
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            try:
                _ = logger.experiment
            except Exception as err:  # noqa: BLE001 - any wandb failure must not end training
                save_dir = logger.save_dir or trainer.default_root_dir
                warnings.warn(f"wandb could not start ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
                              f"logging to CSV in {save_dir}/wandb_fallback instead", stacklevel=2)
                logger = CSVLogger(save_dir, name="wandb_fallback")
        loggers.append(logger)
    trainer.loggers = loggers


def keep_csv_history_on_resume(trainer, ckpt_path: str | None) -> None:
    """Lightning's CSV writer deletes an existing metrics.csv; on resume, keep its rows up to the
    checkpoint's epoch (later rows are logged again by the resumed run) and append after them."""
    if ckpt_path is None:
        return
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        if not path.is_file():
            continue
        ckpt = Path(logger.log_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
        epoch = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] if ckpt.is_file() else None
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header, rows = list(reader.fieldnames or []), list(reader)
        if epoch is not None:
            rows = [r for r in rows if not r.get("epoch") or float(r["epoch"]) <= epoch]
        writer = logger.experiment  # creating the writer removes the old file
        with open(path, "w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=header)
            out.writeheader()
            out.writerows(rows)
        writer.metrics_keys = sorted(header)
