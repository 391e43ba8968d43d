"""Featurizers: the learned map in which DAS swaps a variable's coordinates.

A featurizer maps a site's state ``h`` [B, d] to features ``z = encode(h)`` and back,
``decode(encode(h)) == h``; a variable owns a block of leading feature coordinates
(``SubspaceSwap``). Featurizers register under their ``name`` when their class is defined, and an
``Alignment`` names one (``featurizer: rotation``); a class defined outside the package registers
once its module is imported (``featurizer: mypackage.MyFeaturizer`` imports it).

Built in (``numsym_pl das --featurizer NAME``; ``numsym_pl sweep --featurizers a,b``):

- ``rotation`` (the default): a learned orthogonal ``W`` [d, d], ``z = h W``, kept orthogonal by
  ``torch.nn.utils.parametrizations.orthogonal`` (``matrix_exp`` as pyvene, or ``cayley``).
- ``low_rank``: only the swapped columns, ``W`` [d, k] with orthonormal columns (Householder): the
  same family of interventions as ``rotation`` (a swap reads only the first k columns), cheaper
  for small k.
- ``pca_rotation``: ``rotation`` started at the principal axes of the site's states on the
  training sources (largest variance first) instead of a random rotation.
- ``boundless`` (``featurizers/boundless.py``): Boundless DAS, a rotation with a learned soft width.
- ``revnet`` (``featurizers/revnet.py``): an invertible non-linear map, offered as a *control*.

The interface, beyond ``encode`` / ``decode``:

- ``linear`` featurizers expose ``weight`` [d, r] (orthonormal columns; rows index the state's
  basis). The swap then patches ``h_t + ((h_s - h_t) W_s * m) W_s^T`` with ``W_s`` the first
  ``r`` columns, equal to the swap in the full feature basis, without computing all of ``z``;
  ``columns(r)`` gives ``W_s`` (``rotation`` computes it for less than all of ``W`` costs).
- ``prepare(states)`` sees the site's states of the training sources before fitting (PCA).
- ``mask(swapped)``: a learned coordinate mask [r] (Boundless), or None for the first ``swapped``.
- ``penalty()`` is added to the training loss; ``anneal(step, max_steps)`` is told where training
  is before each step, and returns True while the fit must not stop early (Boundless anneals).
- ``param_groups(lr)``: the optimizer's groups (Boundless trains its width at its own rate).
- ``report()``: what the fit learned beyond the map itself (Boundless: its width), into the result.
- ``control = True`` marks a featurizer whose IIA means little without the same fit on an
  untrained net; the untrained-net control then always runs beside it.
"""

from __future__ import annotations

import torch
from torch import nn

from numsym_pl.registry import lookup

FEATURIZERS: dict[str, type["Featurizer"]] = {}


class Featurizer(nn.Module):
    """Base: ``__init__(width, seed, **options)``, ``encode``, ``decode`` (see the module's
    docstring for the optional parts). A constructor that takes ``subspace`` is given the number of
    swapped coordinates; one that takes ``orthogonal_map`` is given the search's."""

    name: str = ""
    linear: bool = False
    control: bool = False
    #: a baseline's map (``featurizers.fixed``): nothing to fit
    fixed: bool = False
    #: the swapped block is the whole state, taken from the source as it is (the full-state swap)
    whole_state: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # a class names itself; a subclass that does not is not registered
            FEATURIZERS[cls.name] = cls

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, states: torch.Tensor) -> None:
        """Called once with the site's states of the training sources [N, d] before fitting."""

    def start_at(self, axes: torch.Tensor) -> bool:
        """Start the fit from the orthonormal ``axes`` [d, d] (columns; the first the direction of
        largest variance of the site's states): True if this featurizer can, False to keep its own
        start (``SearchSettings.start``)."""
        return False

    def mask(self, swapped: int) -> torch.Tensor | None:
        """The coordinates to swap, a float [r] in [0, 1]; None: the first ``swapped``."""
        return None

    def penalty(self) -> torch.Tensor | float:
        return 0.0

    def anneal(self, step: int, max_steps: int) -> bool:
        """Told, before each training step, how far training is; True: do not stop early yet."""
        return False

    def report(self) -> dict:
        return {}

    def param_groups(self, lr: float) -> list[dict]:
        """The optimizer's parameter groups at the search's learning rate ``lr``."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def columns(self, r: int) -> torch.Tensor:
        """A linear featurizer's first r columns, ``weight[:, :r]``: all a swap of r coordinates
        reads (a featurizer that can compute them for less overrides this)."""
        return self.weight[:, :r]


@torch.no_grad()
def principal_axes(states: torch.Tensor) -> torch.Tensor:
    """The principal axes of ``states`` [N, d] as the columns of an orthogonal [d, d] matrix, the
    direction of largest variance first."""
    x = states.float() - states.float().mean(0)
    _, vectors = torch.linalg.eigh(x.T @ x / max(len(x) - 1, 1))  # ascending eigenvalues
    return vectors.flip(1)


def random_orthogonal(width: int, seed: int) -> torch.Tensor:
    """A random orthogonal matrix [d, d], reproducible from ``seed``."""
    q, _ = torch.linalg.qr(torch.randn(width, width, generator=torch.Generator().manual_seed(seed)))
    return q


def featurizer_class(name: str) -> type[Featurizer]:
    """A registered featurizer by name, or a Featurizer class by its import path."""
    return lookup(name, FEATURIZERS, Featurizer, "featurizer")
