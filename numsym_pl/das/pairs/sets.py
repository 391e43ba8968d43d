"""The train / validation / test pairs of one alignment with what the frozen net gives once for
all of them: each source's state at the site (``source_states``) and the clean runs below each
intervention (``clean_cache``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from numsym_pl.das.iia import IIA
from numsym_pl.das.interventions.patched import pair_correct_many, pair_scores_many
from numsym_pl.das.pairs.counterfactual import PairBatch, make_pairs
from numsym_pl.das.pairs.windows import with_window
from numsym_pl.das.settings import SearchSettings, eval_batch
from numsym_pl.models.interface import SequenceModel
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily

if TYPE_CHECKING:  # the alignment holds its intervention, which makes these sets
    from numsym_pl.das.alignment import Alignment


@torch.no_grad()
def source_states(net: SequenceModel, pairs: PairBatch, site: str, batch_size: int | None = None,
                  positions: int | str = 1) -> torch.Tensor:
    """The site's state of every source at its ``i_s``: [N, d]; with several ``positions``
    (``Interchange.positions``), at ``i_s - j`` for each offset ``j < P`` of ``pairs.window`` (or of
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
    parts = [net.patch_cache(p.cf[:, :-1], site, p.target_pos)
             for p in (pairs[i: i + batch_size] for i in range(0, len(pairs), batch_size))]
    return None if any(c is None for c in parts) else torch.cat(parts)


class PairSets:
    """The train / validation / test pairs of one alignment, their source states and the clean
    runs below each intervention (``clean_cache``), computed once: the net is frozen. ``value_map``:
    the permuted values every set's pairs write (``make``; the null)."""

    def __init__(self, net, task: TaskFamily, alignment: Alignment, settings: SearchSettings, device,
                 pairs: dict[str, PairBatch] | None = None, value_map: dict | None = None):
        if pairs is None:
            pairs = self.make(task, alignment, settings, device, value_map)
        # an intervention that swaps at one position only need not say so
        trigger, positions = task.token_roles.get("trigger"), getattr(alignment.intervention, "positions", 1)
        pairs = {name: with_window(p, positions, trigger) for name, p in pairs.items()}
        self.pairs, self.positions = pairs, positions
        self.src = {name: source_states(net, p, alignment.site, positions=self.positions)
                    for name, p in self.pairs.items()}
        # a multi-position swap runs through the hook points, which reuse nothing
        self.cache = {name: clean_cache(net, p, alignment.site) if self.positions == 1 else None
                      for name, p in self.pairs.items()}

    @property
    def removed(self) -> dict[str, float]:
        """Per held-out set, the share of its candidate pairs dropped as repeats, in content, of a
        pair of the sets drawn before it (``PairBatch.removed``)."""
        return {name: p.removed for name, p in self.pairs.items() if p.removed is not None}

    @staticmethod
    def make(task: TaskFamily, alignment: Alignment, settings: SearchSettings, device,
             value_map: dict | None = None) -> dict[str, PairBatch]:
        """The pair sets of an alignment's program and variables (the site does not enter);
        ``value_map``: ``make_pairs``' permuted values, the same for every set."""
        program = alignment.program_object()
        # (size, which variables each pair intervenes on): training and validation pairs take a random
        # subset each, so every block learns its own variable; test pairs intervene on all of them,
        # and, with several variables, on each one alone ("test.<variable>")
        sets = {"train": (settings.n_train, "random"), "val": (settings.n_val, "random"),
                "test": (settings.n_test, "all")}
        if len(alignment.variables) > 1:
            sets.update({f"test.{v}": (settings.n_test, j) for j, v in enumerate(alignment.variables)})
        # held-out pairs are none of the pairs before them in what an interchange sees (``pair_keys``):
        # validation pairs none of the training pairs, test pairs none of either
        pairs, seen = {}, []
        for name, (n, which) in sets.items():
            exclude = torch.cat(seen) if seen else None
            pairs[name] = make_pairs(task, program, alignment.variables, n, seed=derive(settings.seed, "pairs", name),
                                     subsets=which, floor=name.startswith("test"), exclude=exclude,
                                     value_map=value_map).to(device)
            if name in ("train", "val"):
                seen.append(pairs[name].key.cpu())
        return pairs

    def correct(self, net, swap, site: str, name: str, n: int | None = None, precision: str = "32") -> torch.Tensor:
        """[n] bool: which of the first ``n`` pairs of a set (all by default) ``swap`` gets exactly right."""
        return self.correct_many(net, [swap], site, name, n, precision)[0]

    def correct_many(self, net, swaps, site: str, name: str, n: int | None = None,
                     precision: str = "32") -> torch.Tensor:
        """[S, n] bool: ``correct`` for several swaps, batched."""
        cache = self.cache[name]
        return pair_correct_many(net, swaps, site, self.pairs[name][:n], self.src[name][:n], precision=precision,
                                 cache=None if cache is None else cache[:n])

    def scores_many(self, net, swaps, site: str, name: str, n: int | None = None,
                    precision: str = "32") -> tuple[torch.Tensor, torch.Tensor]:
        """([S, n] bool: ``correct`` for several swaps, [S] their cross-entropy per scored token)."""
        cache = self.cache[name]
        return pair_scores_many(net, swaps, site, self.pairs[name][:n], self.src[name][:n], precision=precision,
                                cache=None if cache is None else cache[:n])

    def score(self, net, swap, site: str, name: str, n: int | None = None, precision: str = "32",
              correct: torch.Tensor | None = None) -> IIA:
        """IIA of ``swap`` on the first ``n`` pairs of a set, grouped by the value the source carries
        (from ``correct`` when the pairs were already scored)."""
        correct = self.correct(net, swap, site, name, n, precision) if correct is None else correct
        metric = IIA(sync_on_compute=False).to(correct.device)  # every rank scores the same pairs
        metric.update(correct, self.pairs[name].source_value[:n])
        return metric
