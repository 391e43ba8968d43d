"""Classes named in configs: ``import_class`` imports one by its import path and checks its base;
``lookup`` finds a registered, named class (a program, a featurizer, an intervention) by its name
or its import path; ``class_path`` is the import path a class is found under again."""

from __future__ import annotations

import importlib

from numsym_pl.errors import ConfigError


def class_path(cls: type) -> str:
    """``module.QualName``: what ``import_class`` takes to find ``cls`` in a fresh process."""
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(path: str, base: type, field: str) -> type:
    """The class at import path ``path`` (``package.module.Class``), which must subclass ``base``;
    a ConfigError naming ``field`` otherwise."""
    module, _, name = str(path).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"{field}: cannot import {path!r} ({type(err).__name__})") from err
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{field}: {path!r} is not a {base.__name__}")
    return cls


def lookup(name: str, registry: dict, base: type, field: str):
    """``registry[name]``; a dotted ``name`` not registered yet is imported first (a class defined
    outside the package registers itself under its own ``name`` when its module loads)."""
    if name not in registry and "." in name:
        cls = import_class(name, base, field)
        if not cls.__dict__.get("name"):
            raise ConfigError(f"{field}: {name!r} is not a {base.__name__} class with its own name")
        name = cls.name
    if name not in registry:
        raise ConfigError(f"{field}: unknown {name!r}; choose one of {sorted(registry)} or give a class path")
    return registry[name]
