"""How DAS fits and scores an alignment (``SearchSettings``), and the precision and batch size its
no-grad forwards run at."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal

import torch

from numsym_pl.errors import ConfigError


@dataclass
class SearchSettings:
    """How to fit and score an alignment's featurizer.

    The fit runs Adam with a linear warm-up over ``warmup_steps`` and a cosine decay to 0 at
    ``max_steps`` (``schedule: cosine``), checks IIA on the validation pairs every ``eval_every``
    steps, and keeps the featurizer of the best check (ties: the earlier). It stops at ``target_iia``
    (``stopped: target``), when the validation loss has not fallen by ``plateau_delta`` (relative)
    for ``patience`` checks (``plateau``), or at ``max_steps`` (``budget``); the result records which,
    and the step of the kept featurizer (``best_step``). ``bench/das_convergence.py`` measures what
    these defaults give against a long constant-rate fit.

    Args:
        n_train: training pairs.
        n_val: validation pairs (early stopping and the kept featurizer).
        n_test: held-out pairs the reported IIA is measured on.
        max_steps: most optimizer steps (the schedule's length).
        batch_size: pairs per step.
        lr: Adam's peak learning rate.
        schedule: ``cosine`` (warm-up, then cosine decay to 0 at ``max_steps``) or ``constant``.
        warmup_steps: steps of the linear warm-up from 0 to ``lr``.
        eval_every: steps between checks of IIA on a training subset and the validation pairs.
        target_iia: stop once train and validation IIA both reach it.
        patience: checks without progress on the plateau metric before the fit stops.
        plateau_metric: ``loss`` (the validation cross-entropy must fall by ``plateau_delta``,
            relative) or ``iia`` (validation IIA must rise by more than ``plateau_delta``, absolute).
        plateau_delta: the least progress that counts (see ``plateau_metric``).
        keep: ``best`` (the featurizer of the check with the best validation IIA) or ``last``.
        start: where a learned featurizer starts: ``principal_axes`` (its columns the principal axes of
            the site's states on the training sources, largest variance first; the untrained-net
            control starts the same way on its own states) or ``random`` (a rotation drawn from ``seed``).
        seed: seed of the pairs, the featurizer's start and the batch order (a stream of its own:
            ``numsym_pl.seeding.derive``, never the training's).
        seeds: DAS seeds: the alignment is fitted ``seeds`` times, each with its own pairs, start and
            batch order (``seed`` and streams derived from it); the result holds each one's IIA and
            interval, and their mean, sd and a 95 % t-interval over seeds.
        baselines: also score identity, full-state swap and random rotations.
        random_seeds: random rotations (of the alignment's subspace size) scored on the test pairs;
            ``iia_random`` is their mean, ``controls.random_subspace`` holds mean, sd and each value.
        controls: also fit and score the alignment on an untrained net of the same architecture
            and width (``numsym_pl.das.controls``; ``numsym_pl das --controls``, a study's
            ``das: {controls: true}``); doubles the time of an alignment. Off by default: with
            whole-sequence IIA it is about 0 whatever the alignment, since a random net emits no task
            sequence for any swap to complete, so it cannot fail.
        null: also fit the alignment, with the same featurizer, subspace and settings on the same
            net, against the program with the intervened variables' values permuted by a fixed
            derangement (``numsym_pl.das.controls.permuted_null``, ``controls.null``): a causal model
            that should not align. Post hoc only (``numsym_pl das``, a study's cells), for DAS
            alignments; doubles the time of an alignment.
        precision: ``32`` or ``bf16`` (autocast for the net; the featurizer is always fp32).
        progress: show a progress bar.
        orthogonal_map: ``matrix_exp`` (PyTorch's default, as pyvene) or ``cayley`` (cheaper per
            step; another path to the same set of rotations).
        monitor_test: also score the test pairs at every check, into the history (``iia_test``),
            for convergence benches; never used to choose or stop.
        cl_weight: weight of the counterfactual-latent loss added to the fit's cross-entropy
            (``numsym_pl.das.counterfactual_latents``): it pulls each patched state at ``i_t``
            towards a natural state of the program state the pair writes there. 0 (the default)
            fits on the cross-entropy alone; swaps at one position only.
        cl_target: that natural state: ``nearest`` (the one nearest to the pair's unpatched state)
            or ``mean`` (their mean, Grant's CL vectors).
        drift: also measure how far the patched states lie from the natural ones, for the
            learned swap, the full-state swap and a random rotation (``numsym_pl.das.drift``).
    """

    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    max_steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-2
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int = 50
    eval_every: int = 50
    target_iia: float = 0.995
    patience: int = 6
    plateau_metric: Literal["loss", "iia"] = "loss"
    plateau_delta: float = 0.01
    keep: Literal["best", "last"] = "best"
    start: Literal["principal_axes", "random"] = "principal_axes"
    seed: int = 0
    seeds: int = 1
    baselines: bool = True
    random_seeds: int = 5
    controls: bool = False
    null: bool = True
    precision: str = "32"
    progress: bool = True
    orthogonal_map: Literal["matrix_exp", "cayley"] = "matrix_exp"
    monitor_test: bool = False
    cl_weight: float = 0.0
    cl_target: Literal["nearest", "mean"] = "nearest"
    drift: bool = True

    def __post_init__(self):
        if not self.cl_weight >= 0:
            raise ConfigError(f"settings.cl_weight: must be >= 0, got {self.cl_weight}")
        if self.cl_target not in ("nearest", "mean"):
            raise ConfigError(f"settings.cl_target: 'nearest' or 'mean', got {self.cl_target!r}")
        if self.random_seeds < 1:
            raise ConfigError(f"settings.random_seeds: must be >= 1, got {self.random_seeds}")
        if self.seeds < 1:
            raise ConfigError(f"settings.seeds: must be >= 1, got {self.seeds}")
        if self.max_steps < 1 or self.eval_every < 1 or self.warmup_steps < 0:
            raise ConfigError(f"settings: max_steps and eval_every must be >= 1 and warmup_steps >= 0, got "
                              f"{self.max_steps}, {self.eval_every}, {self.warmup_steps}")

    def lr_factor(self, step: int) -> float:
        """The learning rate at ``step`` as a fraction of ``lr`` (``torch.optim.lr_scheduler.LambdaLR``)."""
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.schedule == "constant":
            return 1.0
        span = max(self.max_steps - self.warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(step - self.warmup_steps, span) / span))

    #: the settings of the fit before the schedule: Adam at a constant 1e-3 from a random rotation, up to
    #: 2,000 steps, stopped after five checks without a validation IIA gain of 0.002, the last featurizer kept
    CONSTANT_RATE = dict(lr=1e-3, schedule="constant", warmup_steps=0, max_steps=2000, eval_every=100, patience=5,
                         plateau_metric="iia", plateau_delta=0.002, keep="last", start="random")


def autocast(device: torch.device, precision: str):
    if precision in ("32", "32-true", "fp32"):
        return contextlib.nullcontext()
    if precision.startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast(device.type, dtype=torch.float16)
    raise ConfigError(f"precision: unsupported DAS precision {precision!r}")


EVAL_ROWS_CPU = 256  # rows of one no-grad forward on the CPU (eval_batch)


def eval_batch(device: torch.device | str, swaps: int = 1) -> int:
    """Pairs per no-grad forward (source states, clean caches, scoring): on the CPU about
    ``EVAL_ROWS_CPU`` rows in all, the ``swaps`` batched together included, since batches whose
    states fit the caches run faster (``bench/das_eval_batch.py``); elsewhere 1,000 pairs as before.
    What a pair scores does not depend on it."""
    return max(1, EVAL_ROWS_CPU // swaps) if torch.device(device).type == "cpu" else 1000
