"""A numsym_pl net traced by nnsight, every site a module output.

nnsight reads and writes module inputs and outputs. Plain ``nnsight.NNsight(net)`` reaches some of
numsym_pl's sites (a transformer's ``blocks[k-1]`` output is ``resid.k``), but not the recurrent
nets' ``state``: their scan (``models.scan``) computes the cell's maths over every step in one
autograd function and never calls ``net.rnn``. ``Traceable(net)`` gives every site (``net.sites``)
a module of its own, an identity that the site's activation passes through via the net's hook
points (``SequenceModel.hooked``): ``model.sites.<name>`` with the site's dots as underscores
(``resid.1`` -> ``resid_1``, ``head.1.0`` -> ``head_1_0``; ``site_envoy`` does the renaming).

What a site module sees is what the net's hook sees: a transformer's site once, as the whole
sequence [B, L, width]; a recurrent net's site once per step t, as [B, width] (the net runs step by
step while traced), so occurrence t of the module is step t (``tracer.iter[t]``). Setting a site
module's output continues the run from the new value, as ``net.forward_patched`` does. nnsight
serves requests in the order the net runs: within a block, heads come before ``attn``, ``attn``
before ``mlp``, ``mlp`` before ``resid``.

Example: read a transformer's ``resid.1`` and patch it at one position per row, then the same for a
GRU's ``state``, step by step::

    from numsym_pl.bridges.nnsight import patched, site_envoy, traceable

    model = traceable(net)                      # net: a TransformerLM
    with model.trace(tokens):
        resid = site_envoy(model, "resid.1").output.save()   # == net.states(tokens, "resid.1")
    with model.trace(tokens):
        site = site_envoy(model, "resid.1")
        site.output = patched(site.output, positions, vector)
        logits = model.output.save()            # == net.forward_patched(tokens, "resid.1", positions,
                                                #                        lambda s: vector.expand_as(s))
    model = traceable(gru)
    with model.trace(tokens) as tracer:
        for step in tracer.iter[: tokens.shape[1]]:
            site = site_envoy(model, "state")
            site.output = patched(site.output, positions, vector, step)
        logits = model.output.save()

Needs the ``bridges`` extra. nnsight changes the interpreter it is imported into (it adds a
``save`` method to every object and wraps ``torch.Tensor.backward``); import it where that is wanted.
"""

from __future__ import annotations

import torch
from torch import nn

from numsym_pl.models import SequenceModel


def module_name(site: str) -> str:
    """The name of ``site``'s module under ``Traceable.sites``: its dots as underscores."""
    return site.replace(".", "_")


class SiteOutput(nn.Module):
    """The identity, so that a site's activation is a module output nnsight can read and set."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Traceable(nn.Module):
    """``net`` with every site passing through a ``SiteOutput`` module (``sites``); ``forward``
    takes what ``net.forward`` takes and returns its logits."""

    def __init__(self, net: SequenceModel):
        super().__init__()
        self.net = net
        self.sites = nn.ModuleDict({module_name(site): SiteOutput() for site in net.sites})

    def forward(self, tokens: torch.Tensor, **kwargs) -> torch.Tensor:
        modules = {site: self.sites[module_name(site)] for site in self.net.sites}
        through = {site: (lambda x, t, module=module: module(x)) for site, module in modules.items()}
        with self.net.hooked(through):
            return self.net(tokens, **kwargs)


def traceable(net: SequenceModel):
    """``nnsight.NNsight`` of ``Traceable(net)``."""
    import nnsight

    return nnsight.NNsight(Traceable(net))


def site_envoy(model, site: str):
    """The nnsight envoy of ``site``'s module in ``model`` (a ``traceable``)."""
    return getattr(model.sites, module_name(site))


def patched(value: torch.Tensor, positions: torch.Tensor, vector: torch.Tensor,
            step: int | None = None) -> torch.Tensor:
    """``value`` with row b's state at ``positions[b]`` (-1: none) replaced by ``vector`` ([width]
    or [B, width]): ``value`` is a sequence [B, L, width] (``step`` None) or, for a net run step by
    step, the states at ``step`` [B, width]."""
    vector = vector.to(value.dtype).expand(len(value), value.shape[-1])
    if step is None:
        hit = positions[:, None] == torch.arange(value.shape[1], device=value.device)  # [B, L]
        return torch.where(hit[..., None], vector[:, None, :], value)
    return torch.where((positions == step)[:, None], vector, value)
