"""The interface every architecture implements, so that training, DAS and analyses know no
architecture in particular (DESIGN.md, "The model interface")."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from numsym_pl.errors import ConfigError

PatchFn = Callable[[torch.Tensor], torch.Tensor]  # state [B, d] -> patched state [B, d]


class SequenceModel(nn.Module):
    """Base class of the next-token models.

    - ``forward(tokens[B, L]) -> logits[B, L, V]``
    - ``sites``: name -> (width, meaning) of the places DAS may intervene on
    - ``states(tokens, site) -> [B, L, d]``: the site's state at every position
    - ``forward_patched(tokens, site, positions[B], patch_fn) -> logits[B, L, V]``: run the net,
      replace the state at ``(b, positions[b])`` by ``patch_fn(state[B, d])`` and continue from it.
      Logits at positions before ``positions[b]`` are those of the clean run and carry no gradient;
      gradients reach ``patch_fn``'s parameters only through the patched continuation.
    """

    vocab_size: int

    @property
    def sites(self) -> dict[str, tuple[int, str]]:
        raise NotImplementedError

    def site_width(self, site: str) -> int:
        return self.sites[self.check_site(site)][0]

    def check_site(self, site: str) -> str:
        if site not in self.sites:
            raise ConfigError(
                f"site: {type(self).__name__} has no site {site!r}; its sites are {sorted(self.sites)}"
            )
        return site

    def states(self, tokens: torch.Tensor, site: str) -> torch.Tensor:
        raise NotImplementedError

    def forward_patched(self, tokens: torch.Tensor, site: str, positions: torch.Tensor, patch_fn: PatchFn) -> torch.Tensor:
        raise NotImplementedError
