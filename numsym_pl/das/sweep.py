"""A sweep: one program's variable(s) aligned at many sites, subspace sizes and featurizers in one
call, on a frozen net (``numsym_pl sweep``).

What is shared, and why it gives each cell the IIA it would get alone:

- the pairs are drawn once (they depend on the program and variables, not on the site, the size or
  the featurizer), so every cell fits and is scored on the same pairs;
- per site, the source states and the clean runs below each intervention (``clean_cache``) are
  computed once and shared by all of that site's cells, and so is the unpatched floor;
- the swaps of one site are trained together (``search.fit_rotations``): one batched forward per
  step, each swap on its own chunk with its own loss, the same batches in the same order as a
  single fit, each stopped by its own checks.

Each cell's record is the ``numsym_pl das`` record of that alignment (``AlignmentResult.as_dict``
with its key and identity), plus ``net`` (``trained``, or ``untrained`` for the control) and
``seconds_site`` (the wall time of its site's shared fit and scoring). Its ``seconds`` is the
site's batched fit time plus its own scoring, so it is not the time a single fit would take.
"""

from __future__ import annotations

import copy
import time
from typing import Sequence

from tqdm.auto import tqdm

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.controls import untrained_like
from numsym_pl.das.counterfactual_latents import CounterfactualLatents
from numsym_pl.das.featurizers import featurizer_class
from numsym_pl.das.run import check_alignment
from numsym_pl.das.interventions.interchange import Interchange, new_swap, score_swap
from numsym_pl.das.interventions.patched import no_intervention
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.search import fit_rotations
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import SequenceModel
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily

DEFAULT_SIZES = (1, 2, 4, 8, 16, 32, 64)


def sizes_at(width: int, sizes: Sequence[int], n_blocks: int = 1) -> list[int]:
    """The sizes that fit a site of ``width`` with ``n_blocks`` variables (the rest are capped away)."""
    return [k for k in sizes if k * n_blocks <= width]


def check_sweep(net: SequenceModel, program: str, variables, sites: Sequence[str], sizes: Sequence[int],
                featurizers: Sequence[str]) -> list[Alignment]:
    """Every cell of the sweep as an alignment, checked now, by name, before any work."""
    if not sites or not sizes or not featurizers:
        raise ConfigError("sweep: needs at least one site, one size and one featurizer")
    if any(int(k) < 1 for k in sizes):
        raise ConfigError(f"sweep.sizes: sizes must be >= 1, got {list(sizes)}")
    cells = []
    for site in sites:
        width = net.site_width(site)
        n_blocks = len(Alignment(program, variables, site).variables)
        fitting = sizes_at(width, sorted(set(int(k) for k in sizes)), n_blocks)
        if not fitting:
            raise ConfigError(f"sweep.sizes: none of {list(sizes)} fits site {site!r} of width {width} "
                              f"({n_blocks} variable(s))")
        for name in featurizers:
            featurizer_class(name)
            cells += [Alignment(program, variables, site, Interchange(k, name)) for k in fitting]
    for cell in cells:
        check_alignment(net, cell)
    return cells


def sweep_net(net: SequenceModel, task: TaskFamily, cells: list[Alignment], settings: SearchSettings, bar=None,
              label: str = "trained") -> list[dict]:
    """Fit and score every cell on a frozen copy of ``net`` (see the module's docstring)."""
    frozen = copy.deepcopy(net).eval().requires_grad_(False)
    device = next(frozen.parameters()).device
    pairs = PairSets.make(task, cells[0], settings, device)
    records = []
    for site in dict.fromkeys(c.site for c in cells):
        t0 = time.perf_counter()
        here = [c for c in cells if c.site == site]
        sets = PairSets(frozen, task, here[0], settings, device, pairs=pairs)
        floor = sets.correct(frozen, no_intervention, site, "test", precision=settings.precision)
        swaps = [new_swap(frozen, c, settings, sets).to(device) for c in here]
        cl = (CounterfactualLatents.of(frozen, task, here[0], sets, target=settings.cl_target)
              if settings.cl_weight > 0 else None)
        fitted = fit_rotations(frozen, swaps, site, sets, settings, bar=bar, cl=cl)
        if bar is not None:
            bar.update(settings.max_steps - max(f.steps for f in fitted))
        fit_seconds = time.perf_counter() - t0
        site_records = []
        for cell, swap, fit in zip(here, swaps, fitted):
            t1 = time.perf_counter()
            result = score_swap(frozen, cell, settings, sets, swap, fit, 0.0, floor=floor)
            result.seconds = fit_seconds + time.perf_counter() - t1
            site_records.append(result.record(cell, featurizer=cell.intervention.featurizer, net=label))
        for r in site_records:
            r["seconds_site"] = time.perf_counter() - t0
        records += site_records
    return records


def run_sweep(net: SequenceModel, task: TaskFamily, program: str, variables, sites: Sequence[str],
              sizes: Sequence[int] = DEFAULT_SIZES, featurizers: Sequence[str] = ("rotation",),
              settings: SearchSettings | None = None) -> list[dict]:
    """Every (site, size, featurizer) cell's record, on the trained net and, for the featurizers
    that ask for it (or all, with ``settings.controls``), on an untrained net of the same
    architecture (``net: untrained``). One progress bar runs over the whole sweep."""
    settings = settings or SearchSettings()
    cells = check_sweep(net, program, variables, sites, sizes, featurizers)
    controlled = [c for c in cells if settings.controls or featurizer_class(c.intervention.featurizer_path).control]
    n_sites = len({c.site for c in cells}) + len({c.site for c in controlled})
    bar = tqdm(total=n_sites * settings.max_steps, desc="sweep", unit="step", disable=not settings.progress)
    try:
        records = sweep_net(net, task, cells, settings, bar)
        if controlled:
            fresh = untrained_like(net, derive(settings.seed, "untrained"))
            records += sweep_net(fresh, task, controlled, settings, bar, label="untrained")
    finally:
        bar.close()
    return records
