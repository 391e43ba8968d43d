"""The subspace swap: an interchange intervention in a learned feature basis.

``z = encode(h)``; the first ``subspace * n_blocks`` coordinates of the target's ``z`` are replaced
by the source's (one block of ``subspace`` coordinates per intervened variable, blocks disjoint);
``decode`` maps back. The learned map is a featurizer (``numsym_pl.das.featurizers``; the default
``rotation`` is ``z = h W``, ``W`` orthogonal). The baselines go through the same code:

- ``rotation``: the featurizer learned (named by ``featurizer``, default the orthogonal ``W``);
- ``identity``: ``W = I``, i.e. swap raw neurons;
- ``random``: a fixed random orthogonal ``W``;
- ``full``: the whole state is swapped (``subspace`` = width).

A linear featurizer swaps through its columns, ``h_t + ((h_s - h_t) W_r * m) W_r^T``, which equals
the swap in the full feature basis when ``W`` is orthogonal and costs O(d r) instead of O(d^2); a
non-linear one encodes, swaps and decodes. All arithmetic is fp32 whatever the autocast context;
the result is cast back to the state's dtype.
"""

from __future__ import annotations

import inspect
from typing import Literal

import torch
from torch import nn

from numsym_pl.das.featurizers import featurizer_class
from numsym_pl.das.featurizers.fixed import BASELINE_MAPS
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
        baseline, cls = BASELINE_MAPS.get(kind), None
        if baseline is not None:
            self.rotation = baseline(width, seed)
            if self.rotation.whole_state:
                subspace, n_blocks = width, 1
        else:
            cls = featurizer_class(featurizer)
            # the class's import path: what a fresh process needs to rebuild a featurizer defined elsewhere
            self.featurizer_path = f"{cls.__module__}.{cls.__qualname__}"
            if getattr(cls, "learns_width", False) and n_blocks > 1:
                raise ConfigError(f"featurizer: {cls.name!r} learns one width, so it aligns one variable at a time; "
                                  f"got {n_blocks} blocks")
        if subspace < 1 or subspace * n_blocks > width:
            raise ConfigError(f"subspace: {n_blocks} block(s) of {subspace} coordinates do not fit a state of "
                              f"width {width}")
        self.width, self.subspace, self.n_blocks, self.kind = width, subspace, n_blocks, kind
        self.orthogonal_map, self.featurizer = orthogonal_map, featurizer
        if cls is not None:
            accepts = inspect.signature(cls).parameters
            options = {k: v for k, v in (("orthogonal_map", orthogonal_map), ("subspace", self.swapped))
                       if k in accepts}
            self.rotation = cls(width, seed=seed, **options)
        self.linear = self.rotation.linear

    @property
    def weight(self) -> torch.Tensor:
        """The linear map W [d, d] (rows index the original basis); a non-linear featurizer has none."""
        if not self.linear:
            raise ConfigError(f"featurizer: {self.featurizer!r} is not linear; this needs a linear map (a rotation)")
        return self.rotation.weight

    def columns(self, r: int) -> torch.Tensor:
        """The first r columns of ``weight`` [d, r] (the featurizer's ``columns``: a rotation computes
        only those when it can)."""
        return self.rotation.columns(r)

    @property
    def swapped(self) -> int:
        return self.subspace * self.n_blocks

    @property
    def learned(self):
        """The featurizer being fitted; None for a baseline's fixed map."""
        return None if self.rotation.fixed else self.rotation

    def coordinate_mask(self, blocks: torch.Tensor | None = None) -> torch.Tensor | None:
        """Which leading feature coordinates the swap takes from the source: None for all of the
        first ``swapped``, bool [..., swapped] for ``blocks`` per row, or a featurizer's learned
        float mask [r]."""
        learned = None if self.learned is None else self.learned.mask(self.swapped)
        if learned is not None:
            return learned if blocks is None else learned * blocks[..., :1].float()
        return None if blocks is None else blocks.repeat_interleave(self.subspace, -1)

    def forward(self, target: torch.Tensor, source: torch.Tensor, blocks: torch.Tensor | None = None) -> torch.Tensor:
        """target, source [B, d] -> patched target [B, d]. ``blocks`` (bool [n_blocks] or
        [B, n_blocks]) limits the swap to some blocks; default all."""
        with torch.autocast(target.device.type, enabled=False):
            if self.rotation.whole_state:  # exactly the source's state
                return (source.to(target.dtype, copy=True) if blocks is None
                        else torch.where(blocks[..., :1], source, target))
            mask = self.coordinate_mask(blocks)
            r = self.swapped if mask is None else mask.shape[-1]
            t, s = target.float(), source.float()
            if self.linear:  # t + ((s - t) W_r * m) W_r^T: the swap in the rotated basis, on its r columns only
                W = self.columns(r).float()  # computed once: a parametrized W costs a matrix_exp
                delta = (s - t) @ W
                if mask is not None:
                    delta = torch.where(mask, delta, 0.0) if mask.dtype == torch.bool else delta * mask
                return (t + delta @ W.T).to(target.dtype)
            zt, zs = self.rotation.encode(t), self.rotation.encode(s)
            head = zs[..., :r] if mask is None else (torch.where(mask, zs[..., :r], zt[..., :r])
                                                     if mask.dtype == torch.bool
                                                     else torch.lerp(zt[..., :r], zs[..., :r], mask))
            return self.rotation.decode(torch.cat([head, zt[..., r:]], -1)).to(target.dtype)

    # ---- what the fit asks of the featurizer (nothing for the fixed baselines) ----------------------
    def prepare(self, states: torch.Tensor) -> None:
        if self.learned is not None:
            self.learned.prepare(states)

    def start_at(self, axes: torch.Tensor) -> bool:
        """Start the learned featurizer from ``axes`` where it can (``Featurizer.start_at``)."""
        return self.learned is not None and self.learned.start_at(axes)

    def penalty(self):
        return 0.0 if self.learned is None else self.learned.penalty()

    def anneal(self, step: int, max_steps: int) -> bool:
        return False if self.learned is None else bool(self.learned.anneal(step, max_steps))

    def report(self) -> dict:
        return {} if self.learned is None else self.learned.report()

    def param_groups(self, lr: float) -> list[dict]:
        return [] if self.learned is None else self.learned.param_groups(lr)

    @property
    def control(self) -> bool:
        """The featurizer asks for the untrained-net control beside every alignment."""
        return self.learned is not None and self.learned.control
