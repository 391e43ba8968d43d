"""Pairs and labels: counterfactual pairs and the program's labels (``counterfactual``), the
positions a multi-position swap patches (``windows``), the train / validation / test sets of one
alignment with the frozen net's states (``sets``), how often two hypotheses' labels differ
(``distinguish``), and the permuted values of the fitted null (``permuted``)."""

from numsym_pl.das.pairs.counterfactual import PairBatch, make_pairs

__all__ = ["PairBatch", "make_pairs"]
