"""Interchange intervention training (IIT; Geiger et al. 2022): a net trained so that a program's
variable lives in a known subspace of a known site, the positive control of DAS.

Beside its next-token loss, the net is trained on counterfactual pairs (``numsym_pl.das.pairs``):
the site's state of the target run at ``i_t`` takes the source run's state at ``i_s`` on the
planted coordinates (the first ``subspace`` coordinates of the state, a fixed identity
featurizer), and the patched net is trained by cross-entropy to emit the program's counterfactual
answer. Gradients reach the net through the source run, the target run and the patched
continuation alike. DAS, which is not told where the variable was planted, must then find it.

``NextTokenLM(interchange=InterchangeTraining(...))`` adds the loss; a fit config asks for it with
``model: {interchange: {program: up_down, variables: [count], site: state}}``
(configs/positive_control/).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Optional

import torch
import torch.nn.functional as F

from numsym_pl.das.iia import exact_rows
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.pairs.counterfactual import PairBatch, make_pairs
from numsym_pl.errors import ConfigError
from numsym_pl.models.interface import SequenceModel, last_masked
from numsym_pl.programs import get_program
from numsym_pl.seeding import derive
from numsym_pl.tasks.base import TaskFamily


@dataclass
class InterchangeTraining:
    """What to plant where, and how hard.

    Args:
        program: the causal model whose variable is planted (a registered name or a class path).
        variables: the program variable(s) planted; several take consecutive blocks of ``subspace``
            coordinates, each pair swapping all of them.
        site: the net's site (``state``, ``resid.1``, ...); None: the net's ``default_site``.
        subspace: coordinates per variable: the first ``subspace * len(variables)`` coordinates of
            the site's state are the planted ones.
        weight: weight of the interchange loss beside the next-token loss.
        pairs_per_batch: counterfactual pairs in each training step.
        pool_size: pairs drawn at once; each step takes the next ``pairs_per_batch`` of the pool,
            and a new pool is drawn when it is used up (its seed derived from ``seed``, the pool's
            number and the process rank, so a resumed run draws the same pairs).
        val_pairs: pairs (drawn once) on which every validation logs ``val/iit_acc``, the fraction
            whose every scored counterfactual token the patched net predicts exactly.
        seed: seed of the pairs (a stream of its own, never the training's).
    """

    program: str = "up_down"
    variables: list[str] = field(default_factory=lambda: ["count"])
    site: Optional[str] = None
    subspace: int = 16
    weight: float = 1.0
    pairs_per_batch: int = 64
    pool_size: int = 4096
    val_pairs: int = 500
    seed: int = 0

    def __post_init__(self):
        program = get_program(self.program)
        self.variables = program.check_variables(self.variables)
        for name, value, least in (("subspace", self.subspace, 1), ("weight", self.weight, 0),
                                   ("pairs_per_batch", self.pairs_per_batch, 1), ("val_pairs", self.val_pairs, 0),
                                   ("seed", self.seed, 0)):
            if value < least:
                raise ConfigError(f"model.interchange.{name}: must be >= {least}, got {value}")
        if self.pool_size < self.pairs_per_batch:
            raise ConfigError(f"model.interchange.pool_size: must be >= pairs_per_batch ({self.pairs_per_batch}), "
                              f"got {self.pool_size}")

    def config(self) -> dict:
        """Plain data (what a checkpoint keeps): ``InterchangeTraining(**config)`` rebuilds it."""
        return {**asdict(self), "variables": list(self.variables)}


def trimmed(pairs: PairBatch) -> PairBatch:
    """The pairs with the counterfactual cut after the last scored target of any row."""
    end = int(last_masked(pairs.loss_mask).max()) + 2
    return replace(pairs, cf=pairs.cf[:, :end], loss_mask=pairs.loss_mask[:, : end - 1])


class InterchangeLoss:
    """The interchange loss of ``settings`` on a net and a task: pair pools, the patched forward
    with gradients into the net, and the accuracy of the patched predictions."""

    def __init__(self, settings: InterchangeTraining):
        self.settings = settings
        self.program = get_program(settings.program)
        self._pool: tuple[tuple, PairBatch] | None = None  # ((pool number, rank), pairs)
        self._val: tuple[int, PairBatch] | None = None  # (id of the task, pairs)
        self._swaps: dict[tuple, SubspaceSwap] = {}

    def site(self, net: SequenceModel) -> str:
        return net.check_site(self.settings.site or net.default_site)

    def swap(self, net: SequenceModel, device) -> SubspaceSwap:
        """The identity swap of the planted coordinates (no parameters)."""
        width, n = net.site_width(self.site(net)), len(self.settings.variables)
        key = (width, str(device))
        if key not in self._swaps:
            if self.settings.subspace * n > width:
                raise ConfigError(f"model.interchange.subspace: {n} block(s) of {self.settings.subspace} coordinates "
                                  f"do not fit the {width}-wide site {self.site(net)!r}")
            self._swaps[key] = SubspaceSwap(width, self.settings.subspace, n, kind="identity").to(device)
        return self._swaps[key]

    def _draw(self, task: TaskFamily, n: int, *stream) -> PairBatch:
        return make_pairs(task, self.program, self.settings.variables, n, derive(self.settings.seed, "iit", *stream),
                          floor=False)

    def batch(self, task: TaskFamily, step: int, rank: int = 0) -> PairBatch:
        """The pairs of training step ``step``: slice ``step`` of pool ``step // slices``."""
        s = self.settings
        slices = s.pool_size // s.pairs_per_batch
        number, at = divmod(step, slices)
        if self._pool is None or self._pool[0] != (number, rank):
            self._pool = ((number, rank), self._draw(task, s.pool_size, "pool", number, rank))
        return trimmed(self._pool[1][at * s.pairs_per_batch: (at + 1) * s.pairs_per_batch])

    def validation_pairs(self, task: TaskFamily) -> PairBatch:
        if self._val is None or self._val[0] != id(task):
            self._val = (id(task), self._draw(task, self.settings.val_pairs, "validation"))
        return self._val[1]

    def patched_logits(self, net: SequenceModel, pairs: PairBatch) -> torch.Tensor:
        """Logits [B, Lc-1, V] of the net on the counterfactual inputs, the target's state at ``i_t``
        taking the source's planted coordinates, with autograd through every run: the patch goes
        through the net's hook points (``forward_patched_by_hooks``), not its fast patched forward,
        which runs what lies below the patch without gradients. (On the reference GRU, 64 pairs,
        the hook points cost what the fast path does with the target's state recomputed with
        gradients: 0.09 s per step, forward and backward, on one CPU thread.)"""
        site, swap = self.site(net), self.swap(net, pairs.cf.device)
        rows = torch.arange(len(pairs), device=pairs.cf.device)
        source = net.states(pairs.source, site)[rows, pairs.source_pos]  # [B, d]
        return net.forward_patched_by_hooks(pairs.cf[:, :-1], site, pairs.target_pos, lambda h: swap(h, source),
                                            out_mask=pairs.loss_mask)

    def __call__(self, net: SequenceModel, pairs: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy per scored counterfactual token, [B] bool: rows predicted exactly)."""
        logits = self.patched_logits(net, pairs)
        loss = F.cross_entropy(logits[pairs.loss_mask].float(), pairs.cf[:, 1:][pairs.loss_mask])
        return loss, exact_rows(logits.detach(), pairs.cf, pairs.loss_mask)

    @torch.no_grad()
    def correct(self, net: SequenceModel, pairs: PairBatch, batch_size: int = 256) -> torch.Tensor:
        """[N] bool: the pairs whose every scored counterfactual token the patched net predicts
        exactly (no gradients: the fast patched forward of any net)."""
        site, swap, out = self.site(net), self.swap(net, pairs.cf.device), []
        for i in range(0, len(pairs), batch_size):
            p = trimmed(pairs[i: i + batch_size])
            rows = torch.arange(len(p), device=p.cf.device)
            source = net.states(p.source, site)[rows, p.source_pos]
            logits = net.forward_patched(p.cf[:, :-1], site, p.target_pos, lambda h: swap(h, source),
                                         out_mask=p.loss_mask)
            out.append(exact_rows(logits, p.cf, p.loss_mask))
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)

    # ---- what the training module calls -------------------------------------------------------------
    @staticmethod
    def task_of(lm) -> TaskFamily:
        task = getattr(lm.trainer.datamodule, "task", None)
        if task is None:
            raise ConfigError("model.interchange: the data module must expose `task` (numsym_pl.data.TrialDataModule)")
        return task

    def training_loss(self, lm) -> torch.Tensor:
        """The weighted interchange loss of ``lm``'s current step (its pairs drawn by ``global_step``,
        so a resumed run trains on the same ones); logs ``train/iit_loss`` and ``train/iit_acc`` (the
        step's pairs predicted exactly)."""
        pairs = self.batch(self.task_of(lm), lm.global_step, lm.global_rank).to(lm.device)
        loss, ok = self(lm.net, pairs)
        B = len(pairs)
        lm.log("train/iit_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=B)
        lm.log("train/iit_acc", ok.float().mean(), on_step=True, on_epoch=True, batch_size=B)
        return self.settings.weight * loss

    def validate(self, lm) -> None:
        """Log ``val/iit_acc`` on the validation pairs."""
        if self.settings.val_pairs == 0:
            return
        pairs = self.validation_pairs(self.task_of(lm)).to(lm.device)
        lm.log("val/iit_acc", self.correct(lm.net, pairs).float().mean(), batch_size=len(pairs))
