"""Interchange interventions in a rotated basis (SPEC §4).

``z = h W`` with ``W`` orthogonal; the first ``subspace * n_blocks`` coordinates of the target's
``z`` are replaced by the source's (one block of ``subspace`` coordinates per intervened variable,
blocks disjoint); ``W^T`` maps back. The baselines go through the same code:

- ``rotation``: ``W`` learned, kept orthogonal by ``torch.nn.utils.parametrizations.orthogonal``;
- ``identity``: ``W = I``, i.e. swap raw neurons;
- ``random``: a fixed random orthogonal ``W``;
- ``full``: the whole state is swapped (``subspace`` = width).

All arithmetic is fp32 whatever the autocast context; the result is cast back to the state's dtype.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

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
            ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (a linear solve, cheaper).
    """

    def __init__(self, width: int, subspace: int, n_blocks: int = 1, kind: Kind = "rotation", seed: int = 0,
                 orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp"):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"intervention: unknown kind {kind!r}; choose one of {KINDS}")
        if kind == "full":
            subspace, n_blocks = width, 1
        if subspace < 1 or subspace * n_blocks > width:
            raise ConfigError(f"subspace: {n_blocks} block(s) of {subspace} coordinates do not fit a state of "
                              f"width {width}")
        self.width, self.subspace, self.n_blocks, self.kind = width, subspace, n_blocks, kind
        self.orthogonal_map = orthogonal_map
        gen = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(width, width, generator=gen))
        if kind == "rotation":
            self.rotation = orthogonal(nn.Linear(width, width, bias=False), orthogonal_map=orthogonal_map)
            with torch.no_grad():
                self.rotation.weight = q
        else:
            self.register_buffer("fixed", torch.eye(width) if kind in ("identity", "full") else q)

    @property
    def weight(self) -> torch.Tensor:
        """The orthogonal matrix W [d, d] (rows index the original basis)."""
        return self.rotation.weight if self.kind == "rotation" else self.fixed

    @property
    def swapped(self) -> int:
        return self.subspace * self.n_blocks

    def forward(self, target: torch.Tensor, source: torch.Tensor, blocks: torch.Tensor | None = None) -> torch.Tensor:
        """target, source [B, d] -> patched target [B, d]. ``blocks`` (bool [n_blocks] or
        [B, n_blocks]) limits the swap to some blocks; default all."""
        with torch.autocast(target.device.type, enabled=False):
            W = self.weight.float()
            zt, zs = target.float() @ W, source.float() @ W  # [B, d]
            swap = torch.zeros(self.width, dtype=torch.bool, device=zt.device)
            swap[: self.swapped] = True
            if blocks is not None:
                per_coord = blocks.repeat_interleave(self.subspace, -1)  # [..., swapped]
                swap = swap.expand(*per_coord.shape[:-1], -1).clone()
                swap[..., : self.swapped] = per_coord
            z = torch.where(swap, zs, zt)
            return (z @ W.T).to(target.dtype)
