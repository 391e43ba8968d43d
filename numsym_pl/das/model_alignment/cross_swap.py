"""The cross-model swap of MAS: an interchange intervention whose source state comes from one net
and whose target state belongs to another.

Each net has its own featurizer (a ``SubspaceSwap`` of its site's width); the two share the size
of the swapped block. The source state ``h_s`` of net S is encoded with S's featurizer, the target
state ``h_t`` of net T with T's; the first ``swapped`` coordinates of T's features are replaced by
S's, and T's featurizer decodes the result back into T's state:

    z_t[:r] <- encode_S(h_s)[:r];   h_t' = decode_T(z_t)

With linear featurizers (orthonormal columns ``W_S`` [d_S, r], ``W_T`` [d_T, r]) this is
``h_t + (h_s W_S - h_t W_T) W_T^T``, which reads only the r swapped columns of each map. With the
same swap on both sides it is the within-net swap of ``SubspaceSwap``. All arithmetic is fp32
whatever the autocast context; the result is cast back to the target state's dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.errors import ConfigError


class CrossSwap(nn.Module):
    """Swap ``source``'s leading feature coordinates into ``target``'s (see the module docstring).

    Args:
        source: the swap (featurizer) of the net the source state comes from.
        target: the swap (featurizer) of the net the target state belongs to.
    """

    def __init__(self, source: SubspaceSwap, target: SubspaceSwap):
        super().__init__()
        if source.swapped != target.swapped or source.n_blocks != target.n_blocks:
            raise ConfigError(f"mas: the two featurizers swap {source.n_blocks} x {source.subspace} and "
                              f"{target.n_blocks} x {target.subspace} coordinates; a shared subspace needs one size")
        for swap in (source, target):
            if swap.rotation.whole_state:
                raise ConfigError("mas: the full-state swap has no shared subspace between two nets")
        self.source, self.target = source, target

    @property
    def swapped(self) -> int:
        return self.target.swapped

    def forward(self, target: torch.Tensor, source: torch.Tensor, blocks: torch.Tensor | None = None) -> torch.Tensor:
        """target [B, d_T] (net T's state), source [B, d_S] (net S's state) -> patched target [B, d_T].
        ``blocks`` (bool [n_blocks] or [B, n_blocks]) limits the swap to some blocks; default all."""
        with torch.autocast(target.device.type, enabled=False):
            mask = self.target.coordinate_mask(blocks)
            r = self.swapped if mask is None else mask.shape[-1]
            t, s = target.float(), source.float()
            if self.source.linear and self.target.linear:
                w_s, w_t = self.source.columns(r).float(), self.target.columns(r).float()  # [d_S, r], [d_T, r]
                delta = s @ w_s - t @ w_t  # [B, r]: the source's coordinates less the target's
                if mask is not None:
                    delta = torch.where(mask, delta, 0.0) if mask.dtype == torch.bool else delta * mask
                return (t + delta @ w_t.T).to(target.dtype)
            zt, zs = self.target.rotation.encode(t), self.source.rotation.encode(s)
            head = zs[..., :r] if mask is None else (torch.where(mask, zs[..., :r], zt[..., :r])
                                                     if mask.dtype == torch.bool
                                                     else torch.lerp(zt[..., :r], zs[..., :r], mask))
            return self.target.rotation.decode(torch.cat([head, zt[..., r:]], -1)).to(target.dtype)
