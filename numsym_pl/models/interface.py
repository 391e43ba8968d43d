"""The interface every architecture implements, so that training, DAS and analyses know no
architecture in particular (DESIGN.md, "The model interface")."""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Callable

import torch
from torch import nn

from numsym_pl.errors import ConfigError

PatchFn = Callable[[torch.Tensor], torch.Tensor]  # state [B, d] -> patched state [B, d]


def last_masked(mask: torch.Tensor) -> torch.Tensor:
    """Each row's last True position of ``mask`` [B, L] bool; -1 for a row without one: [B]."""
    return torch.where(mask, torch.arange(mask.shape[1], device=mask.device), -1).amax(1)


class SequenceModel(nn.Module):
    """Base class of the next-token models.

    - ``forward(tokens[B, L]) -> logits[B, L, V]``; ``forward(tokens, out_mask=mask[B, L])`` returns
      only the logits at the masked positions, [M, V] (training skips the decoder on padding)
    - ``sites``: name -> (width, meaning) of the places DAS may intervene on
    - ``states(tokens, site) -> [B, L, d]``: the site's state at every position
    - ``forward_patched(tokens, site, positions[B], patch_fn) -> logits[B, L, V]``: run the net,
      replace the state at ``(b, positions[b])`` by ``patch_fn(state[B, d])`` and continue from it.
      Logits at positions before ``positions[b]`` are those of the clean run and carry no gradient;
      gradients reach ``patch_fn``'s parameters only through the patched continuation. An optional
      ``out_mask`` ([B, L] bool) asks for those logits only (the rest are 0), so work past each
      row's last needed position and the decoder elsewhere can be skipped (the DAS hot path).
    - ``patch_cache(tokens, site, positions)``: the clean run below the patch that ``forward_patched``
      may reuse (``cache=``) when it patches the same tokens and positions again with an
      ``out_mask`` at or after each position (DAS: once per pair set, not once per step); None if
      the net has nothing to reuse. Row i of the cache belongs to row i of the tokens.
    """

    vocab_size: int
    #: the architecture family reports compare by (``recurrent``, ``transformer``; a new family names its own)
    family: str = "other"
    #: True when ``forward`` takes ``attn_mask`` / ``mask_layers`` (attention manipulation)
    attention_hook: bool = False
    init_config: dict  # {"class_path", "init_args"}: how to build this net again (set on construction)

    def __init_subclass__(cls, **kwargs):
        """Record each net's constructor arguments, so checkpoints can store the net as plain data."""
        super().__init_subclass__(**kwargs)
        init = cls.__init__

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            if "init_config" not in self.__dict__:  # the outermost subclass records
                bound = inspect.signature(init).bind(self, *args, **kw)
                bound.apply_defaults()
                args_ = {k: v for k, v in bound.arguments.items() if k != "self"}
                self.__dict__["init_config"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": args_}
            init(self, *args, **kw)

        cls.__init__ = recording_init

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

    def forward_patched(self, tokens: torch.Tensor, site: str, positions: torch.Tensor, patch_fn: PatchFn,
                        out_mask: torch.Tensor | None = None, cache: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def patch_cache(self, tokens: torch.Tensor, site: str, positions: torch.Tensor) -> torch.Tensor | None:
        return None

    def forward_spliced(self, tokens: torch.Tensor, site: str, mask: torch.Tensor, replacement: torch.Tensor) -> torch.Tensor:
        """Run the net with the site's states at ``mask`` ([B, L] bool, at least one per row)
        replaced by ``replacement`` ([B, L, d]) and continue; logits [B, L, V]. The default, exact
        for nets whose future depends on the last state only (recurrent nets), patches each row's
        last masked position; logits at earlier masked positions are the clean run's."""
        last = last_masked(mask)
        rows = torch.arange(len(tokens), device=tokens.device)
        return self.forward_patched(tokens, site, last, lambda h: replacement[rows, last].to(h.dtype))


def build_net(config: dict) -> SequenceModel:
    """Instantiate a net from ``{"class_path": ..., "init_args": {...}}`` (its ``init_config``)."""
    module, _, name = config["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return cls(**config.get("init_args", {}))


def net_mismatch(theirs: dict | None, ours: dict | None) -> str | None:
    """Why a checkpoint's net (``{"class_path", "init_args"}``) cannot be loaded into ours, or None.
    Arguments ours leaves unset (None, e.g. a vocab_size linked later) do not count."""
    if not isinstance(theirs, dict) or not isinstance(ours, dict) or not theirs or not ours:
        return None
    a, b = theirs.get("init_args") or {}, ours.get("init_args") or {}
    differs = {k for k in a.keys() & b.keys() if b[k] is not None and a[k] != b[k]}
    name = lambda c: c.get("class_path", "?").rsplit(".", 1)[-1]
    if name(theirs) != name(ours) or differs:
        return f"it holds a {name(theirs)} with {a}, but this run builds a {name(ours)} with {b}"
    return None
