"""Distributed Alignment Search: counterfactual pairs, interventions, rotation search and IIA."""

from numsym_pl.das.iia import IIA
from numsym_pl.das.intervention import SubspaceSwap
from numsym_pl.das.pairs import PairBatch, make_pairs
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.protocol import AlignmentResult
from numsym_pl.das.run import check_alignment, run_alignment
from numsym_pl.das.search import SearchSettings

__all__ = ["IIA", "SubspaceSwap", "PairBatch", "make_pairs", "Alignment", "AlignmentResult", "SearchSettings", "check_alignment",
           "run_alignment"]

# the built-in featurizers outside featurizers.py register themselves on import
from numsym_pl.das import boundless as _boundless, revnet as _revnet  # noqa: E402,F401
