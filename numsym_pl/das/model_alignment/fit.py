"""The joint fit of MAS: both nets' featurizers trained together, by one optimizer, on the
interchange directions between the nets (``a->b``, ``b->a``) and, by default, within each
(``a->a``, ``b->b``), so that each featurizer is also a DAS featurizer of its own net.

Every step draws one batch of training pairs (the same pairs in every direction), runs each
direction on its target net (teacher-forced cross-entropy on the scored counterfactual tokens, as
DAS), and steps Adam on the mean of the directions' losses plus the featurizers' penalties, under
``SearchSettings.lr_factor``'s schedule. The checks, the featurizers kept and the stops are DAS's
(``das.search``'s tracker), on the mean over the trained directions of IIA on a training subset,
of validation IIA and of validation loss; each check also records every direction's own figures.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from numsym_pl.das.model_alignment.pair import DIRECTIONS, NetPair, direction_name
from numsym_pl.das.search import Fitted, FitTracker, take_step
from numsym_pl.das.settings import SearchSettings, autocast
from numsym_pl.seeding import derive


def trained_directions(within: bool) -> tuple[tuple[int, int], ...]:
    """The directions the fit trains on: across the nets, and within each when ``within``."""
    return DIRECTIONS if within else DIRECTIONS[:2]


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _check(pair: NetPair, directions: Sequence[tuple[int, int]], n_check: int, monitor_test: bool) -> dict:
    """Every direction's IIA on the first ``n_check`` training pairs, its validation IIA and loss
    (and test IIA with ``monitor_test``), by direction name."""
    out = {}
    for s, t in directions:
        train, _ = pair.scores(s, t, "train", n_check, loss=False)
        val, loss_val = pair.scores(s, t, "val")
        row = {"iia_train": train.float().mean().item(), "iia_val": val.float().mean().item(),
               "loss_val": loss_val.item()}
        if monitor_test:
            row["iia_test"] = pair.scores(s, t, "test", loss=False)[0].float().mean().item()
        out[direction_name(s, t)] = row
    return out


def fit_jointly(pair: NetPair, settings: SearchSettings, within: bool = True, bar=None) -> Fitted:
    """Train both featurizers of ``pair`` on the trained directions (``trained_directions``); they
    end holding the kept ones (``Fitted``: steps, every check, why it stopped, the kept step). A
    check's ``iia_train``, ``iia_val`` and ``loss_val`` are the means over the trained directions,
    and ``directions`` holds each one's; ``loss`` is the training batch's mean loss. ``bar``: a
    progress bar to advance (one is made otherwise)."""
    directions = trained_directions(within)
    opt = torch.optim.Adam(pair.param_groups(settings.lr), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, settings.lr_factor)
    train = pair.pairs["train"]
    device = pair.sets[0].src["train"].device
    gen = torch.Generator().manual_seed(derive(settings.seed, "batches"))
    n_check = min(len(train), settings.n_val or 1000)
    track, kept = FitTracker(settings), nn.ModuleList(pair.swaps)
    own_bar = bar is None
    bar = tqdm(total=settings.max_steps, desc="MAS", disable=not settings.progress, leave=False) if own_bar else bar
    perm, cursor, step = torch.randperm(len(train), generator=gen), 0, 0
    while step < settings.max_steps:
        annealing = pair.anneal(step, settings.max_steps)
        if cursor + settings.batch_size > len(train):
            perm, cursor = torch.randperm(len(train), generator=gen), 0
        idx = perm[cursor: cursor + settings.batch_size].to(device)
        cursor += settings.batch_size
        batch = train[idx]
        target = batch.cf[:, 1:][batch.loss_mask]
        losses = []
        for s, t in directions:
            with autocast(device, settings.precision):
                logits = pair.logits(s, t, batch, idx)
            losses.append(F.cross_entropy(logits[batch.loss_mask].float(), target))
        loss = torch.stack(losses).mean() + pair.penalty()
        lr = take_step(opt, schedule, loss)
        step += 1
        bar.update(1)
        if step % settings.eval_every == 0 or step == settings.max_steps:
            each = _check(pair, directions, n_check, settings.monitor_test)
            for (s, t), part in zip(directions, losses):
                each[direction_name(s, t)]["loss"] = part.item()
            row = {"step": step, "lr": lr, "loss": _mean(r["loss"] for r in each.values()),
                   **{k: _mean(r[k] for r in each.values()) for k in ("iia_train", "iia_val", "loss_val")},
                   "directions": each}
            if own_bar:
                bar.set_postfix(loss=f"{row['loss']:.3f}", iia_val=f"{row['iia_val']:.3f}")
            if track.check(kept, row, annealing):
                break
    if own_bar:
        bar.close()
    return track.finish(kept)
