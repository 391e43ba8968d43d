"""Alignment: one hypothesis to test (program, variables, site, how to intervene)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Optional, Sequence, Union

from numsym_pl.errors import ConfigError
from numsym_pl.das.featurizers import featurizer_class
from numsym_pl.das.protocol import intervention
from numsym_pl.programs import get_program



@dataclass
class Alignment:
    """A hypothesis to test: a program's variable(s) at a site of the net.

    Args:
        program: ``up_down``, ``up_up``, ``ctx_distr``, or a program class's import path
            (``mypackage.programs.MyProgram``; kept as the program's registered name).
        variables: the program variable(s) intervened on (a list, or names joined by ``+``;
            default: the program's first variable); several get disjoint blocks.
        site: the model site; default: the architecture's ``default_site`` (filled in by
            ``for_net`` once the net is known). GRU: ``state`` (h). LSTM: ``state`` ([h; c]), ``h``,
            ``c``. Transformers (block k from 1, head h from 0): ``resid.k`` (residual stream after
            block k; ``resid.0`` the embeddings), ``attn.k`` (attention output before the residual
            add), ``mlp.k`` (MLP hidden after the GELU, width 4d), ``head.k.h`` (head h's output
            before the output projection). A net's ``sites`` lists its own, with width and meaning.
        subspace: coordinates per variable (DAS only).
        intervention: ``das`` (learned rotation, interchange of a subspace), or one of the
            Ctx-Distr context interventions ``context_substitution`` / ``attention_hiding``
            (see ``numsym_pl.das.context``); any registered ``das.protocol.Intervention``.
        featurizer: the learned map DAS swaps coordinates in: ``rotation`` (the default, d x d
            orthogonal), ``low_rank`` (d x k orthonormal columns), ``pca_rotation`` (started at the
            site's principal axes), ``boundless`` (learns its width; one variable), ``revnet``
            (invertible non-linear; always also fitted on an untrained net), any registered
            ``das.featurizers.Featurizer``, or its class path. DAS only.
        positions: how many positions DAS swaps the subspace at (DAS only): ``1`` (the default)
            swaps it at ``i_t`` alone; ``k`` at the last k positions up to ``i_t``, each taking the
            source's state at the same distance before ``i_s`` (``i_t - j`` <- ``i_s - j``, as far as both
            sequences reach); ``all`` at every position up to ``i_t``; ``demo`` at ``i_t`` and at every
            offset whose target and source positions both lie in their trial's input (demo) phase
            (``das.windows.demo_window``). For transformers, whose later tokens read a variable from
            every earlier position. The label is the program's as for one position; more than one
            runs through the hook points (no clean-run cache).
        layers: blocks (0-based) where attention hiding applies; default all.
        span: ``random`` demo-phase spans or ``all`` of the demo phase (context substitution).
    """

    program: str = "up_down"
    variables: Optional[Union[str, Sequence[str]]] = None
    site: Optional[str] = None
    subspace: int = 16
    intervention: str = "das"
    featurizer: str = "rotation"
    positions: Union[int, Literal["all", "demo"]] = 1
    layers: Optional[list[int]] = None
    span: Literal["random", "all"] = "random"

    def __post_init__(self):
        program = get_program(self.program)
        self.program = program.name
        if self.variables is None:
            self.variables = program.variables[:1]
        if isinstance(self.variables, str):
            self.variables = self.variables.replace(",", "+").split("+")
        self.variables = program.check_variables(self.variables)
        intervention(self.intervention)  # a registered one, or a named error
        self.featurizer = featurizer_class(self.featurizer).name
        if self.positions not in ("all", "demo") and (isinstance(self.positions, bool) or not isinstance(self.positions, int)
                                                     or self.positions < 1):
            raise ConfigError(f"positions: an integer >= 1, 'all' or 'demo', got {self.positions!r}")
        if self.positions != 1 and self.intervention != "das":
            raise ConfigError(f"positions: only DAS swaps at several positions; {self.intervention!r} has its own spans")

    def for_net(self, net) -> "Alignment":
        """This alignment with its site filled in from ``net.default_site`` when none was given."""
        return self if self.site is not None else replace(self, site=net.default_site)

    @property
    def identity(self) -> dict:
        """The alignment as structured fields; results carry it beside ``key``, and reports select
        by its fields (program, variables, site, intervention, featurizer, subspace)."""
        das = self.intervention == "das"
        return {"program": self.program, "variables": list(self.variables), "intervention": self.intervention,
                "site": None if self.intervention == "attention_hiding" else self.site,
                "featurizer": self.featurizer if das else None, "subspace": self.subspace if das else None,
                "layers": None if self.layers is None else list(self.layers),
                "span": self.span if self.intervention == "context_substitution" else None,
                **({"positions": self.positions} if self.positions != 1 else {})}

    @property
    def key(self) -> str:
        """The metric namespace under ``das/``: ``<program>.<var>[+<var>]/<site>[@<positions>]`` for DAS,
        ``<intervention>.<program>/<site or layers>`` for context interventions."""
        if self.intervention == "das":
            learned = "" if self.featurizer == "rotation" else f"~{self.featurizer}"
            where = "" if self.positions == 1 else f"@{self.positions}"
            return f"{self.program}.{'+'.join(self.variables)}/{self.site or 'default_site'}{where}{learned}"
        where = self.site if self.intervention == "context_substitution" else (
            "attn" if self.layers is None else "attn" + "-".join(map(str, self.layers)))
        return f"{self.intervention}.{self.program}/{where}"


def check_distinct(alignments: Sequence[Alignment], field: str = "alignments") -> list[Alignment]:
    """Refuse two alignments that would be logged and stored under one key (e.g. the same program,
    variables and site at two subspace sizes): their results would overwrite each other."""
    seen: dict[str, Alignment] = {}
    for a in alignments:
        if a.key in seen and seen[a.key].identity != a.identity:
            raise ConfigError(f"{field}: {seen[a.key].identity} and {a.identity} share the key {a.key!r}; align them "
                              "in separate runs (or cells)")
        seen[a.key] = a
    return list(alignments)
