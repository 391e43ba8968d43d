"""The intervention protocol: every way of testing an alignment (the interchange on a learned
subspace, attention hiding, context substitution) is one ``Intervention`` that makes its pairs,
runs the patched net and scores it, and returns one ``AlignmentResult``.

Interventions register under their name (``Alignment.intervention``) when their class is defined;
``numsym_pl.das.run.run_alignment`` dispatches by that name, so callers never branch on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from numsym_pl.das.iia import wilson_interval
from numsym_pl.errors import ConfigError

INTERVENTIONS: dict[str, "Intervention"] = {}
#: the baselines of learned interventions, as the flat result fields reports and metrics use
BASELINE_FIELDS = {"identity": "iia_identity", "full": "iia_full_swap", "random": "iia_random"}


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
    #: the controls run beside the alignment (``das.controls``): the untrained net, random subspaces
    controls: dict | None = None
    #: RAVEL's cause and isolation (``das.cause``): ``{"all": ..., <variable>: ...}`` on the test pairs
    #: intervening on every variable and on each alone
    cause_isolation: dict | None = None

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

    def as_dict(self) -> dict:
        """The flat JSON record (``das_result.json``, a study cell's ``alignments``)."""
        a = self.alignment
        return {"program": a["program"], "variables": list(a["variables"]), "site": a["site"],
                "subspace": a["subspace"], "iia": self.iia, "n": self.n,
                **{flat: self.baselines.get(name) for name, flat in BASELINE_FIELDS.items()},
                "iia_val": self.iia_val, "steps": self.steps,
                "iia_none": self.iia_none, "iia_effective": self.iia_effective, "n_effective": self.n_effective,
                "intervals": {k: None if v is None else list(v) for k, v in self.intervals().items()},
                "discriminating": self.discriminating, "controls": self.controls,
                "seconds": self.seconds, "per_count": self.per_count,
                "history": [] if self.fit is None else self.fit["history"], "iia_alone": self.iia_alone,
                "featurizer_fit": None if self.fit is None else self.fit.get("featurizer"),
                "cause_isolation": self.cause_isolation}


class Intervention:
    """Base of the interventions. Subclasses set ``name`` and define ``run``; ``learned`` says
    whether the intervention fits a subspace (so a subspace size applies to it)."""

    name: str = ""
    learned: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # a class names itself; a subclass that does not is not registered
            INTERVENTIONS[cls.name] = cls()

    def check(self, net, alignment) -> None:
        """Fail at once, by name, if ``alignment`` cannot run on ``net`` (a missing site, a
        subspace too wide, a capability the net lacks)."""
        net.check_site(alignment.site)

    def run(self, net, task, alignment, settings, init_state: dict | None = None) -> tuple[AlignmentResult, object]:
        """Score ``alignment`` on the frozen ``net``: (the result, the learned module or None)."""
        raise NotImplementedError


def intervention(name: str) -> Intervention:
    if name not in INTERVENTIONS:
        raise ConfigError(f"intervention: unknown {name!r}; choose one of {sorted(INTERVENTIONS)}")
    return INTERVENTIONS[name]
