"""``align_models``: Model Alignment Search (MAS; Grant et al., 2025) of one program variable
between two trained nets, as one JSON-able record.

The two nets get one featurizer each (``NetPair``) and one set of counterfactual pairs; both
featurizers are fitted jointly on the interchanges across the nets and within each (``fit``),
and every direction is scored on the held-out test pairs the way DAS scores an alignment: IIA
with its 95 % Wilson interval, the no-op floor (the unpatched target net) and IIA on effective
pairs. Beside them: the permuted-value null (the same fit against the program with the
variable's values permuted, ``pairs/permuted.py``) and linear CKA and RSA of the two nets' source
states on the test pairs (``similarity``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal, Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from numsym_pl.das.iia import IIA, wilson_interval
from numsym_pl.das.model_alignment.fit import fit_jointly, trained_directions
from numsym_pl.das.model_alignment.pair import DIRECTIONS, NetPair, direction_name
from numsym_pl.das.model_alignment.similarity import similarity
from numsym_pl.das.pairs.permuted import map_record, permuted_values
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import SequenceModel
from numsym_pl.programs import get_program
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily


@dataclass
class ModelAlignment:
    """What MAS aligns between two nets: one program variable, a site of each net, a shared subspace.

    Args:
        program: the causal model (``up_down``, ``up_up``, ``ctx_distr``, a registered name or a class path).
        variables: the program variable(s) aligned (default: the program's first); several get
            disjoint blocks of the shared subspace.
        site_a: net A's site (default: its default site: GRU ``state``, LSTM ``state`` = [h; c]).
        site_b: net B's site (default: its default site).
        subspace: coordinates of the shared subspace per variable (the same in both nets, whatever
            their widths).
        featurizer: each net's learned map (``rotation``, ``low_rank``, ``pca_rotation``, ``revnet``,
            or a class path); a featurizer that learns its own width cannot share a subspace.
        within: also train the within-net directions A->A and B->B (as MAS does), so that each
            featurizer is a DAS featurizer of its own net too; they are scored either way.
        rdm: the dissimilarity of RSA's matrices: ``euclidean`` or ``correlation`` (1 - Pearson r).
        resamples: bootstrap resamples of the CKA and RSA intervals (0: none).
    """

    program: str = "up_down"
    variables: Optional[Union[str, list[str]]] = None
    site_a: Optional[str] = None
    site_b: Optional[str] = None
    subspace: int = 16
    featurizer: str = "rotation"
    within: bool = True
    rdm: Literal["euclidean", "correlation"] = "euclidean"
    resamples: int = 200

    def __post_init__(self):
        program = get_program(self.program)
        if isinstance(self.variables, str):
            self.variables = self.variables.replace(",", "+").split("+")
        self.variables = program.check_variables(self.variables or program.variables[:1])
        if isinstance(self.subspace, bool) or not isinstance(self.subspace, int) or self.subspace < 1:
            raise ConfigError(f"subspace: an integer >= 1, got {self.subspace!r}")
        if self.resamples < 0:
            raise ConfigError(f"resamples: must be >= 0, got {self.resamples}")
        if self.rdm not in ("euclidean", "correlation"):
            raise ConfigError(f"rdm: 'euclidean' or 'correlation', got {self.rdm!r}")


def check_settings(settings: SearchSettings) -> None:
    """Refuse the settings MAS does not implement, by name."""
    if settings.seeds > 1:
        raise ConfigError(f"settings.seeds: MAS fits one seed per run, got {settings.seeds}; "
                          "run again with another settings.seed")
    if settings.cl_weight > 0:
        raise ConfigError("settings.cl_weight: MAS fits on the cross-entropy alone; leave it at 0")


def check_same_task(task_a: TaskFamily, task_b: TaskFamily, names: Sequence[str] = ("net_a", "net_b")) -> None:
    """Refuse two nets trained on different tasks, naming both and what differs."""
    a, b = task_a.config(), task_b.config()
    if a == b:
        return
    if a.get("class_path") != b.get("class_path"):
        theirs, ours = task_b.family, task_a.family
    else:
        args_a, args_b = a.get("init_args") or {}, b.get("init_args") or {}
        keys = [k for k in {**args_a, **args_b} if args_a.get(k) != args_b.get(k)]
        theirs = f"{task_b.family} with " + ", ".join(f"{k}={args_b.get(k)}" for k in keys)
        ours = ", ".join(f"{k}={args_a.get(k)}" for k in keys)
    raise ConfigError(f"{names[1]}: trained on {theirs}, but {names[0]} on {ours}; MAS aligns nets of one task")


def direction_record(correct: torch.Tensor, floor: torch.Tensor, pairs) -> dict:
    """One direction's figures on the test pairs: IIA, the floor, IIA on effective pairs, each with
    its 95 % Wilson interval, IIA by the source's value, and whether the floor lies below IIA's interval."""
    n, effective = len(correct), pairs.effective
    iia, none = correct.float().mean().item(), floor.float().mean().item()
    n_eff = int(effective.sum())
    iia_eff = correct[effective].float().mean().item() if n_eff else None
    metric = IIA(sync_on_compute=False).to(correct.device)
    metric.update(correct, pairs.source_value)
    interval = wilson_interval(iia, n)
    return {"iia": iia, "interval": list(interval), "n": n, "iia_none": none,
            "none_interval": list(wilson_interval(none, n)), "iia_effective": iia_eff, "n_effective": n_eff,
            "effective_interval": None if iia_eff is None else list(wilson_interval(iia_eff, n_eff)),
            "discriminating": none < interval[0], "per_count": metric.per_group()}


def score_pair(pair: NetPair) -> dict[str, dict]:
    """Every direction's ``direction_record`` on the test pairs, by direction name."""
    floors = [pair.floor(t) for t in range(2)]
    return {direction_name(s, t): direction_record(pair.scores(s, t, "test", loss=False)[0], floors[t],
                                                   pair.pairs["test"])
            for s, t in DIRECTIONS}


def fit_record(fitted) -> dict:
    return {"steps": fitted.steps, "stopped": fitted.stopped if fitted.history else None,
            "best_step": fitted.best_step, "history": fitted.history}


def align_models(net_a: SequenceModel, net_b: SequenceModel, task: TaskFamily, spec: ModelAlignment,
                 settings: SearchSettings, labels: Sequence[str] = ("a", "b")) -> dict:
    """MAS of ``spec``'s variable(s) between two nets trained on ``task`` (on frozen copies, on net
    A's device): the record (``directions``: IIA ``a->b``, ``b->a``, ``a->a``, ``b->b`` with their
    intervals, floors and effective pairs; ``null``; ``similarity``: CKA and RSA; ``fit``; the
    settings and seeds). ``labels`` name the nets in the record. Of ``settings`` MAS reads the pair
    sets (``n_train``, ``n_val``, ``n_test``, ``seed``), the fit's schedule and stops, ``start``,
    ``null``, ``precision``, ``orthogonal_map``, ``monitor_test`` and ``progress``; the baselines,
    drift and untrained-net control are DAS's and do not apply here."""
    check_settings(settings)
    t0 = time.perf_counter()
    device = next(net_a.parameters()).device
    bar = tqdm(total=settings.max_steps * (2 if settings.null else 1), desc=f"MAS {labels[0]} ~ {labels[1]}",
               disable=not settings.progress, leave=False)
    pair = NetPair([net_a, net_b], [spec.site_a, spec.site_b], task, spec.program, spec.variables, spec.subspace,
                   spec.featurizer, settings, device)
    fitted = fit_jointly(pair, settings, spec.within, bar=bar)
    directions = score_pair(pair)
    null = None
    if settings.null:
        seed = derive(settings.seed, "null")
        value_map = permuted_values(task, pair.alignments[0].program_object(), spec.variables, seed)
        permuted = NetPair(pair.nets, pair.sites, task, spec.program, spec.variables, spec.subspace, spec.featurizer,
                           settings, device, value_map=value_map)
        null_fit = fit_jointly(permuted, settings, spec.within, bar=bar)
        null = {"seed": seed, "map": map_record(value_map), "directions": score_pair(permuted),
                **{k: v for k, v in fit_record(null_fit).items() if k != "history"}}
    bar.close()
    sim = similarity(pair.sets[0].src["test"], pair.sets[1].src["test"], spec.resamples, settings.seed, spec.rdm,
                     progress=settings.progress)
    return {"kind": "mas", "program": pair.alignments[0].program, "variables": list(spec.variables),
            "subspace": spec.subspace, "featurizer": spec.featurizer, "within": spec.within,
            "trained_directions": [direction_name(s, t) for s, t in trained_directions(spec.within)],
            "nets": {role: {"label": label, "arch": type(net).__name__, "site": site, "width": width}
                     for role, label, net, site, width in zip(("a", "b"), labels, pair.nets, pair.sites,
                                                              pair.widths())},
            "task": task.config(), "task_family": task.family,
            "directions": directions, "null": null, "similarity": sim, "fit": fit_record(fitted),
            "pairs": {name: len(p) for name, p in pair.pairs.items()}, "pairs_removed": pair.sets[0].removed or None,
            "settings": asdict(settings), "spec": asdict(spec),
            "seeds": {"pairs": settings.seed, "featurizer_start": derive(settings.seed, "rotation"),
                      "batches": derive(settings.seed, "batches"), "null": derive(settings.seed, "null"),
                      "similarity": settings.seed},
            "seconds": time.perf_counter() - t0}
