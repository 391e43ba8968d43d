"""Controls run beside an alignment, the ones a reviewer asks for first.

- ``untrained``: the same alignment, with the same settings and pair seeds, on a net of the same
  class and arguments, freshly initialised. DAS with an expressive featurizer can align a random
  network (Sutter et al., NeurIPS 2025). An alignment that scores as well there says nothing about
  training. With whole-sequence IIA it is about 0 for any alignment (a random net emits no task
  sequence), so it is off by default (``SearchSettings.controls``).
- ``null``: the same alignment, featurizer, subspace and settings on the same net, fitted against
  a causal model that should not align: the program with its intervened variables' values permuted
  by a fixed derangement (``pairs/permuted.py``; one map for the train, validation and test pairs,
  recorded as ``map``). It runs by default for DAS alignments aligned post hoc
  (``SearchSettings.null``); an alignment that scores no better than its null has found no variable.
- ``random_subspace``: random rotations of the same subspace size, over ``settings.random_seeds``
  seeds, on the same test pairs (mean, sd and each value). ``Interchange`` scores these with its
  baselines; they are recorded in ``AlignmentResult.controls``.

``run_controls`` adds the untrained-net control to a result that already holds the rest,
``run_null`` the null.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.interventions.interchange import Interchange
from numsym_pl.das.pairs.permuted import map_record, permuted_values
from numsym_pl.das.record import BASELINE_FIELDS, AlignmentResult
from numsym_pl.das.run import run_alignment
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import SequenceModel, build_net
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily

#: the fields of a result that a control reports
CONTROL_FIELDS = ("iia", "iia_effective", "iia_none", "n", "n_effective", *BASELINE_FIELDS.values())


def untrained_like(net: SequenceModel, seed: int) -> SequenceModel:
    """A net of ``net``'s class and arguments, freshly initialised from ``seed`` (the global RNG is
    left as it was), on ``net``'s device."""
    config = getattr(net, "init_config", None)
    if not isinstance(config, dict):
        raise ConfigError(f"controls: {type(net).__name__} records no init_config, so no untrained copy can be built")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build_net(config)
    return fresh.to(next(net.parameters()).device).eval()


def untrained_control(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings) -> dict:
    """The alignment fitted and scored on an untrained net of the same architecture and width."""
    fresh = untrained_like(net, derive(settings.seed, "untrained"))
    result, _ = run_alignment(fresh, task, alignment, replace(settings, seeds=1))  # one DAS seed: a control
    record = result.as_dict()
    return {**{k: record.get(k) for k in CONTROL_FIELDS}, "intervals": record["intervals"], "steps": record["steps"],
            "seconds": record["seconds"], "seed": settings.seed}


def has_null(alignment: Alignment) -> bool:
    """Whether an alignment has a permuted-value null: DAS does; the context interventions do not."""
    return isinstance(alignment.intervention, Interchange)


def permuted_null(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings) -> dict:
    """The alignment fitted (one DAS seed) and scored on a frozen copy of the same net with the same
    settings, against the program with its intervened variables' values permuted: every pair writes
    ``perm(source value)`` into the target. The control's figures, with the map (``map``) and its seed."""
    alignment = alignment.for_net(net)
    if not has_null(alignment):
        raise ConfigError(f"null: {alignment.key} is not a DAS alignment; only an interchange has a permuted null")
    seed = derive(settings.seed, "null")
    value_map = permuted_values(task, alignment.program_object(), alignment.variables, seed)
    frozen = copy.deepcopy(net).eval().requires_grad_(False)
    alignment.intervention.check(frozen, alignment)
    # the null's IIA is what it reports: no baselines or drift of its own
    result, _ = alignment.intervention.run(frozen, task, alignment,
                                           replace(settings, seeds=1, baselines=False, drift=False),
                                           value_map=value_map)
    record = result.as_dict()
    return {**{k: record.get(k) for k in CONTROL_FIELDS}, "intervals": record["intervals"], "steps": record["steps"],
            "seconds": record["seconds"], "seed": seed, "map": map_record(value_map),
            "pairs_removed": record.get("pairs_removed")}


def run_null(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings,
             result: AlignmentResult) -> AlignmentResult:
    """``result`` with the permuted-value null added to its ``controls``."""
    result.controls = {**(result.controls or {}), "null": permuted_null(net, task, alignment, settings)}
    return result


def run_controls(net: SequenceModel, task: TaskFamily, alignment: Alignment, settings: SearchSettings,
                 result: AlignmentResult) -> AlignmentResult:
    """``result`` with the untrained-net control added to its ``controls``."""
    result.controls = {**(result.controls or {}), "untrained": untrained_control(net, task, alignment, settings)}
    return result
