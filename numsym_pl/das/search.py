"""The fit loop of DAS: train a learned swap's featurizer on the training pairs (teacher-forced
cross-entropy on the scored counterfactual tokens, plus ``SearchSettings.cl_weight`` times the
counterfactual-latent loss when one is given, ``das.counterfactual_latents``; Adam under
``SearchSettings.lr_factor``'s schedule), with checks of IIA on a training subset and on the
validation pairs that keep the best featurizer and stop the fit early. Plain PyTorch, no Trainer:
the net is frozen."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from numsym_pl.das.counterfactual_latents import CounterfactualLatents
from numsym_pl.das.interventions.patched import patched_logits_many
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.settings import SearchSettings, autocast
from numsym_pl.seeding import derive


@dataclass
class Fitted:
    """How one featurizer's fit went: the steps taken, every check (``history``: step, lr, the
    training batch's loss, IIA on the training subset and the validation pairs, the validation
    loss), why it stopped (``target``, ``plateau`` or ``budget``) and the step of the check whose
    featurizer it kept (``best_step``; the last check with ``keep: last``). With the
    counterfactual-latent loss, each check also holds the training batch's CL term (``loss_cl``;
    ``loss`` is the cross-entropy alone) and ``cl`` its weight and the pairs' coverage."""

    steps: int = 0
    history: list[dict] = field(default_factory=list)
    stopped: str = "budget"
    best_step: int = 0
    cl: dict | None = None


def take_step(opt: torch.optim.Optimizer, schedule, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss`` and one step of its learning-rate schedule; the rate it used."""
    lr = opt.param_groups[0]["lr"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    schedule.step()
    return lr


class FitTracker:
    """One swap's checks: the best so far (validation IIA, ties to the earlier) and its state, and
    the plateau: the best value of the plateau metric and the checks since it last improved."""

    def __init__(self, settings: SearchSettings):
        self.settings, self.fitted = settings, Fitted()
        self.best_iia, self.best_state, self.stale = -1.0, None, 0
        # the plateau metric, lower is better: the validation loss, or minus the validation IIA
        self.plateau_best = float("inf") if settings.plateau_metric == "loss" else 1.0

    def check(self, swap, row: dict, annealing: bool) -> bool:
        """Record a check; True when the swap's fit is to stop here. A featurizer that anneals
        (``Featurizer.anneal``) is neither kept nor stopped before its annealing ends."""
        s, f = self.settings, self.fitted
        f.history.append(row)
        f.steps = row["step"]
        if annealing:
            return False
        if s.keep == "last" or row["iia_val"] > self.best_iia:
            self.best_iia, f.best_step = row["iia_val"], row["step"]
            self.best_state = copy.deepcopy(swap.state_dict()) if s.keep == "best" else None
        value = row["loss_val"] if s.plateau_metric == "loss" else -row["iia_val"]
        margin = s.plateau_delta * abs(self.plateau_best) if s.plateau_metric == "loss" else s.plateau_delta
        if self.plateau_best == float("inf") or value < self.plateau_best - margin:
            self.plateau_best, self.stale = value, 0
        else:
            self.stale += 1
        if row["iia_train"] >= s.target_iia and row["iia_val"] >= s.target_iia:
            f.stopped = "target"
        elif self.stale >= s.patience:
            f.stopped = "plateau"
        return f.stopped != "budget"

    def finish(self, swap) -> Fitted:
        """The fit's record, the kept featurizer loaded into ``swap``."""
        if self.best_state is not None:
            swap.load_state_dict(self.best_state)
        else:  # the last one: asked for, or every check was annealing
            self.fitted.best_step = self.fitted.steps
        return self.fitted


def fit_rotation(net, swap: SubspaceSwap, site: str, sets: PairSets, settings: SearchSettings,
                 cl: CounterfactualLatents | None = None) -> Fitted:
    """Train ``swap``'s featurizer; it ends holding the kept one (see ``Fitted``). ``cl``: the
    training pairs' CL vectors, which ``settings.cl_weight`` > 0 needs."""
    return fit_rotations(net, [swap], site, sets, settings, cl=cl)[0]


def fit_rotations(net, swaps: Sequence[SubspaceSwap], site: str, sets: PairSets, settings: SearchSettings,
                  bar=None, cl: CounterfactualLatents | None = None) -> list[Fitted]:
    """Train several swaps of one site together, each as ``fit_rotation`` would alone: the same
    batches in the same order, each one's loss on its own chunk of one batched forward (so its
    gradient is its own; Adam's update and the schedule are per parameter group), each stopped by its
    own checks, after which it leaves the batch. ``bar``: a progress bar to advance (one is made
    otherwise). ``cl``: the training pairs' CL vectors (``CounterfactualLatents.of``), needed when
    ``settings.cl_weight`` > 0."""
    if settings.cl_weight > 0 and cl is None:
        raise ValueError("fit_rotations: settings.cl_weight > 0 needs the training pairs' CL vectors (cl=...)")
    cl = cl if settings.cl_weight > 0 else None
    opt = torch.optim.Adam([g for swap in swaps for g in swap.param_groups(settings.lr)], lr=settings.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, settings.lr_factor)
    train, src, cache = sets.pairs["train"], sets.src["train"], sets.cache["train"]
    gen = torch.Generator().manual_seed(derive(settings.seed, "batches"))
    n_check = min(len(train), settings.n_val or 1000)
    tracks = [FitTracker(settings) for _ in swaps]
    active = list(range(len(swaps)))
    own_bar = bar is None
    bar = tqdm(total=settings.max_steps, desc="DAS", disable=not settings.progress, leave=False) if own_bar else bar
    perm = torch.randperm(len(train), generator=gen)
    cursor, step = 0, 0
    while step < settings.max_steps and active:
        annealing = {a: swaps[a].anneal(step, settings.max_steps) for a in active}
        if cursor + settings.batch_size > len(train):
            perm, cursor = torch.randperm(len(train), generator=gen), 0
        idx = perm[cursor: cursor + settings.batch_size].to(src.device)
        cursor += settings.batch_size
        batch = train[idx]
        group = [swaps[a] for a in active]
        with autocast(src.device, settings.precision):
            logits = patched_logits_many(net, group, site, batch, src[idx], None if cache is None else cache[idx])
        target = batch.cf[:, 1:][batch.loss_mask]
        scored = logits.view(len(group), len(batch), *logits.shape[1:])[:, batch.loss_mask].float()  # [S, M, V]
        per_swap = F.cross_entropy(scored.flatten(0, 1), target.repeat(len(group)),
                                   reduction="none").view(len(group), -1).mean(1)
        loss = per_swap.sum() + sum(swap.penalty() for swap in group)
        if cl is not None:  # each swap's patched state at i_t against its pairs' CL vectors
            blocks = None if batch.blocks.all() else batch.blocks
            cl_terms = torch.stack([cl.loss(swap, idx, src[idx], blocks) for swap in group])  # [S]
            loss = loss + settings.cl_weight * cl_terms.sum()
        lr = take_step(opt, schedule, loss)
        step += 1
        bar.update(1)
        if step % settings.eval_every == 0 or step == settings.max_steps:
            iia_train = sets.correct_many(net, group, site, "train", n_check, settings.precision).float().mean(1)
            correct_val, loss_val = sets.scores_many(net, group, site, "val", precision=settings.precision)
            iia_val = correct_val.float().mean(1)
            iia_test = (sets.correct_many(net, group, site, "test", precision=settings.precision).float().mean(1)
                        if settings.monitor_test else None)
            for j, a in enumerate(list(active)):
                row = {"step": step, "lr": lr, "loss": per_swap[j].item(), "iia_train": iia_train[j].item(),
                       "iia_val": iia_val[j].item(), "loss_val": loss_val[j].item(),
                       **({} if iia_test is None else {"iia_test": iia_test[j].item()}),
                       **({} if cl is None else {"loss_cl": cl_terms[j].item()})}
                if tracks[a].check(swaps[a], row, annealing[a]):
                    active.remove(a)
            if len(swaps) == 1:
                bar.set_postfix(loss=f"{per_swap[0].item():.3f}", iia_val=f"{iia_val[0].item():.3f}")
    if own_bar:
        bar.close()
    fitted = [track.finish(swap) for track, swap in zip(tracks, swaps)]
    if cl is not None:
        for f in fitted:
            f.cl = {"weight": settings.cl_weight, "target": settings.cl_target, "coverage": cl.coverage}
    return fitted
