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
          ckpt_path: str | Path = "", with_control: bool = True) -> tuple[dict, SubspaceSwap | None]:
    """Fit and score ``alignment`` on the trained net: (the JSON record, the learned swap); with
    ``settings.controls`` the record's ``controls`` also hold the untrained-net control, unless
    ``with_control`` is False (a study adds it afterwards, one per architecture and task)."""
    alignment = alignment.for_net(lm.net)  # run_alignment checks it before any work
    lm.net.eval()
    result, swap = run_alignment(lm.net, task, alignment, settings)
    # a control featurizer always brings its untrained net
    if (settings.controls and with_control) or (swap is not None and swap.control):
        run_controls(lm.net, task, alignment, settings, result)
    record = {**result.as_dict(), "key": alignment.key, "alignment": alignment.identity, "intervention": alignment.intervention,
              "ckpt_path": str(ckpt_path), "task": task.config(), "task_family": task.family, "settings": asdict(settings)}
    return record, swap


def flat_record(record: dict) -> dict:
    """An alignment's JSON record as flat figures (CSV rows, wandb summaries): each IIA with its 95 %
    interval's bounds, the floor, the baselines, the controls' summaries, the fit's steps and a
    learned width."""
    intervals, controls = record.get("intervals") or {}, record.get("controls") or {}
    untrained = controls.get("untrained") or {}
    out = {}
    for field in ("iia_effective", "iia"):
        lo, hi = intervals.get(field) or (None, None)
        out.update({field: record.get(field), f"{field}_lo": lo, f"{field}_hi": hi})
    out.update({k: record.get(k) for k in ("n", "n_effective", "iia_none", "discriminating", "iia_identity",
                                           "iia_full_swap", "iia_random", "steps")})
    out.update({"iia_random_sd": (controls.get("random_subspace") or {}).get("sd"), "iia_untrained": untrained.get("iia"),
                "iia_untrained_effective": untrained.get("iia_effective"),
                "learned_width": (record.get("featurizer_fit") or {}).get("width")})
    joint = (record.get("cause_isolation") or {}).get("all") or {}
    out.update({"cause": joint.get("cause"), "isolation": joint.get("isolation")})
    return out


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
