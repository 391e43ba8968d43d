"""Distributed Alignment Search on a frozen net: fit a rotation, measure IIA and the baselines
(the ``das`` intervention of ``numsym_pl.das.protocol``).

Plain PyTorch, no Trainer: the net is deep-copied and frozen, the pairs are generated once from
their own seed, and only the rotation is trained (teacher-forced cross-entropy on the scored
counterfactual tokens). Source states are computed once per pair set, since the net is frozen.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.cause import cause_isolation
from numsym_pl.das.iia import IIA, exact_rows
from numsym_pl.das.intervention import SubspaceSwap
from numsym_pl.das.protocol import AlignmentResult, Intervention
from numsym_pl.das.pairs import PairBatch, make_pairs
from numsym_pl.das.windows import window_positions, with_window
from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import SequenceModel
from numsym_pl.programs import get_program
from numsym_pl.seeding import derive
from numsym_pl.tasks import TaskFamily


@dataclass
class SearchSettings:
    """How to fit and score a rotation (reference: 10k / 1k pairs, Adam 1e-3, batch 128).

    Args:
        n_train: training pairs.
        n_val: validation pairs (early stopping).
        n_test: held-out pairs the reported IIA is measured on.
        max_steps: most optimizer steps.
        batch_size: pairs per step.
        lr: Adam learning rate of the rotation.
        eval_every: steps between IIA checks on the train subset and the validation pairs.
        target_iia: stop once train and validation IIA both reach it.
        patience: stop after this many checks without a validation gain of more than 0.002.
        seed: seed of pairs and rotation initialisation.
        baselines: also score identity, full-state swap and random rotations.
        random_seeds: random rotations (of the alignment's subspace size) scored on the test pairs;
            ``iia_random`` is their mean, ``controls.random_subspace`` holds mean, sd and each value.
        controls: also fit and score the alignment on an untrained net of the same architecture
            and width (``numsym_pl.das.controls``; ``numsym_pl das --controls``, a study's
            ``das: {controls: true}``); doubles the time of an alignment.
        precision: ``32`` or ``bf16`` (autocast for the net; the rotation is always fp32).
        progress: show a progress bar.
        orthogonal_map: ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (cheaper per
            step; another path to the same set of rotations).
    """

    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    max_steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    eval_every: int = 100
    target_iia: float = 0.995
    patience: int = 5
    seed: int = 0
    baselines: bool = True
    random_seeds: int = 5
    controls: bool = False
    precision: str = "32"
    progress: bool = True
    orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp"

    def __post_init__(self):
        if self.random_seeds < 1:
            raise ConfigError(f"settings.random_seeds: must be >= 1, got {self.random_seeds}")


def _autocast(device: torch.device, precision: str):
    if precision in ("32", "32-true", "fp32"):
        return contextlib.nullcontext()
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    raise ConfigError(f"precision: unsupported DAS precision {precision!r}")


EVAL_ROWS_CPU = 256  # rows of one no-grad forward on the CPU (eval_batch)


def eval_batch(device: torch.device | str, swaps: int = 1) -> int:
    """Pairs per no-grad forward (source states, clean caches, scoring): on the CPU about
    ``EVAL_ROWS_CPU`` rows in all, the ``swaps`` batched together included, since batches whose
    states fit the caches run faster (``bench/das_eval_batch.py``); elsewhere 1,000 pairs as before.
    What a pair scores does not depend on it."""
    return max(1, EVAL_ROWS_CPU // swaps) if torch.device(device).type == "cpu" else 1000


@torch.no_grad()
def source_states(net: SequenceModel, pairs: PairBatch, site: str, batch_size: int | None = None,
                  positions: int | str = 1) -> torch.Tensor:
    """The site's state of every source at its ``i_s``: [N, d]; with several ``positions``
    (``Alignment.positions``), at ``i_s - j`` for each offset ``j < P`` of ``pairs.window`` (or of
    ``with_window`` where the pairs carry none): [N, P, d], zero where offset j patches nothing."""
    window, batch_size = None, batch_size or eval_batch(pairs.cf.device)
    if positions != 1:
        window = pairs.window if pairs.window is not None else with_window(pairs, positions).window
    out = []
    for i in range(0, len(pairs), batch_size):
        p = pairs[i: i + batch_size]
        s = net.states(p.source, site)  # [B, Ls, d]
        rows = torch.arange(len(p), device=s.device)
        if window is None:
            out.append(s[rows, p.source_pos].float())
            continue
        valid = window[i: i + batch_size] >= 0
        at = p.source_pos[:, None] - torch.arange(valid.shape[1], device=s.device)  # [B, P]
        out.append(torch.where(valid[..., None], s[rows[:, None], at.clamp(min=0)].float(), 0.0))
    return torch.cat(out)


@torch.no_grad()
def clean_cache(net: SequenceModel, pairs: PairBatch, site: str, batch_size: int | None = None) -> torch.Tensor | None:
    """What the net can reuse of the unpatched counterfactual run below each ``i_t`` (``patch_cache``)."""
    batch_size = batch_size or eval_batch(pairs.cf.device)
    parts = [net.patch_cache(p.cf[:, :-1], site, p.target_pos) for p in (pairs[i: i + batch_size] for i in range(0, len(pairs), batch_size))]
    return None if any(c is None for c in parts) else torch.cat(parts)


def patched_logits(net: SequenceModel, swap: SubspaceSwap, site: str, pairs: PairBatch, src: torch.Tensor,
                   cache: torch.Tensor | None = None) -> torch.Tensor:
    """Logits [B, Lc-1, V] of the net on the counterfactual inputs, patched at ``i_t``."""
    return patched_logits_many(net, [swap], site, pairs, src, cache)


def patched_logits_many(net: SequenceModel, swaps: Sequence[SubspaceSwap], site: str, pairs: PairBatch, src: torch.Tensor,
                        cache: torch.Tensor | None = None) -> torch.Tensor:
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

    if src.dim() == 3:  # several positions (Alignment.positions): one patch per offset, through the hook points
        at = pairs.window if pairs.window is not None else window_positions(pairs, src.shape[1])
        patches = [(rep(at[:, j]), patch_with(src[:, j])) for j in range(src.shape[1])]
        return net.forward_patched_many(rep(pairs.cf[:, :-1]), site, patches)
    return net.forward_patched(rep(pairs.cf[:, :-1]), site, rep(pairs.target_pos), patch_with(src),
                               out_mask=rep(pairs.loss_mask), cache=rep(cache))


@torch.no_grad()
def pair_correct(net, swap, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None, precision: str = "32",
                 cache: torch.Tensor | None = None) -> torch.Tensor:
    """[N] bool: the pair's every scored counterfactual token is predicted exactly (IIA's unit)."""
    return pair_correct_many(net, [swap], site, pairs, src, batch_size, precision, cache)[0]


@torch.no_grad()
def pair_correct_many(net, swaps, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None, precision: str = "32",
                      cache: torch.Tensor | None = None) -> torch.Tensor:
    """[S, N] bool: ``pair_correct`` of every swap, the swaps batched together."""
    out, batch_size = [], batch_size or eval_batch(src.device, len(swaps))
    for i in range(0, len(pairs), batch_size):
        p = pairs[i: i + batch_size]
        with _autocast(src.device, precision):
            logits = patched_logits_many(net, swaps, site, p, src[i: i + batch_size],
                                         None if cache is None else cache[i: i + batch_size])
        out.append(exact_rows(logits, p.cf.repeat(len(swaps), 1), p.loss_mask.repeat(len(swaps), 1)).view(len(swaps), -1))
    return torch.cat(out, 1)


def evaluate(net, swap, site, pairs: PairBatch, src: torch.Tensor, batch_size: int | None = None, precision: str = "32",
             cache: torch.Tensor | None = None) -> IIA:
    """IIA of ``swap`` on ``pairs``, grouped by the value the source carries."""
    metric = IIA(sync_on_compute=False).to(src.device)  # every rank scores the same pairs
    metric.update(pair_correct(net, swap, site, pairs, src, batch_size, precision, cache), pairs.source_value)
    return metric


class PairSets:
    """The train / validation / test pairs of one alignment, their source states and the clean
    runs below each intervention (``clean_cache``), computed once: the net is frozen."""

    def __init__(self, net, task: TaskFamily, alignment: Alignment, settings: SearchSettings, device,
                 pairs: dict[str, PairBatch] | None = None):
        if pairs is None:
            pairs = self.make(task, alignment, settings, device)
        trigger = task.token_roles.get("trigger")
        pairs = {name: with_window(p, alignment.positions, trigger) for name, p in pairs.items()}
        self.pairs, self.positions = pairs, alignment.positions
        self.src = {name: source_states(net, p, alignment.site, positions=self.positions) for name, p in self.pairs.items()}
        # a multi-position swap runs through the hook points, which reuse nothing
        self.cache = {name: clean_cache(net, p, alignment.site) if self.positions == 1 else None
                      for name, p in self.pairs.items()}

    @staticmethod
    def make(task: TaskFamily, alignment: Alignment, settings: SearchSettings, device) -> dict[str, PairBatch]:
        """The pair sets of an alignment's program and variables (the site does not enter)."""
        program = get_program(alignment.program)
        # (size, which variables each pair intervenes on): training and validation pairs take a random
        # subset each, so every block learns its own variable; test pairs intervene on all of them,
        # and, with several variables, on each one alone ("test.<variable>")
        sets = {"train": (settings.n_train, "random"), "val": (settings.n_val, "random"), "test": (settings.n_test, "all")}
        if len(alignment.variables) > 1:
            sets.update({f"test.{v}": (settings.n_test, j) for j, v in enumerate(alignment.variables)})
        # held-out pairs share no (source trial, target trial, i_s, i_t) with the pairs fitted before them
        pairs, seen = {}, []
        for name, (n, which) in sets.items():
            exclude = torch.cat(seen) if seen else None
            pairs[name] = make_pairs(task, program, alignment.variables, n, seed=derive(settings.seed, "pairs", name),
                                     subsets=which, floor=name.startswith("test"), exclude=exclude).to(device)
            if name in ("train", "val"):
                seen.append(pairs[name].key.cpu())
        return pairs

    def correct(self, net, swap, site: str, name: str, n: int | None = None, precision: str = "32") -> torch.Tensor:
        """[n] bool: which of the first ``n`` pairs of a set (all by default) ``swap`` gets exactly right."""
        return self.correct_many(net, [swap], site, name, n, precision)[0]

    def correct_many(self, net, swaps, site: str, name: str, n: int | None = None, precision: str = "32") -> torch.Tensor:
        """[S, n] bool: ``correct`` for several swaps, batched."""
        cache = self.cache[name]
        return pair_correct_many(net, swaps, site, self.pairs[name][:n], self.src[name][:n], precision=precision,
                                 cache=None if cache is None else cache[:n])

    def score(self, net, swap, site: str, name: str, n: int | None = None, precision: str = "32",
              correct: torch.Tensor | None = None) -> IIA:
        """IIA of ``swap`` on the first ``n`` pairs of a set, grouped by the value the source carries
        (from ``correct`` when the pairs were already scored)."""
        correct = self.correct(net, swap, site, name, n, precision) if correct is None else correct
        metric = IIA(sync_on_compute=False).to(correct.device)  # every rank scores the same pairs
        metric.update(correct, self.pairs[name].source_value[:n])
        return metric


def fit_rotation(net, swap: SubspaceSwap, site: str, sets: PairSets, settings: SearchSettings) -> tuple[int, list[dict]]:
    """Train ``swap``'s rotation; returns (steps taken, history of checks)."""
    return fit_rotations(net, [swap], site, sets, settings)[0]


def fit_rotations(net, swaps: Sequence[SubspaceSwap], site: str, sets: PairSets, settings: SearchSettings,
                  bar=None) -> list[tuple[int, list[dict]]]:
    """Train several swaps of one site together, each as ``fit_rotation`` would alone: the same
    batches in the same order, each one's loss on its own chunk of one batched forward (so its
    gradient is its own; Adam's update is per parameter), each stopped by its own checks, after
    which it leaves the batch. ``bar``: a progress bar to advance (one is made otherwise)."""
    opt = torch.optim.Adam([g for swap in swaps for g in swap.param_groups(settings.lr)], lr=settings.lr)
    train, src, cache = sets.pairs["train"], sets.src["train"], sets.cache["train"]
    gen = torch.Generator().manual_seed(derive(settings.seed, "batches"))
    n_check = min(len(train), settings.n_val or 1000)
    S = len(swaps)
    histories, best, stale, steps = [[] for _ in swaps], [-1.0] * S, [0] * S, [0] * S
    active = list(range(S))
    own_bar = bar is None
    bar = tqdm(total=settings.max_steps, desc="DAS", disable=not settings.progress, leave=False) if own_bar else bar
    perm = torch.randperm(len(train), generator=gen)
    cursor, step = 0, 0
    while step < settings.max_steps and active:
        annealing = {a: swaps[a].anneal(step, settings.max_steps) for a in active}  # one that anneals is not stopped early
        if cursor + settings.batch_size > len(train):
            perm, cursor = torch.randperm(len(train), generator=gen), 0
        idx = perm[cursor: cursor + settings.batch_size].to(src.device)
        cursor += settings.batch_size
        batch = train[idx]
        group = [swaps[a] for a in active]
        with _autocast(src.device, settings.precision):
            logits = patched_logits_many(net, group, site, batch, src[idx], None if cache is None else cache[idx])
        target = batch.cf[:, 1:][batch.loss_mask]
        scored = logits.view(len(group), len(batch), *logits.shape[1:])[:, batch.loss_mask].float()  # [S, M, V]
        per_swap = F.cross_entropy(scored.flatten(0, 1), target.repeat(len(group)), reduction="none").view(len(group), -1).mean(1)
        loss = per_swap.sum() + sum(swap.penalty() for swap in group)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        bar.update(1)
        if step % settings.eval_every == 0 or step == settings.max_steps:
            iia_train = sets.correct_many(net, group, site, "train", n_check, settings.precision).float().mean(1)
            iia_val = sets.correct_many(net, group, site, "val", precision=settings.precision).float().mean(1)
            for j, a in enumerate(list(active)):
                histories[a].append({"step": step, "loss": per_swap[j].item(), "iia_train": iia_train[j].item(),
                                     "iia_val": iia_val[j].item()})
                steps[a] = step
                if annealing[a]:
                    continue
                done = iia_train[j] >= settings.target_iia and iia_val[j] >= settings.target_iia
                best[a], stale[a] = (iia_val[j].item(), 0) if iia_val[j] > best[a] + 0.002 else (best[a], stale[a] + 1)
                if done or stale[a] >= settings.patience:
                    active.remove(a)
            if S == 1:
                bar.set_postfix(loss=f"{per_swap[0].item():.3f}", iia_val=f"{iia_val[0].item():.3f}")
    if own_bar:
        bar.close()
    return [(steps[a], histories[a]) for a in range(S)]


def no_intervention(target: torch.Tensor, source: torch.Tensor, blocks=None) -> torch.Tensor:
    """The swap that changes nothing: the net's own run on the counterfactual inputs (the floor)."""
    return target


class Interchange(Intervention):
    """DAS: learn a rotation whose first ``subspace`` coordinates per variable carry the program's
    variable(s), by interchange interventions on counterfactual pairs; scored on held-out pairs
    with the raw-neuron, full-state and random-rotation baselines."""

    name, learned = "das", True

    def check(self, net, alignment) -> None:
        # building the swap checks that the blocks fit the site and that its featurizer can take them
        new_swap(net, alignment, SearchSettings())

    def run(self, net, task, alignment, settings, init_state=None):
        t0 = time.perf_counter()
        device = next(net.parameters()).device
        sets = PairSets(net, task, alignment, settings, device)
        swap = new_swap(net, alignment, settings, sets, init_state).to(device)
        steps, history = fit_rotation(net, swap, alignment.site, sets, settings)
        return score_swap(net, alignment, settings, sets, swap, steps, history, time.perf_counter() - t0), swap


def new_swap(net, alignment, settings: SearchSettings, sets: PairSets | None = None, init_state: dict | None = None) -> SubspaceSwap:
    """The learned swap an alignment starts from: its featurizer at the alignment's site and size,
    loaded from ``init_state`` (a warm start) or else prepared on ``sets``' training sources (PCA)."""
    swap = SubspaceSwap(net.site_width(alignment.site), alignment.subspace, len(alignment.variables), "rotation",
                        seed=derive(settings.seed, "rotation"), orthogonal_map=settings.orthogonal_map,
                        featurizer=alignment.featurizer)
    if init_state is not None:
        swap.load_state_dict(init_state)
    elif sets is not None:
        swap.prepare(sets.src["train"].flatten(0, -2))
    return swap


def score_swap(net, alignment, settings: SearchSettings, sets: PairSets, swap: SubspaceSwap, steps: int, history: list[dict],
               seconds: float, floor: torch.Tensor | None = None) -> AlignmentResult:
    """The result of a fitted swap: IIA on the test pairs with its floor (``floor``: the unpatched
    net's [N] correctness, when already known), each variable alone, the baselines and the
    random-subspace control."""
    width, site, n_blocks = net.site_width(alignment.site), alignment.site, len(alignment.variables)
    device = next(net.parameters()).device
    test = lambda s, name="test", correct=None: sets.score(net, s, site, name, precision=settings.precision, correct=correct)
    pairs = sets.pairs["test"]
    # one patched run per test set gives IIA's unit and the cause / isolation split
    scored = {name: cause_isolation(net, swap, site, sets, name, precision=settings.precision)
              for name in sets.pairs if name.startswith("test")}
    ok = scored["test"][1]
    metric = test(swap, correct=ok)
    if floor is None:
        floor = sets.correct(net, no_intervention, site, "test", precision=settings.precision)  # the unpatched net
    alone = {v: test(swap, f"test.{v}", scored[f"test.{v}"][1]).compute().item()
             for v in alignment.variables if f"test.{v}" in sets.pairs}
    cause = {"all": scored["test"][0], **{v: scored[f"test.{v}"][0] for v in alignment.variables if f"test.{v}" in scored}}
    base, controls = {}, None
    if settings.baselines:
        for kind in ("identity", "full"):
            b = SubspaceSwap(width, alignment.subspace, n_blocks, kind, seed=derive(settings.seed, "baseline")).to(device)
            base[kind] = test(b).compute().item()
        # seed 0 is the single random rotation scored before there were several
        seeds = [derive(settings.seed, "baseline")] + [derive(settings.seed, "baseline", i) for i in range(1, settings.random_seeds)]
        values = [test(SubspaceSwap(width, alignment.subspace, n_blocks, "random", seed=s).to(device)).compute().item()
                  for s in seeds]
        base["random"] = float(np.mean(values))
        controls = {"random_subspace": {"mean": base["random"], "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                        "values": values, "n_pairs": len(pairs)}}
    # the fit always ends on a check, so the last history row already holds the final validation IIA
    iia_val = history[-1]["iia_val"] if history else test(swap, "val").compute().item()
    effective = pairs.effective
    learned = swap.report()
    return AlignmentResult(alignment.identity, iia=metric.compute().item(), n=len(pairs),
                           per_count=metric.per_group(), seconds=seconds, baselines=base,
                           iia_none=floor.float().mean().item(), n_effective=int(effective.sum()),
                           iia_effective=ok[effective].float().mean().item() if effective.any() else None,
                           fit={"steps": steps, "iia_val": iia_val, "history": history,
                                **({"featurizer": learned} if learned else {})}, iia_alone=alone or None,
                           controls=controls, cause_isolation=cause)
