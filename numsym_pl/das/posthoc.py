"""``align``: an alignment fitted and scored on a trained net after training, with its controls
(by default the permuted-value null, ``SearchSettings.null``), as the JSON record ``numsym_pl das``
and a study cell write; ``save_result`` and ``load_rotation``: the files they write
(``das_result.json``, ``rotation.pt``)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path

import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.controls import has_null, run_controls, run_null
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.run import run_alignment
from numsym_pl.das.settings import SearchSettings
from numsym_pl.jsonfile import write_json
from numsym_pl.threads import cpu_threads
from numsym_pl.models.interface import SequenceModel
from numsym_pl.tasks.base import TaskFamily


def fit_threads(net) -> contextlib.AbstractContextManager:
    """One CPU thread for a fit on the CPU, whatever the caller exported: a fit's float sums depend
    on the thread count, and a fit beside other work on a shared core runs no slower on one thread
    than on threads that wait for each other (``bench/das_threads.py``)."""
    on_cpu = next(net.parameters()).device.type == "cpu"
    return cpu_threads(1) if on_cpu else contextlib.nullcontext()


def align(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings,
          ckpt_path: str | Path = "", with_control: bool = True) -> tuple[dict, SubspaceSwap | None]:
    """Fit and score ``alignment`` on the trained ``net``: (the JSON record, the learned swap); with
    ``settings.null`` (the default) the record's ``controls`` hold the permuted-value null of a DAS
    alignment, with ``settings.controls`` the untrained-net control too, unless ``with_control`` is
    False (a study adds it afterwards, one per architecture and task)."""
    alignment = alignment.for_net(net)  # run_alignment checks it before any work
    net.eval()
    with fit_threads(net):
        result, swap = run_alignment(net, task, alignment, settings)
        # a control featurizer always brings its untrained net
        if (settings.controls and with_control) or (swap is not None and swap.control):
            run_controls(net, task, alignment, settings, result)
        if settings.null and has_null(alignment):
            run_null(net, task, alignment, settings, result)
    record = result.record(alignment, ckpt_path=str(ckpt_path), task=task.config(), task_family=task.family,
                           settings=asdict(settings))
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
