"""Distributed Alignment Search: an ``Alignment`` (a program's variables at a site, tested by an
intervention) run on a frozen net (``run_alignment``) gives an ``AlignmentResult``.

Folders: ``featurizers/`` (the learned maps), ``interventions/`` (the ways of testing an
alignment), ``pairs/`` (counterfactual pairs and labels). Files: ``alignment`` (the hypothesis),
``settings`` (how a fit runs), ``search`` (the fit loop), ``run`` (the entry point), ``record``
(the result and its JSON form), ``posthoc`` (align a trained net and write the files), ``controls``,
``sweep``, ``background`` (fits in a worker process), ``iia`` (the metric and its interval),
``natural`` (the unpatched states a pair reads and writes), ``drift`` (how far patched states lie
from natural ones), ``counterfactual_latents`` (the CL loss of a fit).
"""

from numsym_pl.das.iia import IIA
from numsym_pl.das.featurizers import Featurizer
from numsym_pl.das.interventions import (AttentionHiding, ContextSubstitution, Interchange, Intervention,
                                         SubspaceSwap)
from numsym_pl.das.pairs import PairBatch, make_pairs
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.record import AlignmentResult
from numsym_pl.das.posthoc import load_rotation
from numsym_pl.das.run import check_alignment, run_alignment
from numsym_pl.das.settings import SearchSettings

__all__ = ["IIA", "Featurizer", "Intervention", "Interchange", "AttentionHiding", "ContextSubstitution", "SubspaceSwap",
           "PairBatch", "make_pairs", "Alignment", "AlignmentResult", "load_rotation", "SearchSettings",
           "check_alignment", "run_alignment"]
