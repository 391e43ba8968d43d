"""``pca_rotation``: ``rotation`` started at the principal axes of the site's states."""

from __future__ import annotations

from numsym_pl.das.featurizers.base import principal_axes
from numsym_pl.das.featurizers.rotation import Rotation


class PCARotation(Rotation):
    """``rotation`` started at the principal axes of the site's states on the training sources
    (the first column the direction of largest variance), so that a small subspace starts where
    the states vary most: the start every learned featurizer takes under ``SearchSettings.start:
    principal_axes`` (the default), kept here whatever the settings say."""

    name = "pca_rotation"

    def prepare(self, states) -> None:
        self.start_at(principal_axes(states))
