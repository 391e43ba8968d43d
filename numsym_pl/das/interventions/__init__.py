"""Interventions: the ways an alignment is tested, one file each (``interchange``: DAS on a learned
subspace; ``attention_hiding`` and ``context_substitution``: changes of context), behind the
interface in ``base``; ``swap`` is the subspace swap the interchange and its baselines apply,
``patched`` runs the net with it, ``cause`` scores RAVEL's cause and isolation."""

from numsym_pl.das.interventions.base import INTERVENTIONS, Intervention, as_intervention, intervention_class
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.interventions.interchange import Interchange
from numsym_pl.das.interventions.attention_hiding import AttentionHiding
from numsym_pl.das.interventions.context_substitution import ContextSubstitution

__all__ = ["INTERVENTIONS", "Intervention", "as_intervention", "intervention_class", "SubspaceSwap", "Interchange",
           "AttentionHiding", "ContextSubstitution"]
