"""Featurizers: the learned map in which DAS swaps a variable's coordinates (DESIGN.md, "Featurizer").

A featurizer maps a site's state ``h`` [B, d] to features ``z = encode(h)`` [B, d] and back,
``decode(encode(h)) == h``; a variable owns a block of leading feature coordinates
(``SubspaceSwap``). Featurizers register under their ``name`` when their class is defined, and an
``Alignment`` names one (``featurizer: rotation``); a class defined outside the package registers
once its module is imported (``featurizer: mypackage.MyFeaturizer`` imports it).

- ``rotation`` (the default): a learned orthogonal ``W``, ``z = h W``, kept orthogonal by
  ``torch.nn.utils.parametrizations.orthogonal`` (``matrix_exp`` as pyvene, or ``cayley``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from numsym_pl.registry import lookup

FEATURIZERS: dict[str, type["Featurizer"]] = {}


class Featurizer(nn.Module):
    """Base: ``__init__(width, seed, **options)``, ``encode``, ``decode``. A ``linear`` featurizer
    also exposes ``weight`` [d, d] (rows index the state's basis): the swap then computes it once per
    call, and the gradience analysis reads it."""

    name: str = ""
    linear: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # a class names itself; a subclass that does not is not registered
            FEATURIZERS[cls.name] = cls

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def random_orthogonal(width: int, seed: int) -> torch.Tensor:
    """A random orthogonal matrix [d, d], reproducible from ``seed``."""
    q, _ = torch.linalg.qr(torch.randn(width, width, generator=torch.Generator().manual_seed(seed)))
    return q


class Rotation(Featurizer, nn.Linear):
    """A learned rotation: ``z = h W`` with ``W`` orthogonal, started at a random orthogonal matrix.

    Args:
        width: the state's width d.
        seed: seed of the initial rotation.
        orthogonal_map: ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (a linear solve).
    """

    name, linear = "rotation", True

    def __init__(self, width: int, seed: int = 0, orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp"):
        nn.Linear.__init__(self, width, width, bias=False)
        self.orthogonal_map = orthogonal_map
        orthogonal(self, orthogonal_map=orthogonal_map)
        with torch.no_grad():
            self.weight = random_orthogonal(width, seed)

    def encode(self, h):
        return h @ self.weight

    def decode(self, z):
        return z @ self.weight.T


def featurizer_class(name: str) -> type[Featurizer]:
    """A registered featurizer by name, or a Featurizer class by its import path."""
    return lookup(name, FEATURIZERS, Featurizer, "featurizer")
