"""MAS of every pair of several nets, gathered into matrices (``mas_matrix.json``).

Each unordered pair {i, j} is aligned once (``align_models``), which measures both directions:
entry ``[i][j]`` of the IIA matrix is the cross-model IIA with net i the source and net j the
target. Its diagonal is net i's within-net IIA (``i->i``), the mean over the fits net i took
part in (each fit is a DAS fit of net i too; every value is kept in ``within``). CKA and RSA are
symmetric, with 1 on the diagonal.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Sequence

import numpy as np

from numsym_pl.das.model_alignment.run import ModelAlignment, align_models
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import as_json
from numsym_pl.models.interface import SequenceModel
from numsym_pl.tasks.base import TaskFamily


def _square(k: int, fill=None) -> list[list]:
    return [[fill] * k for _ in range(k)]


def matrix_record(labels: Sequence[str], records: Sequence[dict]) -> dict:
    """The matrices of the pair records ``records`` (``align_models``' records of nets named by
    ``labels``): ``iia`` (cross-model IIA, within-net on the diagonal) with ``interval``, the
    floor ``iia_none``, ``iia_effective``, the null's IIA ``iia_null``, ``cka`` and ``rsa``; and the
    records themselves (``pairs``)."""
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ConfigError(f"labels: the nets need distinct labels, got {labels}")
    k, at = len(labels), {label: i for i, label in enumerate(labels)}
    out = {name: _square(k) for name in ("iia", "interval", "iia_none", "iia_effective", "iia_null", "cka", "rsa")}
    within: dict[int, list[float]] = {i: [] for i in range(k)}
    for rec in records:
        index = {role: at[net["label"]] for role, net in rec["nets"].items()}
        for name, d in rec["directions"].items():
            s, t = (index[role] for role in name.split("->"))
            if s == t:
                within[s].append(d["iia"])
                continue
            out["iia"][s][t], out["interval"][s][t] = d["iia"], d["interval"]
            out["iia_none"][s][t], out["iia_effective"][s][t] = d["iia_none"], d["iia_effective"]
            null = ((rec.get("null") or {}).get("directions") or {}).get(name)
            out["iia_null"][s][t] = None if null is None else null["iia"]
        i, j = index["a"], index["b"]
        for name in ("cka", "rsa"):
            out[name][i][j] = out[name][j][i] = rec["similarity"][name]
    for i in range(k):
        out["iia"][i][i] = float(np.mean(within[i])) if within[i] else None
        out["cka"][i][i] = out["rsa"][i][i] = 1.0
    first = records[0] if records else {}
    return {"kind": "mas_matrix", "labels": labels, **out, "within": {labels[i]: v for i, v in within.items()},
            "program": first.get("program"), "variables": first.get("variables"), "subspace": first.get("subspace"),
            "task_family": first.get("task_family"), "pairs": list(records)}


def reusable(record: dict, labels: tuple[str, str], spec: ModelAlignment, settings: SearchSettings,
             task: TaskFamily) -> bool:
    """Whether an earlier pair record is this pair's result: the same nets (by label), task,
    alignment spec (sites included) and settings (what decides its numbers; not the progress bar)."""
    same = lambda d: {k: v for k, v in d.items() if k != "progress"}  # noqa: E731
    nets = record.get("nets") or {}
    return (((nets.get("a") or {}).get("label"), (nets.get("b") or {}).get("label")) == tuple(labels)
            and as_json(record.get("task")) == as_json(task.config())
            and as_json(record.get("spec")) == as_json(asdict(spec))
            and same(as_json(record.get("settings") or {})) == same(as_json(asdict(settings))))


def align_matrix(nets: Sequence[SequenceModel], labels: Sequence[str], task: TaskFamily, spec: ModelAlignment,
                 settings: SearchSettings, sites: Sequence[str | None] | None = None, done=None,
                 previous: Sequence[dict] = ()) -> dict:
    """MAS of every pair of ``nets`` (all trained on ``task``; ``sites``: each net's site, default
    its own default site): ``matrix_record`` of the pair records. ``done(record)`` is called after
    each pair (progress, partial files). A pair with a ``reusable`` record among ``previous`` (an
    earlier, interrupted run's) is taken from it, not fitted again."""
    if len(nets) < 2:
        raise ConfigError(f"nets: a matrix needs at least two nets, got {len(nets)}")
    sites = list(sites) if sites else [None] * len(nets)
    if len(sites) != len(nets):
        raise ConfigError(f"sites: one per net, got {len(sites)} for {len(nets)} nets")
    records = []
    for i in range(len(nets)):
        for j in range(i + 1, len(nets)):
            pair_spec = replace(spec, site_a=sites[i], site_b=sites[j])
            record = next((r for r in previous if reusable(r, (labels[i], labels[j]), pair_spec, settings, task)),
                          None) or align_models(nets[i], nets[j], task, pair_spec, settings, (labels[i], labels[j]))
            records.append(record)
            if done is not None:
                done(record)
    return matrix_record(labels, records)
