"""Distributed Alignment Search: counterfactual pairs, interventions, rotation search and IIA."""

from numsym_pl.das.iia import IIA
from numsym_pl.das.intervention import SubspaceSwap
from numsym_pl.das.pairs import PairBatch, make_pairs
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.search import DASResult, SearchSettings, run_alignment

__all__ = ["IIA", "SubspaceSwap", "PairBatch", "make_pairs", "Alignment", "DASResult", "SearchSettings", "run_alignment"]
