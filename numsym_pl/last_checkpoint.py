"""``LastCheckpoint``: Lightning's ModelCheckpoint whose ``last.ckpt`` is the net the fit ended with.

ModelCheckpoint writes ``last.ckpt`` only beside a periodic checkpoint (every ``every_n_epochs``) and,
at the end of training, only if it never wrote one. A fit that stops between two periodic
checkpoints (``trained_at`` stopping it once trained, or a ``max_epochs`` that is no multiple of
``every_n_epochs``) would leave ``last.ckpt`` up to ``every_n_epochs - 1`` epochs behind the net it
trained, and ``numsym_pl das``, the exports and the studies read ``last.ckpt``. This one writes it
again at the end of training whenever the last save was at an earlier step.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint


class LastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint (same arguments) that also writes ``last.ckpt`` at the end of training
    whenever the fit has stepped since the last save."""

    def on_train_end(self, trainer, pl_module) -> None:
        if self.save_last and self._last_checkpoint_saved and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
