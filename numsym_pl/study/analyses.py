"""The post-hoc analyses a study runs on each cell, on the alignments they apply to."""

from __future__ import annotations

import json

from numsym_pl.analysis.gradience import gradience
from numsym_pl.analysis.ood_interventions import ood_interventions
from numsym_pl.analysis.phase_flips import phase_flips
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.jsonfile import write_json
from numsym_pl.models.interface import SequenceModel
from numsym_pl.tasks import NumericEquivalence, TaskFamily


def applies(name: str, alignment: Alignment, task: TaskFamily) -> bool:
    """Which learned alignments an analysis reads (all are written for the numeric-equivalence
    family's counts): OOD interventions any; gradience an Up-Down alignment whose first block is
    the count; phase flips an Up-Down alignment with a phase block."""
    if not isinstance(task, NumericEquivalence):
        return False
    if name == "gradience":
        return alignment.program == "up_down" and alignment.variables[0] == "count"
    if name == "phase_flips":
        return alignment.program == "up_down" and "phase" in alignment.variables
    return True


ANALYSIS_FUNCTIONS = {"gradience": gradience, "ood_interventions": ood_interventions, "phase_flips": phase_flips}


def run_analyses(cell, alignments: list[Alignment], net: SequenceModel, task: TaskFamily,
                 swaps: dict[str, SubspaceSwap | None]) -> dict:
    """{analysis: {alignment key: result}}; each result is cached in the cell directory."""
    out = {}
    for name in cell.analyses:
        out[name] = {}
        for alignment in alignments:
            swap = swaps.get(alignment.key)
            if swap is None or not applies(name, alignment, task):
                continue
            path = cell.dir / "analyses" / f"{name}@{alignment.key.replace('/', '@')}.json"
            if path.is_file():
                out[name][alignment.key] = json.loads(path.read_text())
                continue
            result = ANALYSIS_FUNCTIONS[name](net, task, alignment, swap, n=cell.das.n_test, seed=cell.das.seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, result)
            out[name][alignment.key] = result
    return out
