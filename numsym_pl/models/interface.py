"""The interface every architecture implements, so that training, DAS and analyses know no
architecture in particular (DESIGN.md, "The model interface")."""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Callable, NamedTuple

import torch
from torch import nn

from numsym_pl.errors import ConfigError
from numsym_pl.registry import import_class

PatchFn = Callable[[torch.Tensor], torch.Tensor]  # state [B, d] -> patched state [B, d]
#: a hook point's function: (activation, step) -> activation; the activation is the whole sequence
#: [B, L, d] with step None, or the state at step t [B, d] for a net that runs step by step
HookFn = Callable[[torch.Tensor, "int | None"], torch.Tensor]


class Site(NamedTuple):
    """A named hook point: its width d, what it is, and the shape its hook sees."""

    width: int
    meaning: str
    shape: str = "[B, L, d]"


def last_masked(mask: torch.Tensor) -> torch.Tensor:
    """Each row's last True position of ``mask`` [B, L] bool; -1 for a row without one: [B]."""
    return torch.where(mask, torch.arange(mask.shape[1], device=mask.device), -1).amax(1)


class SequenceModel(nn.Module):
    """Base class of the next-token models.

    - ``forward(tokens[B, L]) -> logits[B, L, V]``; ``forward(tokens, out_mask=mask[B, L])`` returns
      only the logits at the masked positions, [M, V] (training skips the decoder on padding)
    - ``sites``: name -> ``Site(width, meaning, shape)``: the named hook points. ``forward`` passes
      each site's activation through ``self.hook(name, x, t)`` (the whole sequence ``[B, L, d]``
      with ``t=None``, or the state at step ``t`` ``[B, d]`` for a net that runs step by step), and
      that is all an architecture must do: the base class builds ``states``, ``forward_patched``
      and ``forward_patched_many`` on the hook points (``*_by_hooks``). Fast paths override them
      and are tested against these.
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
    - ``capabilities``: what else the net offers, declared: ``attention_mask`` (``forward`` takes
      ``attn_mask`` / ``mask_layers``), ``carried_state`` (the state at t is all that step t + 1
      reads, so patching it steers everything after: what repeated phase flips need).
    """

    vocab_size: int
    #: the architecture family reports compare by (``recurrent``, ``transformer``; a new family names its own)
    family: str = "other"
    capabilities: frozenset[str] = frozenset()
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
                self.__dict__["init_config"] = {"class_path": f"{cls.__module__}.{cls.__qualname__}",
                                                "init_args": args_}
            init(self, *args, **kw)

        cls.__init__ = recording_init

    @property
    def sites(self) -> dict[str, Site]:
        raise NotImplementedError

    @property
    def default_site(self) -> str:
        """The site an alignment without one uses (the first of ``sites`` unless overridden)."""
        return next(iter(self.sites))

    def site_width(self, site: str) -> int:
        return self.sites[self.check_site(site)].width

    def check_site(self, site: str) -> str:
        if site not in self.sites:
            raise ConfigError(
                f"site: {type(self).__name__} has no site {site!r}; its sites are {sorted(self.sites)}"
            )
        return site

    # ---- hook points ------------------------------------------------------------------------------
    def hook(self, site: str, x: torch.Tensor, t: int | None = None) -> torch.Tensor:
        """Where ``forward`` passes the activation of ``site``; the identity unless hooks are set."""
        fns = self.__dict__.get("_hook_fns")
        fn = fns.get(site) if fns else None
        return x if fn is None else fn(x, t)

    @property
    def hooks_active(self) -> bool:
        """True inside ``hooked``: a net with a fast path that skips hook points must take the
        path that calls them."""
        return bool(self.__dict__.get("_hook_fns"))

    @contextlib.contextmanager
    def hooked(self, fns: dict[str, HookFn]):
        """Run the net with these hook functions at these sites."""
        for site in fns:
            self.check_site(site)
        old = self.__dict__.get("_hook_fns")
        self.__dict__["_hook_fns"] = dict(fns)
        try:
            yield self
        finally:
            self.__dict__["_hook_fns"] = old

    # ---- what the hook points give every architecture -------------------------------------------------
    def states_by_hooks(self, tokens: torch.Tensor, site: str) -> torch.Tensor:
        got: list[torch.Tensor] = []

        def capture(x, t):
            got.append(x)
            return x

        with self.hooked({site: capture}):
            self.forward(tokens)
        return got[0] if len(got) == 1 and got[0].dim() == 3 else torch.stack(got, 1)  # [B, L, d]

    def forward_patched_many_by_hooks(self, tokens: torch.Tensor, site: str,
                                      patches: list[tuple[torch.Tensor, PatchFn]],
                                      out_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, L, V] with several patches in one sequence, applied in order: each
        ``(positions[B], patch_fn)`` replaces the site's state at ``(b, positions[b])`` (-1: no patch
        in row b) by ``patch_fn(state)``, and the net continues from it."""
        B = len(tokens)
        rows = torch.arange(B, device=tokens.device)

        def patch(x, t):
            for positions, fn in patches:
                if t is None:  # the whole sequence at once: [B, L, d]
                    at = positions.clamp(min=0)
                    hit = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
                    hit[rows, at] = positions >= 0
                    new = fn(x[rows, at]).to(x.dtype)  # [B, d]
                    x = torch.where(hit[..., None], new[:, None, :].expand_as(x), x)
                elif (positions == t).any():  # step t of a step-by-step net: [B, d]
                    x = torch.where((positions == t)[:, None], fn(x).to(x.dtype), x)
            return x

        with self.hooked({site: patch}):
            logits = self.forward(tokens)
        return logits if out_mask is None else logits * out_mask[..., None]

    def forward_patched_by_hooks(self, tokens: torch.Tensor, site: str, positions: torch.Tensor, patch_fn: PatchFn,
                                 out_mask: torch.Tensor | None = None,
                                 cache: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_patched_many_by_hooks(tokens, site, [(positions, patch_fn)], out_mask)

    def forward_spliced_by_hooks(self, tokens: torch.Tensor, site: str, mask: torch.Tensor,
                                 replacement: torch.Tensor) -> torch.Tensor:
        """Logits [B, L, V] with the site's states at every ``mask`` position replaced by
        ``replacement`` [B, L, d]."""
        def splice(x, t):
            if t is None:
                return torch.where(mask[..., None], replacement.to(x.dtype), x)
            return torch.where(mask[:, t, None], replacement[:, t].to(x.dtype), x)

        with torch.no_grad(), self.hooked({site: splice}):
            return self.forward(tokens)

    # ---- the interface (overridden by fast paths) ---------------------------------------------------------
    def states(self, tokens: torch.Tensor, site: str) -> torch.Tensor:
        return self.states_by_hooks(tokens, site)

    def forward_patched(self, tokens: torch.Tensor, site: str, positions: torch.Tensor, patch_fn: PatchFn,
                        out_mask: torch.Tensor | None = None, cache: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_patched_by_hooks(tokens, site, positions, patch_fn, out_mask)

    def forward_patched_many(self, tokens: torch.Tensor, site: str,
                             patches: list[tuple[torch.Tensor, PatchFn]]) -> torch.Tensor:
        return self.forward_patched_many_by_hooks(tokens, site, patches)

    def patch_cache(self, tokens: torch.Tensor, site: str, positions: torch.Tensor) -> torch.Tensor | None:
        return None

    def forward_spliced(self, tokens: torch.Tensor, site: str, mask: torch.Tensor,
                        replacement: torch.Tensor) -> torch.Tensor:
        """Run the net with the site's states at ``mask`` ([B, L] bool, at least one per row)
        replaced by ``replacement`` ([B, L, d]) and continue; logits [B, L, V]."""
        return self.forward_spliced_by_hooks(tokens, site, mask, replacement)


def build_net(config: dict) -> SequenceModel:
    """Instantiate a net from ``{"class_path": ..., "init_args": {...}}`` (its ``init_config``)."""
    return import_class(config["class_path"], SequenceModel, "net")(**config.get("init_args", {}))


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
