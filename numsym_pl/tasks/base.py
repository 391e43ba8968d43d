"""The task-family interface: a grammar of trials that training, DAS, studies and analyses read
through a few names only (DESIGN.md, "Task family").

A family says
- its vocabulary (``vocab``; id 0 is the pad token),
- how to sample trials of a split, vectorised (``sample(split, n, rng) -> Trials``): every trial's
  tokens, the next-token targets that trial accuracy scores (``scored``), the positions an
  intervention may target (``intervenable``) and its named ``quantities`` (e.g. ``count``), the
  values the held-out and OOD splits are defined by,
- the token roles its programs may read (``token_roles``: e.g. ``{"trigger": 3, "demo": (6, 7, 8)}``),
- and ``decode``.

A family is a class whose ``__init__`` signature is its config schema (``class_path`` +
``init_args`` in YAML) and which keeps each argument as an attribute of the same name, so that
``config()`` can write it into a checkpoint as plain data and ``build_task`` can rebuild it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from numsym_pl.errors import ConfigError
from numsym_pl.registry import import_class

Split = Literal["train", "heldout", "ood"]


class TaskConfigError(ConfigError):
    """An invalid task setting; the message starts with the name of the offending field."""


@dataclass(frozen=True)
class Vocab:
    """Token names in id order; id 0 is the pad token ``P``, and every family has ``B`` and ``E``."""

    names: tuple[str, ...]

    def __post_init__(self):
        if not self.names or self.names[0] != "P" or len(set(self.names)) != len(self.names):
            raise TaskConfigError(f"vocab: names must start with the pad token 'P' and be unique, got {self.names}")

    @property
    def size(self) -> int:
        return len(self.names)

    PAD = 0  # a class constant, not a field

    def id(self, name: str) -> int:
        if name not in self.names:
            raise TaskConfigError(f"vocab: no token {name!r}; tokens are {list(self.names)}")
        return self.names.index(name)

    def decode(self, ids: Sequence[int]) -> str:
        """Human-readable trial, pads dropped: ``'B D0 D2 T R R E'``."""
        return " ".join(self.names[i] for i in ids if i != self.PAD)


@dataclass
class Trials:
    """A batch of trials of any family.

    ``tokens`` [N, L] right-padded; ``scored`` [N, L-1] marks the next-token targets (target t is
    token t + 1) that trial accuracy scores: the deterministic answer, all of which greedy decoding
    must reproduce; ``intervenable`` [N, L] marks the positions an interchange may target;
    ``quantities`` holds the family's named values per trial ([N] each)."""

    tokens: np.ndarray
    scored: np.ndarray
    intervenable: np.ndarray
    quantities: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def prompt_end(self) -> np.ndarray:
        """[N] the input position whose prediction is the first scored target (greedy decoding
        writes from there on)."""
        return self.scored.argmax(1)


class TaskFamily:
    """Base of the task families; see the module docstring for what a subclass defines."""

    vocab: Vocab
    #: the named quantities of a trial that the splits refer to (the first groups IIA by default)
    quantities: tuple[str, ...] = ()

    def sample(self, split: Split, n: int, rng: np.random.Generator) -> Trials:
        """``n`` trials of ``split`` (``train``, ``heldout`` or ``ood``); an empty split gives 0 trials."""
        raise NotImplementedError

    def has_split(self, split: Split) -> bool:
        """Whether ``split`` holds any trial (a family without held-out values has no ``heldout``)."""
        return True

    @property
    def token_roles(self) -> dict[str, int | tuple[int, ...]]:
        """Role -> token id(s) that programs may read (e.g. ``trigger``, ``demo``, ``eos``)."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        return self.vocab.decode(ids)

    @property
    def family(self) -> str:
        """The family's name in results and reports (its class name unless set)."""
        return type(self).__name__

    def config(self) -> dict:
        """``{"class_path", "init_args"}``: how to build this task again (stored in checkpoints)."""
        params = [p for p in inspect.signature(type(self).__init__).parameters.values()
                  if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        plain = lambda v: list(v) if isinstance(v, tuple) else v
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}",
                "init_args": {p.name: plain(getattr(self, p.name)) for p in params}}


def build_task(config: dict) -> TaskFamily:
    """Instantiate a task from ``{"class_path": ..., "init_args": {...}}`` (its ``config()``)."""
    path = config.get("class_path", "") if isinstance(config, dict) else ""
    cls = import_class(path, TaskFamily, "task")
    return cls(**config.get("init_args", {}))


def response_target_mask(trigger, count, length: int):
    """[N, length-1] bool mask over next-token *targets* (target t is token t+1) that belong to the
    response phase: the ``count`` responses and the E. Works on numpy arrays and torch tensors."""
    import torch  # the tasks themselves are numpy: torch only for a tensor argument

    if isinstance(trigger, torch.Tensor):
        t = torch.arange(length - 1, device=trigger.device)[None, :]
    else:
        t = np.arange(length - 1)[None, :]
    lo = trigger[:, None]  # target index of the first R is trigger (input T predicts R)
    return (t >= lo) & (t <= lo + count[:, None])
