"""Featurizers: the learned maps DAS swaps a variable's coordinates in (see ``base`` for the
interface), one file each, and the fixed maps of the baselines (``fixed``). Importing this package
registers the built-in ones under their names."""

from numsym_pl.das.featurizers.base import FEATURIZERS, Featurizer, featurizer_class, random_orthogonal
from numsym_pl.das.featurizers.rotation import TAYLOR_TERMS, Rotation, expm_columns
from numsym_pl.das.featurizers.low_rank import LowRank
from numsym_pl.das.featurizers.pca_rotation import PCARotation
from numsym_pl.das.featurizers.boundless import Boundless
from numsym_pl.das.featurizers.revnet import RevNet

__all__ = ["FEATURIZERS", "Featurizer", "featurizer_class", "random_orthogonal", "TAYLOR_TERMS", "Rotation",
           "expm_columns", "LowRank", "PCARotation", "Boundless", "RevNet"]
