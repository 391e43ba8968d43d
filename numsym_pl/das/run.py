"""``run_alignment``: test one alignment on a frozen copy of a net, by its intervention."""

from __future__ import annotations

import copy

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.context import AttentionHiding, ContextSubstitution
from numsym_pl.das.protocol import AlignmentResult, intervention
from numsym_pl.das.search import Interchange, SearchSettings
from numsym_pl.models.interface import SequenceModel
from numsym_pl.tasks import TaskFamily


#: the interventions numsym_pl defines (each registers itself by name; a subclass of
#: ``protocol.Intervention`` defined elsewhere registers the same way once imported)
BUILT_IN = (Interchange, ContextSubstitution, AttentionHiding)


def check_alignment(net: SequenceModel, alignment: Alignment) -> None:
    """Fail now, by name, if ``alignment`` cannot run on ``net`` (before any training or fitting)."""
    intervention(alignment.intervention).check(net, alignment.for_net(net))


def run_alignment(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings | None = None,
                  init_rotation: dict | None = None) -> tuple[AlignmentResult, object]:
    """Score ``alignment`` on a frozen copy of ``net`` through its intervention: (the result, the
    learned module, e.g. the DAS rotation, or None). ``init_rotation`` (a state_dict of that
    module) warm-starts a learned intervention."""
    how, alignment = intervention(alignment.intervention), alignment.for_net(net)
    frozen = copy.deepcopy(net).eval().requires_grad_(False)
    how.check(frozen, alignment)
    return how.run(frozen, task, alignment, settings or SearchSettings(), init_rotation)
