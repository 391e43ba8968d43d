"""Featurizers: the learned map in which DAS swaps a variable's coordinates (DESIGN.md, "Featurizer").

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
- ``boundless`` (``numsym_pl.das.boundless``): Boundless DAS, a rotation with a learned soft width.
- ``revnet`` (``numsym_pl.das.revnet``): an invertible non-linear map, offered as a *control*.

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

import math
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from numsym_pl.registry import lookup

FEATURIZERS: dict[str, type["Featurizer"]] = {}


class Featurizer(nn.Module):
    """Base: ``__init__(width, seed, **options)``, ``encode``, ``decode`` (see the module's
    docstring for the optional parts). A constructor that takes ``subspace`` is given the number of
    swapped coordinates; one that takes ``orthogonal_map`` is given the search's."""

    name: str = ""
    linear: bool = False
    control: bool = False

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


def random_orthogonal(width: int, seed: int) -> torch.Tensor:
    """A random orthogonal matrix [d, d], reproducible from ``seed``."""
    q, _ = torch.linalg.qr(torch.randn(width, width, generator=torch.Generator().manual_seed(seed)))
    return q


TAYLOR_TERMS = 14  # expm_columns' series length: the tail bound below, and the cost Rotation.columns weighs


def expm_columns(A: torch.Tensor, r: int, steps: int, terms: int = TAYLOR_TERMS) -> torch.Tensor:
    """``matrix_exp(A)[:, :r]`` for a skew-symmetric A [d, d] without the d x d exponential:
    ``steps`` times a ``terms``-term Taylor series of ``A / steps``, applied to the first r unit
    vectors (d^2 r work per term). With ``||A / steps||_2 <= 2`` the series' tail is below 3e-8 of
    the result, float32's own rounding; autograd differentiates the series."""
    d = A.shape[0]
    out = torch.eye(d, r, dtype=A.dtype, device=A.device)
    A = A / steps
    for _ in range(steps):
        term = out
        for j in range(1, terms + 1):
            term = (A @ term) / j
            out = out + term
    return out


class Rotation(Featurizer, nn.Linear):
    """A learned rotation: ``z = h W`` with ``W`` orthogonal, started at a random orthogonal matrix.

    Args:
        width: the state's width d.
        seed: seed of the initial rotation.
        orthogonal_map: ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (a linear solve).
    """

    name, linear = "rotation", True

    def __init__(self, width: int, seed: int = 0, orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp"):
        with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws from the global RNG: leave it alone
            nn.Linear.__init__(self, width, width, bias=False)
        self.orthogonal_map = orthogonal_map
        orthogonal(self, orthogonal_map=orthogonal_map)
        with torch.no_grad():
            self.weight = random_orthogonal(width, seed)

    def encode(self, h):
        return h @ self.weight

    def decode(self, z):
        return z @ self.weight.T

    def columns(self, r: int) -> torch.Tensor:
        """``weight[:, :r]``, all a linear swap of r coordinates uses. Under ``matrix_exp`` with few
        columns it is ``base @ expm_columns(A, r)`` (A: the skew-symmetric matrix the parametrization
        exponentiates): the same to float precision, in d^2 r work instead of the d x d exponential
        and its backward (on a 512-wide MLP site, most of a DAS step's time)."""
        if self.orthogonal_map == "matrix_exp" and r < self.in_features:
            p = self.parametrizations.weight
            X = p.original.tril()
            A = X - X.T
            with torch.no_grad():  # ||A||_2 <= ||A||_F: each step's A / steps has a spectral norm <= 2
                steps = max(1, math.ceil(float(A.norm()) / 2))
            if TAYLOR_TERMS * steps * r < 10 * self.in_features:  # else the d x d exponential costs less
                return p[0].base @ expm_columns(A, r, steps)
        return super().columns(r)


class LowRank(Featurizer, nn.Linear):
    """The swapped columns only: ``W`` [d, k] with orthonormal columns (``parametrizations.orthogonal``
    with Householder reflections), started at the first k columns of the random rotation
    ``rotation`` starts at. Its features are the k swapped coordinates, so it has no ``decode``:
    the swap uses ``weight``.

    Args:
        width: the state's width d.
        subspace: k, the coordinates swapped (given by the swap).
        seed: seed of the initial columns.
    """

    name, linear = "low_rank", True

    def __init__(self, width: int, subspace: int, seed: int = 0):
        # the parametrization completes the assigned columns to a square base with torch.randn: seeded here,
        # so that one seed is one start (and the caller's random stream is left alone)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nn.Linear.__init__(self, subspace, width, bias=False)  # weight [d, k]
            orthogonal(self, orthogonal_map="householder")
            with torch.no_grad():
                self.weight = random_orthogonal(width, seed)[:, :subspace]

    def encode(self, h):
        return h @ self.weight


class PCARotation(Rotation):
    """``rotation`` started at the principal axes of the site's states on the training sources
    (the first column the direction of largest variance), so that a small subspace starts where
    the states vary most."""

    name = "pca_rotation"

    @torch.no_grad()
    def prepare(self, states: torch.Tensor) -> None:
        x = states.float() - states.float().mean(0)
        _, vectors = torch.linalg.eigh(x.T @ x / max(len(x) - 1, 1))  # ascending eigenvalues
        self.weight = vectors.flip(1).to(self.weight.dtype)


def featurizer_class(name: str) -> type[Featurizer]:
    """A registered featurizer by name, or a Featurizer class by its import path."""
    return lookup(name, FEATURIZERS, Featurizer, "featurizer")
