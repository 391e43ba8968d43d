"""Declared claims: the statements a study tests, as data (``configs/claims/<study>.yaml``).

A claims file lists the claims a study's report gives verdicts on; nothing else gets one. Each
claim carries the wording it tests, the cells it is about (architectures x tasks: one test per
pair, a *group*), the alignments that test it and what it predicts:

    margin: 0.1                     # "low": within this of the highest calibrating level
    claims:
      - id: recurrent_up_down
        wording: "GRUs and LSTMs carry Up-Down's count on Multi- and Single-Object tasks."
        arch: [gru, lstm]
        task: [multi, single]
        alignments: [{program: up_down, variables: [count]}]
        predicts: high              # high | low | falls | tracks_accuracy
        rival: {program: up_up, variables: [demo_count]}
      - id: transformers_recompute
        ...
        not_discriminating:         # groups where the test cannot tell the hypotheses apart
          - {arch: [nope], reason: "hiding a token from every query but its own is deleting it ..."}

``predicts``:

- ``high``: IIA on all test pairs >= ``HIGH`` (0.9).
- ``low``: IIA not above the highest of the alignment's calibrating levels (the no-op floor, the
  rival program's coincidence level, the fitted null) by more than ``margin``.
- ``falls``: IIA by the value the source carries falls as the value grows (a negative slope).
- ``tracks_accuracy``: over training, IIA rises together with accuracy (a learning-dynamics study):
  after the accuracy transition DAS's IIA stays above the full-state swap and the random rotation,
  and the IIA transition lags the accuracy transition by at most ``tolerance`` epochs.

Several alignments in one claim (one variable at several sites of the same nets) are combined per
seed by their maximum: they are one test of one net, not independent ones. A claim is judged only
on cells whose net learned the task (``TRAINED``). The statistics and verdicts are in
``numsym_pl.analysis.verdicts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from numsym_pl.errors import ConfigError

PREDICTIONS = ("high", "low", "falls", "tracks_accuracy")
MATCHED_FIELDS = ("program", "variables", "site", "intervention")


@dataclass
class Claim:
    """One declared claim (see the module docstring for the file format)."""

    id: str
    wording: str
    arch: list[str]
    task: list[str]
    alignments: list[dict]
    predicts: Literal["high", "low", "falls", "tracks_accuracy"]
    rival: dict | None = None
    #: [{arch: [...], task: [...] (optional), reason: "..."}]: groups whose test cannot discriminate
    not_discriminating: list[dict] = field(default_factory=list)
    margin: float = 0.1
    tolerance: float = 10.0

    def groups(self) -> list[tuple[str, str]]:
        return [(a, t) for a in self.arch for t in self.task]

    def matches(self, record: dict) -> bool:
        """Whether an alignment record (a cell's ``alignments`` entry) is one this claim reads."""
        return any(all(_same(key, want.get(key, "das" if key == "intervention" else None), record)
                       for key in MATCHED_FIELDS if key in want or key == "intervention")
                   for want in self.alignments)

    def cannot_discriminate(self, arch: str, task: str) -> str | None:
        """The reason this claim's test cannot tell its hypotheses apart on a group, or None."""
        for entry in self.not_discriminating:
            if arch in entry.get("arch", [arch]) and task in entry.get("task", [task]):
                return entry["reason"]
        return None

    def rival_name(self) -> str | None:
        return None if self.rival is None else f"{self.rival['program']}.{'+'.join(self.rival['variables'])}"


def _same(key: str, want, record: dict) -> bool:
    got = record.get(key, "das" if key == "intervention" else None)
    return list(got or []) == list(want) if key == "variables" else got == want


def _listed(value, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise ConfigError(f"{where}: must be a name or a non-empty list of names, got {value!r}")
    return value


def parse_claims(data: dict, source: str = "claims") -> list[Claim]:
    """The claims of a claims file's contents (``{margin, tolerance, claims: [...]}``)."""
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ConfigError(f"{source}: a claims file holds a mapping with a list under 'claims'")
    defaults = {k: data[k] for k in ("margin", "tolerance") if k in data}
    unknown = sorted(set(data) - {"margin", "tolerance", "claims"})
    if unknown:
        raise ConfigError(f"{source}: unknown top-level keys {unknown}; a claims file has margin, tolerance, claims")
    claims, seen = [], set()
    allowed = {"id", "wording", "arch", "task", "alignments", "predicts", "rival", "not_discriminating", "margin",
               "tolerance"}
    for i, entry in enumerate(data["claims"]):
        where = f"{source}: claims[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping")
        missing = sorted({"id", "wording", "arch", "task", "alignments", "predicts"} - set(entry))
        if missing or set(entry) - allowed:
            raise ConfigError(f"{where}: missing {missing}" if missing
                              else f"{where}: unknown keys {sorted(set(entry) - allowed)}")
        if entry["id"] in seen:
            raise ConfigError(f"{where}: id {entry['id']!r} is declared twice")
        seen.add(entry["id"])
        if entry["predicts"] not in PREDICTIONS:
            raise ConfigError(f"{where}.predicts: {entry['predicts']!r} is not one of {PREDICTIONS}")
        alignments = entry["alignments"]
        if not isinstance(alignments, list) or not alignments or not all(
                isinstance(a, dict) and "program" in a and set(a) <= set(MATCHED_FIELDS) for a in alignments):
            raise ConfigError(f"{where}.alignments: a non-empty list of {{program, variables, site, intervention}}")
        for j, nd in enumerate(entry.get("not_discriminating") or []):
            if not isinstance(nd, dict) or not nd.get("reason") or set(nd) - {"arch", "task", "reason"}:
                raise ConfigError(f"{where}.not_discriminating[{j}]: a mapping of arch, task and a reason")
        claims.append(Claim(id=str(entry["id"]), wording=str(entry["wording"]),
                            arch=_listed(entry["arch"], f"{where}.arch"), task=_listed(entry["task"], f"{where}.task"),
                            alignments=alignments, predicts=entry["predicts"], rival=entry.get("rival"),
                            not_discriminating=list(entry.get("not_discriminating") or []),
                            **{k: float(entry.get(k, defaults.get(k, getattr(Claim, k))))
                               for k in ("margin", "tolerance")}))
    return claims


def read_claims(path: str | Path) -> list[Claim]:
    """The claims declared in a YAML file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"claims: no such file {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"claims: {path} is not YAML ({str(err).splitlines()[0]})") from None
    return parse_claims(data, str(path))


def claims_file(study: dict, name: str, given: str | Path | None = None) -> Path | None:
    """Where a study's claims are declared: ``given`` (``numsym_pl report --claims``), else the
    study's own ``claims`` setting, else ``configs/claims/<study name>.yaml`` when it exists; None
    when a study declares none."""
    if given is not None:
        return Path(given)
    if study.get("claims"):
        return Path(study["claims"])
    default = Path("configs/claims") / f"{name}.yaml"
    return default if default.is_file() else None
