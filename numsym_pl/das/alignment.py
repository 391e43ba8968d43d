"""Alignment: one hypothesis to test (a program's variables, a site of the net, an intervention)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence, Union

from numsym_pl.das.interventions.base import Intervention, as_intervention
from numsym_pl.errors import ConfigError
from numsym_pl.programs import Program, get_program
from numsym_pl.registry import class_path


@dataclass
class Alignment:
    """A hypothesis to test: a program's variable(s) at a site of the net, by an intervention.

    Args:
        program: ``up_down``, ``up_up``, ``ctx_distr``, any registered program's name, or a program
            class's import path (``mypackage.programs.MyProgram``). The alignment keeps the class
            path (``program_path``), so any process rebuilds the program; results show its name.
        variables: the program variable(s) intervened on (a list, or names joined by ``+``;
            default: the program's first variable); several get disjoint blocks.
        site: the model site; default: the architecture's ``default_site`` (filled in by
            ``for_net`` once the net is known). GRU: ``state`` (h). LSTM: ``state`` ([h; c]), ``h``,
            ``c``. Transformers (block k from 1, head h from 0): ``resid.k`` (residual stream after
            block k; ``resid.0`` the embeddings), ``attn.k`` (attention output before the residual
            add), ``mlp.k`` (MLP hidden after the GELU, width 4d), ``head.k.h`` (head h's output
            before the output projection). A net's ``sites`` lists its own, with width and meaning.
        intervention: how the hypothesis is tested, a ``class_path`` + ``init_args`` value:
            ``Interchange`` (the default: DAS, a learned featurizer and a swapped subspace; its
            ``subspace``, ``featurizer`` and ``positions``), ``AttentionHiding`` (``layers``) or
            ``ContextSubstitution`` (``span``), any ``das.interventions.Intervention`` by its class
            path; a registered name (``das``, ``attention_hiding``, ``context_substitution``) gives
            the class with its defaults.
    """

    program: str = "up_down"
    variables: Optional[Union[str, Sequence[str]]] = None
    site: Optional[str] = None
    intervention: Union[Intervention, str, dict, None] = None

    def __post_init__(self):
        program = get_program(self.program)
        self.program, self.program_path = program.name, class_path(type(program))
        if self.variables is None:
            self.variables = program.variables[:1]
        if isinstance(self.variables, str):
            self.variables = self.variables.replace(",", "+").split("+")
        self.variables = program.check_variables(self.variables)
        self.intervention = as_intervention(self.intervention)

    def program_object(self) -> Program:
        """The program, by its class path (imported here if this process has not yet)."""
        return get_program(self.program_path)

    def for_net(self, net) -> "Alignment":
        """This alignment with its site filled in from ``net.default_site`` when none was given."""
        return self if self.site is not None else replace(self, site=net.default_site)

    @property
    def identity(self) -> dict:
        """The alignment as structured fields; results carry it beside ``key``, and reports select
        by its fields (program, variables, site, intervention, featurizer, subspace)."""
        return {"program": self.program, "variables": list(self.variables), **self.intervention.identity(self)}

    @property
    def key(self) -> str:
        """The metric namespace under ``das/``: ``<program>.<var>[+<var>]/<site>[@<positions>][~<featurizer>]``
        for DAS, ``<intervention>.<program>/<site or layers>`` for the context interventions."""
        return self.intervention.key(self)

    def config(self) -> dict:
        """The alignment with class paths: ``Alignment(**config)`` rebuilds it in any process."""
        return {"program": self.program_path, "variables": list(self.variables), "site": self.site,
                "intervention": self.intervention.config()}

    def __getstate__(self) -> dict:  # pickled by class paths: a spawned worker rebuilds plugins from them
        return self.config()

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


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
