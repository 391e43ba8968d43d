"""Looking up a registered, named class (a program, a featurizer) by its name or its import path."""

from __future__ import annotations

import importlib

from numsym_pl.errors import ConfigError


def lookup(name: str, registry: dict, base: type, field: str):
    """``registry[name]``; a dotted ``name`` not registered yet is imported first (a class defined
    outside the package registers itself under its own ``name`` when its module loads)."""
    if name not in registry and "." in name:
        module, _, cls_name = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"{field}: cannot import {name!r} ({type(err).__name__})") from err
        if not (isinstance(cls, type) and issubclass(cls, base) and cls.__dict__.get("name")):
            raise ConfigError(f"{field}: {name!r} is not a {base.__name__} class with its own name")
        name = cls.name
    if name not in registry:
        raise ConfigError(f"{field}: unknown {name!r}; choose one of {sorted(registry)} or give a class path")
    return registry[name]
