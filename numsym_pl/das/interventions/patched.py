"""The patched net: logits of the counterfactual inputs with a swap applied at the target
position(s), and which pairs it gets exactly right (IIA's unit)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from numsym_pl.das.iia import IIA, exact_rows
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import PairBatch
from numsym_pl.das.pairs.windows import window_positions
from numsym_pl.das.settings import autocast, eval_batch
from numsym_pl.models.interface import SequenceModel


def no_intervention(target: torch.Tensor, source: torch.Tensor, blocks=None) -> torch.Tensor:
    """The swap that changes nothing: the net's own run on the counterfactual inputs (the floor)."""
    return target


def patched_logits(net: SequenceModel, swap: SubspaceSwap, site: str, pairs: PairBatch, src: torch.Tensor,
                   cache: torch.Tensor | None = None) -> torch.Tensor:
    """Logits [B, Lc-1, V] of the net on the counterfactual inputs, patched at ``i_t``."""
    return patched_logits_many(net, [swap], site, pairs, src, cache)


def patched_logits_many(net: SequenceModel, swaps: Sequence[SubspaceSwap], site: str, pairs: PairBatch,
                        src: torch.Tensor, cache: torch.Tensor | None = None) -> torch.Tensor:
    """Logits [S * B, Lc-1, V]: the pairs run once per swap in one batched forward, chunk ``s``
    (rows ``s*B`` to ``(s+1)*B``) patched by ``swaps[s]``; the frozen net makes each chunk's logits,
    and so each swap's gradient, what it would be alone."""
    # pairs that intervene on every variable need no per-row block mask (and the full-state baseline
    # has a single block): only training and validation pairs with variable subsets carry one
    blocks = None if pairs.blocks.all() else pairs.blocks
    S, B = len(swaps), len(pairs)
    rep = (lambda x: x) if S == 1 else (lambda x: None if x is None else x.repeat(S, *[1] * (x.dim() - 1)))

    def patch_with(source):  # each chunk of rows by its own swap, from the source states ``source`` [B, d]
        if S == 1:
            return lambda h: swaps[0](h, source, blocks)
        return lambda h: torch.cat([swap(chunk, source, blocks) for swap, chunk in zip(swaps, h.split(B))])

    if src.dim() == 3:  # several positions (Interchange.positions): one patch per offset, through the hook points
        at = pairs.window if pairs.window is not None else window_positions(pairs, src.shape[1])
        patches = [(rep(at[:, j]), patch_with(src[:, j])) for j in range(src.shape[1])]
        return net.forward_patched_many(rep(pairs.cf[:, :-1]), site, patches)
    return net.forward_patched(rep(pairs.cf[:, :-1]), site, rep(pairs.target_pos), patch_with(src),
                               out_mask=rep(pairs.loss_mask), cache=rep(cache))


@torch.no_grad()
def pair_correct(net, swap, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None,
                 precision: str = "32", cache: torch.Tensor | None = None) -> torch.Tensor:
    """[N] bool: the pair's every scored counterfactual token is predicted exactly (IIA's unit)."""
    return pair_correct_many(net, [swap], site, pairs, src, batch_size, precision, cache)[0]


@torch.no_grad()
def pair_correct_many(net, swaps, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None,
                      precision: str = "32", cache: torch.Tensor | None = None) -> torch.Tensor:
    """[S, N] bool: ``pair_correct`` of every swap, the swaps batched together."""
    return pair_scores_many(net, swaps, site, pairs, src, batch_size, precision, cache, loss=False)[0]


@torch.no_grad()
def pair_scores_many(net, swaps, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None,
                     precision: str = "32", cache: torch.Tensor | None = None,
                     loss: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([S, N] bool: ``pair_correct`` of every swap, [S]: each swap's cross-entropy per scored
    token over the pairs, or None without ``loss``), the swaps batched together."""
    out, nll, batch_size = [], [], batch_size or eval_batch(src.device, len(swaps))
    for i in range(0, len(pairs), batch_size):
        p = pairs[i: i + batch_size]
        with autocast(src.device, precision):
            logits = patched_logits_many(net, swaps, site, p, src[i: i + batch_size],
                                         None if cache is None else cache[i: i + batch_size])
        out.append(exact_rows(logits, p.cf.repeat(len(swaps), 1),
                              p.loss_mask.repeat(len(swaps), 1)).view(len(swaps), -1))
        if loss:  # the validation checks' plateau; scoring needs the argmax alone
            scored = logits.view(len(swaps), len(p), *logits.shape[1:])[:, p.loss_mask].float()  # [S, M, V]
            target = p.cf[:, 1:][p.loss_mask]
            nll.append(F.cross_entropy(scored.flatten(0, 1), target.repeat(len(swaps)),
                                       reduction="none").view(len(swaps), -1))
    # one mean over every token, whatever the chunks
    return torch.cat(out, 1), torch.cat(nll, 1).mean(1).cpu() if loss else None


def evaluate(net, swap, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None, precision: str = "32",
             cache: torch.Tensor | None = None) -> IIA:
    """IIA of ``swap`` on ``pairs``, grouped by the value the source carries."""
    metric = IIA(sync_on_compute=False).to(src.device)  # every rank scores the same pairs
    metric.update(pair_correct(net, swap, site, pairs, src, batch_size, precision, cache), pairs.source_value)
    return metric
