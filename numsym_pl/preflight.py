"""Checks made before a run starts, so that bad input fails at once with a clear message. They
only check; what adapts the loggers to a run lives in ``numsym_pl.loggers``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import net_mismatch


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


def writable_dir(path: str | Path) -> Path:
    """``path``, created if needed, after making sure it can be written (``out:`` error otherwise)."""
    check_writable(path, "out")
    return Path(path)
