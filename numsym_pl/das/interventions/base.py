"""The intervention interface: every way of testing an alignment (the interchange on a learned
subspace, attention hiding, context substitution) is an ``Intervention`` object that checks the
alignment against the net and program, makes its pairs, runs the patched net, scores it and
returns one ``AlignmentResult``.

An intervention is a value in an alignment like the task and the net: ``class_path`` +
``init_args`` in YAML (its ``__init__`` signature is its schema), or a registered short name
(``das``/``interchange``, ``attention_hiding``, ``context_substitution``) for the class with its
defaults. A class registers its ``name`` (and ``aliases``) when it is defined; a class defined
outside the package is found by its import path, so a fresh process (a background worker, a study
cell) rebuilds it from ``config()``.
"""

from __future__ import annotations

import inspect

from numsym_pl.errors import ConfigError
from numsym_pl.registry import class_path, import_class

INTERVENTIONS: dict[str, type["Intervention"]] = {}


class Intervention:
    """Base of the interventions. A subclass sets ``name``, keeps each ``__init__`` argument as an
    attribute of the same name (``config`` reads them back), and defines ``run``, ``identity`` and
    ``key``; ``learned`` says whether it fits a subspace, which it then holds as ``subspace`` and
    changes with ``with_subspace`` (a study's size sweep scales it with the net)."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    learned: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):  # a class names itself; a subclass that does not is not registered
            for name in (cls.name, *cls.__dict__.get("aliases", ())):
                INTERVENTIONS[name] = cls

    # ---- what an alignment asks of its intervention -------------------------------------------
    def check(self, net, alignment) -> None:
        """Fail at once, by name, if ``alignment`` cannot run on ``net`` (a missing site, a
        subspace too wide, a capability the net lacks, a program without a label for it)."""
        net.check_site(alignment.site)

    def run(self, net, task, alignment, settings, init_state: dict | None = None):
        """Score ``alignment`` on the frozen ``net``: (the ``AlignmentResult``, the learned module or None)."""
        raise NotImplementedError

    def identity(self, alignment) -> dict:
        """This intervention's fields of the result's identity (``Alignment.identity``)."""
        raise NotImplementedError

    def key(self, alignment) -> str:
        """The result's key (the metric namespace under ``das/``)."""
        raise NotImplementedError

    # ---- as a config value --------------------------------------------------------------------
    def config(self) -> dict:
        """``{"class_path", "init_args"}``: how to build this intervention again."""
        params = [p for p in inspect.signature(type(self).__init__).parameters.values()
                  if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        plain = lambda v: list(v) if isinstance(v, tuple) else v
        return {"class_path": class_path(type(self)),
                "init_args": {p.name: plain(getattr(self, p.name)) for p in params}}

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.config() == self.config()

    def __hash__(self) -> int:
        return hash(repr(self.config()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config()["init_args"].items())
        return f"{type(self).__name__}({args})"


def intervention_class(name: str) -> type[Intervention]:
    """A registered intervention by its name, or an Intervention class by its import path (or its
    class name, for the built-in ones)."""
    if name in INTERVENTIONS:
        return INTERVENTIONS[name]
    by_class_name = {cls.__name__: cls for cls in INTERVENTIONS.values()}
    if name in by_class_name:
        return by_class_name[name]
    if "." in name:
        return import_class(name, Intervention, "intervention")
    raise ConfigError(f"intervention: unknown {name!r}; choose one of {sorted(INTERVENTIONS)} or give a class path")


def as_intervention(value) -> Intervention:
    """An intervention from what a config may hold: an ``Intervention``, a name or class path (its
    defaults), or ``{"class_path": ..., "init_args": {...}}``; None is the default interchange."""
    if isinstance(value, Intervention):
        return value
    if value is None:
        value = "das"
    if hasattr(value, "as_dict"):  # a parsed config (jsonargparse's Namespace)
        value = value.as_dict()
    if isinstance(value, str):
        return intervention_class(value)()
    if isinstance(value, dict) and "class_path" in value:
        args = value.get("init_args") or {}
        try:
            return intervention_class(value["class_path"])(**dict(args))
        except TypeError as err:
            raise ConfigError(f"intervention: {value['class_path']} does not take {sorted(args)} ({err})") from err
    raise ConfigError(f"intervention: expected a name, a class path or {{class_path, init_args}}, got {value!r}")
