"""An alignment of a trained module as a JSON record, and its files (``das_result.json``,
``rotation.pt``): what ``numsym_pl das`` and a study cell write and read back."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.controls import run_controls
from numsym_pl.das.intervention import SubspaceSwap
from numsym_pl.das.run import run_alignment
from numsym_pl.das.search import SearchSettings
from numsym_pl.jsonfile import write_json
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.tasks import TaskFamily


def align(lm: NextTokenLM, task: TaskFamily, alignment: Alignment, settings: SearchSettings,
          ckpt_path: str | Path = "") -> tuple[dict, SubspaceSwap | None]:
    """Fit and score ``alignment`` on the trained net: (the JSON record, the learned swap); with
    ``settings.controls`` the record's ``controls`` also hold the untrained-net control."""
    alignment = alignment.for_net(lm.net)  # run_alignment checks it before any work
    lm.net.eval()
    result, swap = run_alignment(lm.net, task, alignment, settings)
    if settings.controls or (swap is not None and swap.control):  # a control featurizer always brings its untrained net
        run_controls(lm.net, task, alignment, settings, result)
    record = {**result.as_dict(), "key": alignment.key, "alignment": alignment.identity, "intervention": alignment.intervention,
              "ckpt_path": str(ckpt_path), "task": task.config(), "task_family": task.family, "settings": asdict(settings)}
    return record, swap


def save_result(record: dict, out_dir: Path, swap: SubspaceSwap | None = None) -> Path:
    """Write ``das_result.json`` (and the learned rotation, ``rotation.pt``) atomically into ``out_dir``."""
    if swap is not None:
        torch.save({"width": swap.width, "subspace": swap.subspace, "n_blocks": swap.n_blocks,
                    "orthogonal_map": swap.orthogonal_map, "featurizer": swap.featurizer_path,
                    "state_dict": swap.state_dict()}, out_dir / "rotation.pt")
    return write_json(out_dir / "das_result.json", record, indent=2)


def load_rotation(path: str | Path) -> SubspaceSwap:
    """The rotation ``numsym_pl das`` saved as ``rotation.pt``."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    swap = SubspaceSwap(saved["width"], saved["subspace"], saved["n_blocks"], "rotation",
                        orthogonal_map=saved.get("orthogonal_map", "matrix_exp"),
                        featurizer=saved.get("featurizer", "rotation"))
    swap.load_state_dict(saved["state_dict"])
    return swap
