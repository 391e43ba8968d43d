"""Drift of patched states: is a state an interchange intervention writes one the net could have
had? (Makelov et al. 2024; Grant et al. 2025, "Addressing divergent representations from causal
interventions on neural networks".)

**Natural and patched states.** For each pair, the *natural* state is the site's state of its
unpatched counterfactual run at ``i_t``, which is the target trial's own state there
(``natural.target_states``); since ``i_t`` is drawn uniformly over a trial's intervenable
positions, these states sample what the net naturally holds at the site at the positions DAS
patches ("the same site and step": the same site, at the intervenable positions of the task's
trials, without conditioning on the position index). The *patched* state of a pair is
``swap(natural state, source state at i_s, blocks)``: what the swap writes at ``i_t``. A swap at
several positions is measured by its patch at ``i_t`` applied to the unpatched state there.

The pairs are the first ``max_states`` training pairs. They are drawn without regard to the other
sets, so their sources and targets follow one distribution, and a full-state swap (a source's
state) is a natural state in the sense measured here. The held-out sets are not: they are drawn to
differ in content from the pairs before them, which on a task with few distinct trials drops the
commonest pairs and shifts sources and targets apart (Same-Object: about half the candidate test
pairs are dropped, and the test sources lie later in their trials than the test targets).

**Comparing them.** The pairs (at most ``max_states``) are split at random into a reference half
R and a held-out half H; every measure compares a cloud of H's states with R's natural states,
averaged over ``splits`` such halvings (an EMD between a few hundred states varies by tens of per
cent from one sample to the next), and is reported as the ratio of the patched cloud's value to
that of H's natural states, so that **1 is as natural as natural states** and the ratio reads the
same at any width or scale:

- ``knn``: the mean Euclidean distance of a state to its ``k`` nearest natural states in R;
- ``mahalanobis``: the mean Mahalanobis distance to R under R's covariance, shrunk towards its
  mean variance (``(1 - shrinkage) C + shrinkage * tr(C) / d * I``), so that directions in which
  natural states never vary count heavily but finitely;
- ``emd``: the exact optimal-transport (earth mover's, Euclidean ground cost) distance between the
  cloud and R's natural states, on at most ``max_emd`` states each (POT's ``ot.emd2``).

The learned swap is measured beside the full-state swap (the whole state of another natural trial:
natural by construction, near 1) and a random rotation of the same subspace size. A patched state
of H is compared with R alone, never with its own pair's unpatched state.
"""

from __future__ import annotations

import numpy as np
import ot
import torch

from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.natural import target_states
from numsym_pl.seeding import derive

#: the measures, and the swaps each is reported for (the learned one and two baselines)
MEASURES = ("knn", "mahalanobis", "emd")
SWAPS = ("das", "full", "random")


def knn_distance(query: torch.Tensor, reference: torch.Tensor, k: int) -> torch.Tensor:
    """[M] the mean Euclidean distance of each query state to its ``k`` nearest reference states."""
    k = min(k, len(reference))
    dist = torch.cdist(query, reference, compute_mode="donot_use_mm_for_euclid_dist")  # exact 0 for a repeated state
    return dist.topk(k, dim=1, largest=False).values.mean(1)


def mahalanobis(query: torch.Tensor, reference: torch.Tensor, shrinkage: float) -> torch.Tensor:
    """[M] the Mahalanobis distance of each query state to the reference cloud, under its covariance
    shrunk towards its mean variance (see the module's docstring)."""
    ref = reference.double()
    mean = ref.mean(0)
    cov = torch.cov(ref.T).reshape(ref.shape[1], ref.shape[1])
    scale = torch.trace(cov) / cov.shape[0]
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    cov = (1 - shrinkage) * cov + shrinkage * max(scale.item(), 1e-12) * eye
    diff = query.double() - mean
    return (diff * torch.linalg.solve(cov, diff.T).T).sum(1).clamp(min=0).sqrt().float()


def emd(a: torch.Tensor, b: torch.Tensor) -> float:
    """The exact earth mover's distance (Euclidean ground cost, uniform weights) between two clouds."""
    x, y = a.double().cpu().numpy(), b.double().cpu().numpy()
    cost = ot.dist(x, y, metric="euclidean")
    return float(ot.emd2(np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y)), cost, numItermax=1_000_000))


def drift(natural: torch.Tensor, patched: dict[str, torch.Tensor], seed: int = 0, k: int = 5,
          max_states: int = 1000, max_emd: int = 500, shrinkage: float = 0.01, splits: int = 4) -> dict:
    """The drift of each patched cloud (``patched[name]`` [N, d], row i patched from ``natural[i]``)
    from the natural states [N, d] (see the module's docstring), each measure averaged over
    ``splits`` random halvings of the pairs: ``{"natural": {measure: value of H's natural states},
    name: {measure: ratio}, "k", "n_reference", "n_held_out", "splits", "shrinkage"}``; a ratio is
    None where the natural value is 0."""
    gen = torch.Generator().manual_seed(seed)
    n = min(max_states, len(natural))
    half = n // 2
    n_emd = min(max_emd, half)
    names = ["natural", *patched]
    values = {name: {m: 0.0 for m in MEASURES} for name in names}
    for _ in range(splits):
        order = torch.randperm(len(natural), generator=gen)[:n].to(natural.device)
        ref_idx, held_idx = order[:half], order[half: 2 * half]
        reference = natural[ref_idx].float()
        clouds = {"natural": natural[held_idx].float(), **{name: p[held_idx].float() for name, p in patched.items()}}
        for name, x in clouds.items():
            values[name]["knn"] += knn_distance(x, reference, k).mean().item() / splits
            values[name]["mahalanobis"] += mahalanobis(x, reference, shrinkage).mean().item() / splits
            values[name]["emd"] += emd(x[:n_emd], reference[:n_emd]) / splits
    base = values["natural"]
    ratio = lambda v, m: v / base[m] if base[m] > 0 else None
    return {"natural": base, **{name: {m: ratio(values[name][m], m) for m in MEASURES} for name in patched},
            "k": k, "n_reference": half, "n_held_out": half, "splits": splits, "shrinkage": shrinkage}


@torch.no_grad()
def swap_drift(net, alignment, sets, swap: SubspaceSwap, settings, name: str = "train",
               max_states: int = 1000) -> dict:
    """``drift`` of the learned ``swap``, the full-state swap and the first random rotation (seeded as
    the random baseline) on the first ``max_states`` pairs of ``sets.pairs[name]``."""
    pairs, src = sets.pairs[name][:max_states], sets.src[name][:max_states]
    source = src if src.dim() == 2 else src[:, 0]  # several positions: the patch at i_t (offset 0)
    target = target_states(net, pairs, alignment.site)
    blocks = None if pairs.blocks.all() else pairs.blocks
    width, subspace, n_blocks = net.site_width(alignment.site), swap.subspace, swap.n_blocks
    baseline = lambda kind: SubspaceSwap(width, subspace, n_blocks, kind,
                                         seed=derive(settings.seed, "baseline")).to(target.device)
    swaps = {"das": swap, "full": baseline("full"), "random": baseline("random")}
    patched = {name: s(target, source, blocks).float() for name, s in swaps.items()}
    return {**drift(target, patched, seed=derive(settings.seed, "drift"), max_states=max_states), "pairs": name}
