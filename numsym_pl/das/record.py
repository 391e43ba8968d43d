"""The record of an alignment's result: one typed ``AlignmentResult``, its JSON form (what
``das_result.json``, a study cell's ``alignments`` and the DAS callback's rows hold) and its flat
figures (CSV rows, wandb summaries), written and read here only.

The result's identity is ``key`` (the metric namespace, ``Alignment.key``) and ``alignment`` (its
structured fields, ``Alignment.identity``); the figures are IIA with its 95 % Wilson interval, the
no-op floor and the effective pairs, the baselines (``BASELINE_FIELDS``), the controls, the drift
of the patched states (``DRIFT_FIELDS``) and the fit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from numsym_pl.das.iia import wilson_interval
from numsym_pl.jsonfile import write_json

#: the baselines of learned interventions, as the flat result fields reports and metrics use
BASELINE_FIELDS = {"identity": "iia_identity", "full": "iia_full_swap", "random": "iia_random"}
#: the drift of patched states (``das/drift.py``) as flat fields: ``drift_<measure>`` for the learned swap,
#: ``drift_<measure>_full_swap`` and ``drift_<measure>_random`` for the baselines (ratios; 1 = as natural
#: as natural states)
DRIFT_FIELDS = {(measure, swap): f"drift_{measure}{suffix}" for measure in ("knn", "mahalanobis", "emd")
                for swap, suffix in (("das", ""), ("full", "_full_swap"), ("random", "_random"))}
#: the file in a run directory that holds every row of the DAS callback's history (``write_rows``)
ROWS_FILE = "das_history.json"
#: the figures of one fit, as the DAS callback logs them (``das/<key>/<field>``) and keeps them in its rows
ROW_FIELDS = ("iia", "iia_lo", "iia_hi", *BASELINE_FIELDS.values(), "iia_effective", "iia_none", "steps", "seconds",
              *DRIFT_FIELDS.values())


@dataclass
class AlignmentResult:
    """What one intervention measured for one alignment.

    ``iia`` is on the held-out test pairs; ``baselines`` holds the controls this intervention
    defines (a learned subspace: raw neurons ``identity``, the ``full`` state, a ``random``
    rotation); ``fit`` how the learned part was fitted (``steps``, ``iia_val``, ``history``), None
    when nothing is fitted."""

    alignment: dict  # Alignment.identity
    iia: float
    n: int
    per_count: dict[int, float]
    seconds: float
    baselines: dict[str, float] = field(default_factory=dict)
    fit: dict | None = None
    iia_alone: dict[str, float] | None = None  # several variables: IIA intervening on each one alone
    #: the no-op floor: IIA of the net not intervened on, and the IIA on the pairs whose label differs
    #: from what the program predicts without the intervention (``n_effective`` of them)
    iia_none: float | None = None
    iia_effective: float | None = None
    n_effective: int | None = None
    #: the controls run beside the alignment (``das/controls.py``): the untrained net, random subspaces
    controls: dict | None = None
    #: RAVEL's cause and isolation (``interventions/cause.py``): ``{"all": ..., <variable>: ...}`` on the test pairs
    #: intervening on every variable and on each alone
    cause_isolation: dict | None = None
    #: with several DAS seeds (``SearchSettings.seeds``): each seed's figures (``replicate``), the first
    #: being this result's own, and their summary (``over_seeds``)
    replicates: list[dict] | None = None
    #: per held-out set, the share of candidate pairs dropped because they repeated, in what the
    #: interchange sees, a pair of the sets drawn before (``PairSets.removed``); None when none were drawn so
    pairs_removed: dict | None = None
    #: how far the patched states lie from natural ones (``das/drift.py``): per swap (``das``,
    #: ``full``, ``random``) each measure's ratio to natural states; None when not measured
    drift: dict | None = None

    def intervals(self) -> dict[str, tuple[float, float] | None]:
        """The 95 % Wilson interval of every IIA here, over the pairs it was measured on."""
        out = {"iia": wilson_interval(self.iia, self.n), "iia_none": wilson_interval(self.iia_none, self.n),
               "iia_effective": wilson_interval(self.iia_effective, self.n_effective)}
        out.update({flat: wilson_interval(self.baselines.get(name), self.n) for name, flat in BASELINE_FIELDS.items()})
        return out

    @property
    def discriminating(self) -> bool | None:
        """False when the no-op floor lies within the interval of the score (doing nothing scores
        as well, within the pairs' noise); None when there is no floor."""
        if self.iia_none is None:
            return None
        return self.iia_none < self.intervals()["iia"][0]

    @property
    def iia_identity(self) -> float | None:
        return self.baselines.get("identity")

    @property
    def iia_full_swap(self) -> float | None:
        return self.baselines.get("full")

    @property
    def iia_random(self) -> float | None:
        return self.baselines.get("random")

    @property
    def steps(self) -> int | None:
        return None if self.fit is None else self.fit["steps"]

    @property
    def iia_val(self) -> float | None:
        return None if self.fit is None else self.fit["iia_val"]

    def replicate(self, seed: int) -> dict:
        """This result's figures as one DAS seed's: IIA with its interval, on effective pairs too, the
        floor, and how the fit went."""
        fit = self.fit or {}
        return {"seed": seed, "iia": self.iia, "interval": _listed(self.intervals()["iia"]),
                "iia_effective": self.iia_effective,
                "iia_effective_interval": _listed(self.intervals()["iia_effective"]),
                "iia_none": self.iia_none, "steps": fit.get("steps"), "stopped": fit.get("stopped"),
                "best_step": fit.get("best_step"), "seconds": self.seconds, "history": fit.get("history") or []}

    @property
    def over_seeds(self) -> dict | None:
        """IIA over the DAS seeds: n, mean, sd and a 95 % t-interval (None with one seed)."""
        if not self.replicates or len(self.replicates) < 2:
            return None
        return seed_summary([r["iia"] for r in self.replicates])

    def as_dict(self) -> dict:
        """The flat JSON record (``das_result.json``, a study cell's ``alignments``)."""
        a = self.alignment
        return {"program": a["program"], "variables": list(a["variables"]), "site": a["site"],
                "subspace": a["subspace"], "iia": self.iia, "n": self.n,
                **{flat: self.baselines.get(name) for name, flat in BASELINE_FIELDS.items()},
                "iia_val": self.iia_val, "steps": self.steps,
                "iia_none": self.iia_none, "iia_effective": self.iia_effective, "n_effective": self.n_effective,
                "intervals": {k: _listed(v) for k, v in self.intervals().items()},
                "discriminating": self.discriminating, "controls": self.controls,
                "seconds": self.seconds, "per_count": self.per_count,
                "history": [] if self.fit is None else self.fit["history"], "iia_alone": self.iia_alone,
                "featurizer_fit": None if self.fit is None else self.fit.get("featurizer"),
                "cause_isolation": self.cause_isolation,
                "stopped": None if self.fit is None else self.fit.get("stopped"),
                "best_step": None if self.fit is None else self.fit.get("best_step"),
                "replicates": self.replicates, "over_seeds": self.over_seeds, "drift": self.drift,
                "pairs_removed": self.pairs_removed,
                "cl": None if self.fit is None else self.fit.get("cl")}

    def record(self, alignment, **extra) -> dict:
        """The JSON record of this result for ``alignment``: ``as_dict`` with the result's identity
        (``key``, ``alignment``, ``intervention``) and ``config`` (the alignment with class paths, from
        which ``Alignment.from_config`` rebuilds it in any process)."""
        return {**self.as_dict(), "key": alignment.key, "alignment": alignment.identity,
                "intervention": alignment.identity["intervention"], "config": alignment.config(), **extra}

    def row(self, epoch: int, step: int, alignment, **extra) -> dict:
        """One row of learning dynamics (the DAS callback's history): the fit's ``ROW_FIELDS`` at
        ``epoch`` and global ``step``, with the alignment's ``key`` and identity."""
        lo, hi = self.intervals()["iia"] or (None, None)
        figures = {"iia": self.iia, "iia_lo": lo, "iia_hi": hi, **{flat: self.baselines.get(name)
                   for name, flat in BASELINE_FIELDS.items()}, "iia_effective": self.iia_effective,
                   "iia_none": self.iia_none, "steps": self.steps, "seconds": self.seconds, **drift_fields(self.drift)}
        return {"epoch": epoch, "step": step, "key": alignment.key, "alignment": alignment.identity, **figures, **extra}


def flat_record(record: dict) -> dict:
    """An alignment's JSON record as flat figures (CSV rows, wandb summaries): each IIA with its 95 %
    interval's bounds, the floor, the baselines, the controls' summaries, the fit's steps, a
    learned width and the drift of the patched states (``DRIFT_FIELDS``)."""
    intervals, controls = record.get("intervals") or {}, record.get("controls") or {}
    untrained, null = controls.get("untrained") or {}, controls.get("null") or {}
    out = {}
    for name in ("iia_effective", "iia"):
        lo, hi = intervals.get(name) or (None, None)
        out.update({name: record.get(name), f"{name}_lo": lo, f"{name}_hi": hi})
    out.update({k: record.get(k) for k in ("n", "n_effective", "iia_none", "discriminating", *BASELINE_FIELDS.values(),
                                           "steps")})
    out.update({"iia_random_sd": (controls.get("random_subspace") or {}).get("sd"),
                "iia_untrained": untrained.get("iia"),
                "iia_untrained_effective": untrained.get("iia_effective"),
                **null_fields(null),
                "learned_width": (record.get("featurizer_fit") or {}).get("width")})
    joint = (record.get("cause_isolation") or {}).get("all") or {}
    out.update({"cause": joint.get("cause"), "isolation": joint.get("isolation")})
    out.update(drift_fields(record.get("drift")))
    return out


def drift_fields(drift: dict | None) -> dict:
    """A result's ``drift`` as its ``DRIFT_FIELDS`` (None where not measured)."""
    drift = drift or {}
    return {flat: (drift.get(swap) or {}).get(measure) for (measure, swap), flat in DRIFT_FIELDS.items()}


def null_fields(null: dict) -> dict:
    """The permuted-value null (``controls.null``) as flat figures: its IIA and IIA on effective pairs,
    each with its 95 % interval's bounds (None where it was not run)."""
    out, intervals = {}, null.get("intervals") or {}
    for name in ("iia", "iia_effective"):
        lo, hi = intervals.get(name) or (None, None)
        flat = name.replace("iia", "iia_null", 1)
        out.update({flat: null.get(name), f"{flat}_lo": lo, f"{flat}_hi": hi})
    return out


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write learning-dynamics rows (``AlignmentResult.row``) atomically as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, rows, indent=1)


def read_rows(path: Path) -> list[dict]:
    """The rows ``write_rows`` wrote; none when there is no file."""
    return json.loads(Path(path).read_text()) if Path(path).is_file() else []


def _listed(interval) -> list | None:
    return None if interval is None else list(interval)


def seed_summary(values: list[float], confidence: float = 0.95) -> dict:
    """``{n, mean, sd, interval}`` of per-seed values: the interval is Student's t over seeds
    (``scipy.stats.t``), None with fewer than two values or no spread to speak of."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "interval": None}
    mean, sd = float(x.mean()), float(x.std(ddof=1)) if n > 1 else 0.0
    interval = None
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        interval = [mean - half, mean + half]
    return {"n": n, "mean": mean, "sd": sd, "interval": interval}
