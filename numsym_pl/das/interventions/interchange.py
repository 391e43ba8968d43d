"""The interchange intervention (DAS): learn a featurizer whose first ``subspace`` coordinates per
variable carry the program's variable(s), by interchange interventions on counterfactual pairs;
scored on held-out pairs with the raw-neuron, full-state and random-rotation baselines, and the
drift of the states it patches (``das.drift``).

Plain PyTorch, no Trainer: the net is deep-copied and frozen, the pairs are generated once from
their own seed, and only the featurizer is trained (``das.search``). Source states are computed
once per pair set, since the net is frozen.
"""

from __future__ import annotations

import time
from typing import Literal, Union

import numpy as np
import torch

from numsym_pl.das.counterfactual_latents import CounterfactualLatents
from numsym_pl.das.drift import swap_drift
from numsym_pl.das.featurizers import featurizer_class
from numsym_pl.das.featurizers.base import principal_axes
from numsym_pl.das.interventions.base import Intervention
from numsym_pl.das.interventions.cause import cause_isolation
from numsym_pl.das.interventions.patched import no_intervention
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.record import AlignmentResult
from numsym_pl.das.search import Fitted, fit_rotation
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.registry import class_path
from numsym_pl.seeding import derive


class Interchange(Intervention):
    """DAS: learn a featurizer whose first ``subspace`` coordinates per variable carry the
    program's variable(s), by interchange interventions on counterfactual pairs; scored on held-out
    pairs with the raw-neuron, full-state and random-rotation baselines.

    Args:
        subspace: coordinates per variable (several variables get disjoint blocks).
        featurizer: the learned map the coordinates are swapped in: ``rotation`` (d x d
            orthogonal), ``low_rank`` (d x k orthonormal columns), ``pca_rotation`` (started at the
            site's principal axes), ``boundless`` (learns its width; one variable), ``revnet``
            (invertible non-linear; always also fitted on an untrained net), any registered
            ``Featurizer``, or its class path.
        positions: how many positions the subspace is swapped at: ``1`` swaps it at ``i_t`` alone;
            ``k`` at the last k positions up to ``i_t``, each taking the source's state at the same
            distance before ``i_s`` (``i_t - j`` <- ``i_s - j``, as far as both sequences reach);
            ``all`` at every position up to ``i_t``; ``demo`` at ``i_t`` and at every offset whose
            target and source positions both lie in their trial's input (demo) phase
            (``das.pairs.windows.demo_window``). For transformers, whose later tokens read a variable
            from every earlier position; more than one runs through the hook points.
    """

    name, aliases, learned = "das", ("interchange",), True

    def __init__(self, subspace: int = 16, featurizer: str = "rotation",
                 positions: Union[int, Literal["all", "demo"]] = 1):
        if isinstance(subspace, bool) or not isinstance(subspace, int) or subspace < 1:
            raise ConfigError(f"subspace: an integer >= 1, got {subspace!r}")
        if positions not in ("all", "demo") and (isinstance(positions, bool) or not isinstance(positions, int)
                                                 or positions < 1):
            raise ConfigError(f"positions: an integer >= 1, 'all' or 'demo', got {positions!r}")
        cls = featurizer_class(featurizer)
        # the short name for reports, the class path for a process that has not imported the class
        self.subspace, self.featurizer, self.positions = subspace, cls.name, positions
        self.featurizer_path = class_path(cls)

    def config(self) -> dict:
        out = super().config()
        out["init_args"]["featurizer"] = self.featurizer_path
        return out

    def identity(self, alignment) -> dict:
        return {"intervention": self.name, "site": alignment.site, "featurizer": self.featurizer,
                "subspace": self.subspace, "layers": None, "span": None,
                **({"positions": self.positions} if self.positions != 1 else {})}

    def key(self, alignment) -> str:
        learned = "" if self.featurizer == "rotation" else f"~{self.featurizer}"
        where = "" if self.positions == 1 else f"@{self.positions}"
        return f"{alignment.program}.{'+'.join(alignment.variables)}/{alignment.site or 'default_site'}{where}{learned}"

    def with_subspace(self, subspace: int) -> "Interchange":
        """The same intervention at another subspace size."""
        return Interchange(subspace, self.featurizer_path, self.positions)

    def check(self, net, alignment) -> None:
        # building the swap checks that the blocks fit the site and that its featurizer can take them
        new_swap(net, alignment, SearchSettings())

    def run(self, net, task, alignment, settings, init_state=None, value_map=None):
        """``value_map``: permuted values written in place of the source's (``pairs/permuted.py``; the null)."""
        t0 = time.perf_counter()
        device = next(net.parameters()).device
        sets = PairSets(net, task, alignment, settings, device, value_map=value_map)
        swap = new_swap(net, alignment, settings, sets, init_state).to(device)
        cl = (CounterfactualLatents.of(net, task, alignment, sets, value_map=value_map, target=settings.cl_target)
              if settings.cl_weight > 0 else None)
        fitted = fit_rotation(net, swap, alignment.site, sets, settings, cl=cl)
        return score_swap(net, alignment, settings, sets, swap, fitted, time.perf_counter() - t0), swap


def new_swap(net, alignment, settings: SearchSettings, sets: PairSets | None = None,
             init_state: dict | None = None) -> SubspaceSwap:
    """The learned swap an alignment starts from: its featurizer at the alignment's site and size,
    loaded from ``init_state`` (a warm start), or else started at the principal axes of ``sets``'
    training sources (``settings.start``) and prepared on them (``Featurizer.prepare``)."""
    how = alignment.intervention
    swap = SubspaceSwap(net.site_width(alignment.site), how.subspace, len(alignment.variables), "rotation",
                        seed=derive(settings.seed, "rotation"), orthogonal_map=settings.orthogonal_map,
                        featurizer=how.featurizer_path)
    if init_state is not None:
        swap.load_state_dict(init_state)
    elif sets is not None:
        states = sets.src["train"].flatten(0, -2)
        if settings.start == "principal_axes":
            swap.start_at(principal_axes(states))
        swap.prepare(states)
    return swap


def score_swap(net, alignment, settings: SearchSettings, sets: PairSets, swap: SubspaceSwap, fitted: Fitted | None,
               seconds: float, floor: torch.Tensor | None = None) -> AlignmentResult:
    """The result of a fitted swap (``fitted``: how its fit went; None when nothing was fitted):
    IIA on the test pairs with its floor (``floor``: the unpatched net's [N] correctness, when
    already known), each variable alone, the baselines and the random-subspace control, and the
    drift of the states it patches (``settings.drift``)."""
    width, site, n_blocks = net.site_width(alignment.site), alignment.site, len(alignment.variables)
    device = next(net.parameters()).device
    test = lambda s, name="test", correct=None: sets.score(net, s, site, name, precision=settings.precision,
                                                           correct=correct)
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
    cause = {"all": scored["test"][0],
             **{v: scored[f"test.{v}"][0] for v in alignment.variables if f"test.{v}" in scored}}
    base, controls = {}, None
    if settings.baselines:
        for kind in ("identity", "full"):
            b = SubspaceSwap(width, alignment.intervention.subspace, n_blocks, kind,
                             seed=derive(settings.seed, "baseline")).to(device)
            base[kind] = test(b).compute().item()
        # the first random rotation is seeded as the single random baseline, derive(seed, "baseline")
        seeds = [derive(settings.seed, "baseline")] + [derive(settings.seed, "baseline", i)
                                                       for i in range(1, settings.random_seeds)]
        values = [test(SubspaceSwap(width, alignment.intervention.subspace, n_blocks, "random",
                                    seed=s).to(device)).compute().item()
                  for s in seeds]
        base["random"] = float(np.mean(values))
        controls = {"random_subspace": {"mean": base["random"],
                                        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                                        "values": values, "n_pairs": len(pairs)}}
    # the fit always ends on a check, so the kept featurizer's check holds its validation IIA
    fitted = fitted or Fitted()
    kept = [row["iia_val"] for row in fitted.history if row["step"] == fitted.best_step]
    iia_val = kept[0] if kept else test(swap, "val").compute().item()
    effective = pairs.effective
    learned = swap.report()
    return AlignmentResult(alignment.identity, iia=metric.compute().item(), n=len(pairs),
                           per_count=metric.per_group(), seconds=seconds, baselines=base,
                           iia_none=floor.float().mean().item(), n_effective=int(effective.sum()),
                           iia_effective=ok[effective].float().mean().item() if effective.any() else None,
                           fit={"steps": fitted.steps, "iia_val": iia_val, "history": fitted.history,
                                "stopped": fitted.stopped if fitted.history else None, "best_step": fitted.best_step,
                                **({"featurizer": learned} if learned else {}),
                                **({"cl": fitted.cl} if fitted.cl else {})}, iia_alone=alone or None,
                           controls=controls, cause_isolation=cause, pairs_removed=sets.removed or None,
                           drift=swap_drift(net, alignment, sets, swap, settings) if settings.drift else None)
