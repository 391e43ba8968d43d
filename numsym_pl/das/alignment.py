"""Alignment: one hypothesis to test (program, variables, site, how to intervene)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence, Union

from numsym_pl.errors import ConfigError
from numsym_pl.programs import get_program

INTERVENTIONS = ("das", "context_substitution", "attention_hiding")


@dataclass
class Alignment:
    """A hypothesis to test: a program's variable(s) at a site of the net.

    Args:
        program: ``up_down``, ``up_up`` or ``ctx_distr``.
        variables: the program variable(s) intervened on (a list, or names joined by ``+``;
            default: the program's first variable); several get disjoint blocks.
        site: the model site (``state`` for recurrent nets, ``resid.k`` for transformers).
        subspace: coordinates per variable (DAS only).
        intervention: ``das`` (learned rotation, interchange of a subspace), or one of the
            Ctx-Distr context interventions ``context_substitution`` / ``attention_hiding``
            (see ``numsym_pl.das.context``).
        layers: blocks (0-based) where attention hiding applies; default all.
        span: ``random`` demo-phase spans or ``all`` of the demo phase (context substitution).
    """

    program: str = "up_down"
    variables: Optional[Union[str, Sequence[str]]] = None
    site: str = "state"
    subspace: int = 16
    intervention: Literal["das", "context_substitution", "attention_hiding"] = "das"
    layers: Optional[list[int]] = None
    span: Literal["random", "all"] = "random"

    def __post_init__(self):
        program = get_program(self.program)
        if self.variables is None:
            self.variables = program.variables[:1]
        if isinstance(self.variables, str):
            self.variables = self.variables.replace(",", "+").split("+")
        self.variables = program.check_variables(self.variables)
        if self.intervention not in INTERVENTIONS:
            raise ConfigError(f"intervention: unknown {self.intervention!r}; choose one of {INTERVENTIONS}")

    @property
    def key(self) -> str:
        """The metric namespace under ``das/``: ``<program>.<var>[+<var>]/<site>`` for DAS,
        ``<intervention>.<program>/<site or layers>`` for context interventions."""
        if self.intervention == "das":
            return f"{self.program}.{'+'.join(self.variables)}/{self.site}"
        where = self.site if self.intervention == "context_substitution" else (
            "attn" if self.layers is None else "attn" + "-".join(map(str, self.layers)))
        return f"{self.intervention}.{self.program}/{where}"
