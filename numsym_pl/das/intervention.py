"""Interchange interventions in a learned feature basis (SPEC §4).

``z = encode(h)``; the first ``subspace * n_blocks`` coordinates of the target's ``z`` are replaced
by the source's (one block of ``subspace`` coordinates per intervened variable, blocks disjoint);
``decode`` maps back. The learned map is a featurizer (``numsym_pl.das.featurizers``; the default
``rotation`` is ``z = h W``, ``W`` orthogonal). The baselines go through the same code:

- ``rotation``: the featurizer learned (named by ``featurizer``, default the orthogonal ``W``);
- ``identity``: ``W = I``, i.e. swap raw neurons;
- ``random``: a fixed random orthogonal ``W``;
- ``full``: the whole state is swapped (``subspace`` = width).

All arithmetic is fp32 whatever the autocast context; the result is cast back to the state's dtype.
"""

from __future__ import annotations

from typing import Literal

import inspect

import torch
from torch import nn

from numsym_pl.das.featurizers import featurizer_class, random_orthogonal
from numsym_pl.errors import ConfigError

Kind = Literal["rotation", "identity", "random", "full"]
KINDS: tuple[str, ...] = ("rotation", "identity", "random", "full")


class SubspaceSwap(nn.Module):
    """Swap ``n_blocks`` blocks of ``subspace`` coordinates of a rotated state.

    Args:
        width: width d of the intervened state.
        subspace: coordinates per block (per variable).
        n_blocks: number of disjoint blocks (variables intervened at once).
        kind: ``rotation`` (learned), ``identity``, ``random`` or ``full``.
        seed: seed of the initial (``rotation``) or fixed (``random``) orthogonal matrix.
        orthogonal_map: how ``parametrizations.orthogonal`` keeps the learned W orthogonal:
            ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (a linear solve, cheaper);
            passed to featurizers that take it.
        featurizer: the learned map of ``kind: rotation`` (a registered name or a class path).
    """

    def __init__(self, width: int, subspace: int, n_blocks: int = 1, kind: Kind = "rotation", seed: int = 0,
                 orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp", featurizer: str = "rotation"):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"intervention: unknown kind {kind!r}; choose one of {KINDS}")
        if kind == "full":
            subspace, n_blocks = width, 1
        if subspace < 1 or subspace * n_blocks > width:
            raise ConfigError(f"subspace: {n_blocks} block(s) of {subspace} coordinates do not fit a state of "
                              f"width {width}")
        self.width, self.subspace, self.n_blocks, self.kind = width, subspace, n_blocks, kind
        self.orthogonal_map, self.featurizer = orthogonal_map, featurizer
        if kind == "rotation":
            cls = featurizer_class(featurizer)
            # the class's import path: what a fresh process needs to rebuild a featurizer defined elsewhere
            self.featurizer_path = f"{cls.__module__}.{cls.__qualname__}"
            options = {"orthogonal_map": orthogonal_map} if "orthogonal_map" in inspect.signature(cls).parameters else {}
            self.rotation = cls(width, seed=seed, **options)
        else:
            self.register_buffer("fixed", torch.eye(width) if kind in ("identity", "full") else random_orthogonal(width, seed))
        self.linear = kind != "rotation" or self.rotation.linear

    @property
    def weight(self) -> torch.Tensor:
        """The linear map W [d, d] (rows index the original basis); a non-linear featurizer has none."""
        if not self.linear:
            raise ConfigError(f"featurizer: {self.featurizer!r} is not linear; this needs a linear map (a rotation)")
        return self.rotation.weight if self.kind == "rotation" else self.fixed

    @property
    def swapped(self) -> int:
        return self.subspace * self.n_blocks

    def forward(self, target: torch.Tensor, source: torch.Tensor, blocks: torch.Tensor | None = None) -> torch.Tensor:
        """target, source [B, d] -> patched target [B, d]. ``blocks`` (bool [n_blocks] or
        [B, n_blocks]) limits the swap to some blocks; default all."""
        with torch.autocast(target.device.type, enabled=False):
            linear = self.linear
            W = self.weight.float() if linear else None  # computed once: a parametrized W costs a matrix_exp
            encode = (lambda h: h.float() @ W) if linear else (lambda h: self.rotation.encode(h.float()))
            zt, zs = encode(target), encode(source)  # [B, d]
            swap = torch.zeros(self.width, dtype=torch.bool, device=zt.device)
            swap[: self.swapped] = True
            if blocks is not None:
                per_coord = blocks.repeat_interleave(self.subspace, -1)  # [..., swapped]
                swap = swap.expand(*per_coord.shape[:-1], -1).clone()
                swap[..., : self.swapped] = per_coord
            z = torch.where(swap, zs, zt)
            return (z @ W.T if linear else self.rotation.decode(z)).to(target.dtype)
