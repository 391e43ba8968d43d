"""Checks made before a run starts, so that bad input fails at once with a clear message and a
flaky logger never takes a run down."""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import torch
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from numsym_pl.errors import ConfigError


def check_writable(path: str | Path, field: str) -> None:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{field}: cannot create {path} ({err.strerror})") from err
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{field}: cannot write to {path}")


def check_output_dirs(trainer) -> None:
    check_writable(trainer.default_root_dir, "trainer.default_root_dir")
    for logger in trainer.loggers:
        if logger.save_dir:
            check_writable(logger.save_dir, "trainer.logger.init_args.save_dir")


def read_checkpoint(path: str | Path, field: str = "ckpt_path") -> dict:
    """A checkpoint file loaded with ``weights_only=True``; a missing, truncated or foreign file
    raises a ConfigError naming ``field`` and the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{field}: no checkpoint file at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ConfigError(f"{field}: {path} is not a readable checkpoint ({type(err).__name__})") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"{field}: {path} holds no model state")
    return ckpt


def check_resume_checkpoint(ckpt_path: str | None, net_config: dict | None = None) -> None:
    """The checkpoint to resume from must be readable and hold the configured net ('last' and
    'best' are resolved later by Lightning)."""
    if ckpt_path is None or ckpt_path in ("last", "best", "hpc", "registry"):
        return
    theirs = read_checkpoint(ckpt_path).get("hyper_parameters", {}).get("net")
    why = net_mismatch(theirs, net_config)
    if why:
        raise ConfigError(f"ckpt_path: {ckpt_path}: {why}")


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


def net_mismatch(theirs: dict | None, ours: dict | None) -> str | None:
    """Why a checkpoint's net (``{"class_path", "init_args"}``) cannot be loaded into ours, or None.
    Arguments ours leaves unset (None, e.g. a vocab_size linked later) do not count."""
    if not isinstance(theirs, dict) or not isinstance(ours, dict) or not theirs or not ours:
        return None
    a, b = theirs.get("init_args") or {}, ours.get("init_args") or {}
    differs = {k for k in a.keys() & b.keys() if b[k] is not None and a[k] != b[k]}
    name = lambda c: c.get("class_path", "?").rsplit(".", 1)[-1]
    if name(theirs) != name(ours) or differs:
        return f"it holds a {name(theirs)} with {a}, but this run builds a {name(ours)} with {b}"
    return None
