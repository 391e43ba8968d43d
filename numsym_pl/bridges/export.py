"""A trained net as a directory of plain files, and back: ``export`` writes

- ``model.safetensors``: the net's ``state_dict``;
- ``config.json``: the net's class path and constructor arguments (``init_config``), the task's
  (``TaskFamily.config``), the training module's settings and where the checkpoint stood;
- ``README.md``: a model card (``bridges.card``);
- with a ``das_result.json``: its alignments in the card, and the featurizer ``numsym_pl das``
  fitted beside it (``rotation.pt``) as ``featurizer.safetensors`` (its ``state_dict``) and
  ``featurizer.json`` (the rest of ``rotation.pt``, plus the alignment's site and key).

``load`` (``numsym_pl.load``) rebuilds the net, the task and the featurizer; ``load_module`` the
training module and task, which ``checkpoints.load_checkpoint`` returns for such a directory, so that
``numsym_pl das --ckpt_path DIR`` runs on an export. No file holds pickled code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from numsym_pl.bridges.card import model_card
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import read_json, write_json
from numsym_pl.models import SequenceModel
from numsym_pl.tasks import TaskFamily, build_task

FORMAT = "numsym_pl.export/1"
MODEL, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
FEATURIZER, FEATURIZER_CONFIG = "featurizer.safetensors", "featurizer.json"


@dataclass
class Exported:
    """What ``load`` gives back: the net (in eval mode), its task, the DAS featurizer (a
    ``numsym_pl.das.SubspaceSwap``, or None) and the two JSON files as read."""

    net: SequenceModel
    task: TaskFamily
    config: dict
    featurizer: nn.Module | None = None
    featurizer_config: dict | None = field(default=None, repr=False)


def _plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` as safetensors stores it: each tensor its own contiguous CPU copy (safetensors
    refuses tensors that share memory)."""
    return {k: torch.clone(v.detach().cpu(), memory_format=torch.contiguous_format) for k, v in state.items()}


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a directory ``export`` wrote."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG).is_file() and (path / MODEL).is_file()


def _records(das_result: str | Path) -> list[dict]:
    """The alignment records of a ``das_result.json`` (one record, or a list of them)."""
    data = read_json(das_result, "das_result")
    records = data if isinstance(data, list) else [data]
    if not records or not all(isinstance(r, dict) and "key" in r and "iia" in r for r in records):
        raise ConfigError(f"das_result: {das_result} holds no alignment record (key, iia); "
                          "was it written by `numsym_pl das`?")
    return records


def _featurizer(rotation: Path, record: dict, net: SequenceModel) -> tuple[dict, dict[str, torch.Tensor]]:
    """The featurizer in ``rotation`` (a ``rotation.pt``) as (``featurizer.json``'s dict, its tensors);
    it must rebuild (``das.load_rotation``) and fit the width of its site in ``net``."""
    from numsym_pl.das import load_rotation

    try:
        saved = torch.load(rotation, map_location="cpu", weights_only=True)
        swap = load_rotation(rotation)
    except Exception as err:
        raise ConfigError(f"das_result: {rotation} is not a readable rotation ({type(err).__name__}: {err})") from err
    site = (record.get("alignment") or {}).get("site") or net.default_site
    if swap.width != net.site_width(site):
        raise ConfigError(f"das_result: {rotation} is {swap.width} wide, but site {site!r} of this net is "
                          f"{net.site_width(site)} wide; was it fitted on this checkpoint?")
    config = {k: v for k, v in saved.items() if k != "state_dict"}
    return {**config, "site": site, "key": record.get("key")}, _plain_tensors(saved["state_dict"])


def export(ckpt_path: str | Path, out_dir: str | Path, das_result: str | Path | None = None) -> Path:
    """Write the net of ``ckpt_path`` (a checkpoint ``numsym_pl fit`` wrote, or an export) into
    ``out_dir`` (created if needed); with ``das_result`` (a ``das_result.json``), its alignments go
    into the model card and the ``rotation.pt`` beside it, if any, is exported too. Returns ``out_dir``."""
    from numsym_pl import __version__
    from numsym_pl.checkpoints import load_checkpoint
    from numsym_pl.preflight import read_checkpoint, writable_dir

    lm, task = load_checkpoint(ckpt_path)
    net = lm.net.eval()
    records = _records(das_result) if das_result is not None else []
    rotation = Path(das_result).parent / "rotation.pt" if das_result is not None else None
    featurizer = _featurizer(rotation, records[0], net) if rotation is not None and rotation.is_file() else None
    if is_export(ckpt_path):
        trained = read_json(Path(ckpt_path) / CONFIG).get("trained")
    else:
        ckpt = read_checkpoint(ckpt_path)
        trained = {"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")}
    config = {"format": FORMAT, "numsym_pl_version": __version__, "net": net.init_config, "task": task.config(),
              "module": {k: v for k, v in lm.hparams.items() if k != "net"}, "trained": trained}
    out = writable_dir(out_dir)
    save_file(_plain_tensors(net.state_dict()), out / MODEL, metadata={"format": FORMAT})
    write_json(out / CONFIG, config, indent=2)
    for stale in (FEATURIZER, FEATURIZER_CONFIG):  # an earlier export's featurizer must not outlive this one
        (out / stale).unlink(missing_ok=True)
    if featurizer is not None:
        save_file(featurizer[1], out / FEATURIZER, metadata={"format": FORMAT})
        write_json(out / FEATURIZER_CONFIG, featurizer[0], indent=2)
    (out / CARD).write_text(model_card(net, config, records, featurizer and featurizer[0]))
    return out


def _read_config(path: Path, field: str) -> dict:
    if not is_export(path):
        raise ConfigError(f"{field}: {path} is not an exported net (a directory with {CONFIG} and {MODEL})")
    config = read_json(path / CONFIG, field)
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("net"), dict):
        raise ConfigError(f"{field}: {path / CONFIG} is not a numsym_pl export ({FORMAT})")
    return config


def _load_net(path: Path, config: dict, field: str) -> SequenceModel:
    from numsym_pl.models.interface import build_net

    net = build_net(config["net"])
    try:
        net.load_state_dict(load_file(path / MODEL))
    except Exception as err:
        raise ConfigError(f"{field}: {path / MODEL} does not fit {config['net'].get('class_path')} "
                          f"({type(err).__name__}: {str(err).splitlines()[0]})") from err
    return net.eval()


def _load_featurizer(path: Path) -> tuple[nn.Module, dict]:
    """The featurizer of an export, rebuilt by ``das.load_rotation`` from what ``rotation.pt`` held."""
    from numsym_pl.das import load_rotation

    config = read_json(path / FEATURIZER_CONFIG, "featurizer")
    saved = {k: v for k, v in config.items() if k not in ("site", "key")}
    buffer = io.BytesIO()  # rotation.pt's contents again, so that one function builds featurizers from them
    torch.save({**saved, "state_dict": load_file(path / FEATURIZER)}, buffer)
    buffer.seek(0)
    return load_rotation(buffer).eval(), config


def load(path: str | Path, device: str | torch.device = "cpu") -> Exported:
    """The net (in eval mode, on ``device``), task and featurizer of a directory ``export`` wrote."""
    path = Path(path)
    config = _read_config(path, "path")
    net = _load_net(path, config, "path").to(device)
    featurizer, featurizer_config = None, None
    if (path / FEATURIZER).is_file():
        featurizer, featurizer_config = _load_featurizer(path)
        featurizer = featurizer.to(device)
    return Exported(net, build_task(config["task"]), config, featurizer, featurizer_config)


def load_module(path: str | Path, field: str = "ckpt_path"):
    """The training module (``NextTokenLM``, on the CPU) around the net of an export, and its task:
    what ``checkpoints.load_checkpoint`` gives for a checkpoint file."""
    from numsym_pl.lit_module import NextTokenLM

    path = Path(path)
    config = _read_config(path, field)
    return NextTokenLM(_load_net(path, config, field), **(config.get("module") or {})), build_task(config["task"])
