"""NextTokenLM: next-token training of any ``SequenceModel`` with trial-level accuracy metrics."""

from __future__ import annotations

import math
from typing import Literal, Optional

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from numsym_pl.data import VAL_SETS as VAL_SET_ORDER
from numsym_pl.errors import ConfigError, TrainingDiverged
from numsym_pl.iit import InterchangeLoss, InterchangeTraining
from numsym_pl.models.interface import build_net, net_mismatch


def response_correct(logits: torch.Tensor, tokens: torch.Tensor, scored: torch.Tensor, at: torch.Tensor | None = None):
    """Per-trial and per-token correctness of the scored targets (``scored`` [B, L-1], the task's
    answer: numeric equivalence's response phase), from logits [B, L-1, V] or, given ``at`` [B, L-1]
    (a superset of ``scored``), from the logits at those positions only, [M, V] (what
    ``net(tokens, out_mask=at)`` returns).

    A trial is correct when greedy free-running decoding from the prompt reproduces every scored
    token (the R's and the E). That is exactly "every teacher-forced argmax of the response phase is right":
    if the first k generated tokens are right, the model's input at step k+1 *is* the true prefix,
    so its greedy choice there is the teacher-forced argmax; and the first wrong argmax makes the
    decoded trial wrong. One forward pass therefore measures free-running trial accuracy;
    ``tests/test_lit_module.py`` checks this against an explicit step-by-step decoder.

    Returns (trial_ok [B] bool, token_ok [B, L-1] bool, response mask [B, L-1] bool).
    """
    if at is None:
        predicted = logits.argmax(-1)
    else:  # -1, no token, where no logits were computed (never a scored position)
        predicted = tokens.new_full(scored.shape, -1)
        predicted[at] = logits.argmax(-1)
    token_ok = predicted == tokens[:, 1:]  # [B, L-1]
    trial_ok = (token_ok | ~scored).all(1)
    return trial_ok, token_ok, scored


@torch.no_grad()
def greedy_decode(net: nn.Module, tokens: torch.Tensor, prompt_end: torch.Tensor, steps: int,
                  forward=None) -> torch.Tensor:
    """Free-running greedy decoding: keep each trial up to ``prompt_end``, then let the model write
    ``steps`` tokens, each fed back as the next input. Returns the written tokens [B, steps].
    ``forward(tokens) -> logits`` replaces ``net(tokens)`` (e.g. a patched run)."""
    forward = forward or net
    B = len(tokens)
    buf = torch.cat([tokens, tokens.new_zeros(B, steps + 1)], 1)
    b = torch.arange(B, device=tokens.device)
    out = []
    for k in range(steps):
        pos = prompt_end + k
        nxt = forward(buf[:, : int(pos.max()) + 1])[b, pos].argmax(-1)
        buf[b, pos + 1] = nxt
        out.append(nxt)
    return torch.stack(out, 1)


class NextTokenLM(pl.LightningModule):
    """Trains ``net`` by next-token prediction and reports trial accuracy on each validation set.

    Args:
        net: the sequence model (``numsym_pl.models.GRULM``, ``LSTMLM``, ``TransformerLM``, ...).
        lr: peak learning rate.
        optimizer: ``adam`` (reference) or ``adamw``.
        weight_decay: weight decay (decoupled for adamw).
        warmup_steps: linear learning-rate warm-up, in optimizer steps.
        lr_decay: after warm-up, ``none`` keeps lr constant (reference); ``cosine`` decays it to
            ``min_lr_ratio * lr`` at the last step (steadier final checkpoints).
        min_lr_ratio: floor of the cosine decay, as a fraction of lr.
        loss_on: ``all`` non-pad next-token positions (reference, includes the random demo tokens)
            or ``response``: the targets trial accuracy scores only (numeric equivalence: the response phase).
        pad_id: padding token id (linked from the data module).
        interchange: also train by interchange interventions (``numsym_pl.iit``): a program's
            variable planted in a subspace of a site, the positive control of DAS; None: next-token
            prediction alone.
    """

    def __init__(self, net: nn.Module, lr: float = 5e-4, optimizer: Literal["adam", "adamw"] = "adam",
                 weight_decay: float = 0.0, warmup_steps: int = 100,
                 lr_decay: Literal["none", "cosine"] = "none", min_lr_ratio: float = 0.1,
                 loss_on: Literal["all", "response"] = "all", pad_id: int = 0,
                 interchange: Optional[InterchangeTraining] = None):
        super().__init__()
        if loss_on not in ("all", "response"):
            raise ConfigError(f"loss_on: must be 'all' or 'response', got {loss_on!r}")
        if lr_decay not in ("none", "cosine"):
            raise ConfigError(f"lr_decay: must be 'none' or 'cosine', got {lr_decay!r}")
        for field, value, ok, rule in (("lr", lr, lr >= 0 and math.isfinite(lr), ">= 0 (0 freezes the weights)"),
                                       ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
                                       ("warmup_steps", warmup_steps, warmup_steps >= 0, ">= 0"),
                                       ("min_lr_ratio", min_lr_ratio, 0 <= min_lr_ratio <= 1, "in [0, 1]")):
            if not ok:
                raise ConfigError(f"model.{field}: must be {rule}, got {value}")
        if optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer: must be 'adam' or 'adamw', got {optimizer!r}")
        if isinstance(net, dict):  # rebuilt from a checkpoint's hyper-parameters
            net = build_net(net)
        # the net goes into the checkpoint as plain data (class path + arguments), never pickled
        self.save_hyperparameters(ignore=["net", "interchange"])
        self.hparams["net"] = getattr(net, "init_config", None)  # None: a net outside SequenceModel
        if isinstance(interchange, dict):  # rebuilt from a checkpoint's hyper-parameters
            interchange = InterchangeTraining(**interchange)
        self.hparams["interchange"] = None if interchange is None else interchange.config()
        self.interchange = None if interchange is None else InterchangeLoss(interchange)
        self.net = net
        self.val_metrics = nn.ModuleDict({
            f"{name}_{kind}": MeanMetric() for name in VAL_SET_ORDER for kind in ("acc_trial", "acc_token", "loss")
        })

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse, by name, a checkpoint of another architecture or size before loading weights."""
        why = net_mismatch(checkpoint.get("hyper_parameters", {}).get("net"), self.hparams["net"])
        if why:
            raise ConfigError(f"ckpt_path: {why}")

    def loss_mask(self, batch: dict) -> torch.Tensor:
        """[B, L-1] bool: the next-token targets the loss is on (``loss_on``)."""
        tokens = batch["tokens"]
        if self.hparams.loss_on == "all":
            return tokens[:, 1:] != self.hparams.pad_id
        return batch["scored"]

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Cross-entropy on the loss positions, from full logits [B, L-1, V] or from the logits at
        those positions only, [M, V] (what ``net(tokens, out_mask=loss_mask)`` returns)."""
        mask = self.loss_mask(batch)
        logits = logits[mask] if logits.dim() == 3 else logits
        return F.cross_entropy(logits.float(), batch["tokens"][:, 1:][mask])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        # the decoder runs only where the loss is (44 % of a batch is padding)
        task_loss = self.loss(self.net(batch["tokens"][:, :-1], out_mask=self.loss_mask(batch)), batch)
        # train/loss stays the next-token loss; the interchange loss logs train/iit_loss beside it
        loss = task_loss if self.interchange is None else task_loss + self.interchange.training_loss(self)
        if not torch.isfinite(loss):  # stop before the optimizer writes NaNs into the weights
            raise TrainingDiverged(f"loss: {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; "
                                   "training stopped, the last checkpoint written before it is kept")
        self.log("train/loss", task_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["tokens"]))
        return loss

    def on_fit_start(self) -> None:  # metrics may hold state from a spawned process (ddp_spawn)
        for m in self.val_metrics.values():
            m.reset()

    def _val_set(self, dataloader_idx: int) -> str:
        names = getattr(self.trainer.datamodule, "val_set_names", VAL_SET_ORDER) if self._trainer else VAL_SET_ORDER
        return names[dataloader_idx]

    def validation_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        name = self._val_set(dataloader_idx)
        # logits only where a metric reads them: padding (a recurrent net's rows stop at their last
        # such position) costs nothing, as in training
        loss_mask = self.loss_mask(batch)
        at = loss_mask | batch["scored"]
        logits = self.net(batch["tokens"][:, :-1], out_mask=at)  # [M, V]
        trial_ok, token_ok, mask = response_correct(logits, batch["tokens"], batch["scored"], at)
        suffix = "" if name == "id" else f"_{name}"
        B = len(trial_ok)
        # the loss is a mean over the batch's loss tokens, so it is weighted by their number: the
        # logged val/loss is the set's token mean, whatever val_batch_size cuts it into
        updates = {"acc_trial": (trial_ok.float(), 1), "acc_token": (token_ok[mask].float(), 1),
                   "loss": (self.loss(logits[loss_mask[at]], batch), int(loss_mask.sum()))}
        for kind, (value, weight) in updates.items():
            metric = self.val_metrics[f"{name}_{kind}"]
            metric.update(value, weight)
            self.log(f"val/{kind}{suffix}", metric, on_epoch=True, add_dataloader_idx=False, batch_size=B,
                     prog_bar=(kind == "acc_trial" and name == "id"))

    def on_validation_epoch_end(self) -> None:
        if self.interchange is not None and self._trainer is not None:
            self.interchange.validate(self)

    def configure_optimizers(self):
        cls = torch.optim.AdamW if self.hparams.optimizer == "adamw" else torch.optim.Adam
        opt = cls(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        warm = max(1, self.hparams.warmup_steps)
        total = max(warm + 1, int(self.trainer.estimated_stepping_batches)) if self._trainer else warm + 1
        floor, cosine = self.hparams.min_lr_ratio, self.hparams.lr_decay == "cosine"

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            if not cosine:
                return 1.0
            progress = min(1.0, (step - warm) / (total - warm))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """The greedily decoded answers [B, S] (S: the longest scored answer) and the batch's quantities."""
        steps = int(batch["scored"].sum(1).max())
        extra = {k: v for k, v in batch.items() if k not in ("tokens", "scored", "prompt_end")}
        return {"decoded": greedy_decode(self.net, batch["tokens"], batch["prompt_end"], steps), **extra}
