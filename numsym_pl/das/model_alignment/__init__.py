"""Model Alignment Search (MAS): do two nets carry a program variable in the same causal role?

One featurizer per net and a shared subspace: an interchange takes the source state from one net
and writes its subspace into the other net's state (``cross_swap``), both featurizers fitted
jointly across and within the nets (``fit``) on one set of counterfactual pairs (``pair``),
scored as DAS scores an alignment, with a permuted-value null and linear CKA and RSA of the same
states beside it (``run``, ``similarity``); ``matrix`` aligns every pair of several nets.
"""

from numsym_pl.das.model_alignment.cross_swap import CrossSwap
from numsym_pl.das.model_alignment.fit import fit_jointly
from numsym_pl.das.model_alignment.pair import DIRECTIONS, NetPair
from numsym_pl.das.model_alignment.run import ModelAlignment, align_models
from numsym_pl.das.model_alignment.similarity import linear_cka, rsa, similarity

__all__ = ["CrossSwap", "fit_jointly", "DIRECTIONS", "NetPair", "ModelAlignment", "align_models", "linear_cka",
           "rsa", "similarity"]
