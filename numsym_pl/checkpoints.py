"""Loading what ``numsym_pl fit`` wrote: the trained module and the task it was trained on."""

from __future__ import annotations

from pathlib import Path

import torch

from numsym_pl.errors import ConfigError
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.preflight import read_checkpoint
from numsym_pl.tasks import TaskFamily, build_task

#: the numeric-equivalence settings that checkpoints written before tasks were objects kept flat
LEGACY_TASK_FIELDS = ("variant", "min_count", "max_count", "heldout_counts", "ood_counts", "p_void")


def task_of(datamodule_hparams: dict, path: str | Path = "") -> TaskFamily:
    """The task a checkpoint's data module was built with (``hparams.task``); a checkpoint written
    before tasks were objects holds the numeric-equivalence fields flat and is converted."""
    config = datamodule_hparams.get("task")
    if config is None and "variant" in datamodule_hparams:
        config = {"class_path": "numsym_pl.tasks.NumericEquivalence",
                  "init_args": {k: datamodule_hparams[k] for k in LEGACY_TASK_FIELDS if k in datamodule_hparams}}
    if not isinstance(config, dict):
        raise ConfigError(f"ckpt_path: {path} records no task; was it written by `numsym_pl fit`?")
    return build_task(config)


def device_name(name: str) -> str:
    """``name`` if it names a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``), whether or not this
    machine has it (a study checks its settings where its cells may run elsewhere)."""
    if name != "auto":
        try:
            torch.device(name)
        except RuntimeError as err:
            raise ConfigError(f"device: {name!r} is not a device (auto, cpu, cuda, cuda:N)") from err
    return name


def pick_device(name: str) -> torch.device:
    """A device by name (``cpu``, ``cuda``, ``cuda:N``); ``auto`` is the first CUDA device when
    torch sees one, else the CPU."""
    if device_name(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} asked for, but torch sees no CUDA device here")
    return device


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[NextTokenLM, TaskFamily]:
    """The trained module (on ``device``) and the task it was trained on, from a checkpoint
    written by ``fit`` or a directory ``numsym_pl export`` wrote (``bridges.export``)."""
    if Path(path).is_dir():
        from numsym_pl.bridges.export import load_module

        lm, task = load_module(path)
        return lm.to(pick_device(device) if isinstance(device, str) else device), task
    ckpt = read_checkpoint(path)
    hp, dm = ckpt.get("hyper_parameters", {}), ckpt.get("datamodule_hyper_parameters")
    if not isinstance(hp.get("net"), dict) or dm is None:
        raise ConfigError(f"ckpt_path: {path} lacks the model/data configuration; was it written by `numsym_pl fit`?")
    lm = NextTokenLM.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return lm.to(pick_device(device) if isinstance(device, str) else device), task_of(dm, path)
