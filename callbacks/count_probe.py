"""Example of a user callback: a linear probe of the Up-Down count (copy it to start your own)."""

import lightning.pytorch as pl

from numsym_pl.analysis.probe import linear_decodability


class CountProbe(pl.Callback):
    """Every N epochs, fit least-squares read-outs of Up-Down ``count`` and ``phase`` from the net's
    ``site`` on half of fresh trials and log, on the other half, ``probe/count_r2`` and
    ``probe/phase_acc``.

    Args:
        site: the model site to read.
        every_n_epochs: how often to probe.
        n_trials: trials sampled for each probe.
    """

    def __init__(self, site: str = "state", every_n_epochs: int = 10, n_trials: int = 400):
        self.site, self.every_n_epochs, self.n_trials = site, every_n_epochs, n_trials

    def on_train_epoch_end(self, trainer, pl_module):
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        # seeded by the epoch: its own RNG, so training is not disturbed
        probe = linear_decodability(pl_module.net, trainer.datamodule.task, self.site, self.n_trials,
                                    seed=trainer.current_epoch)
        pl_module.log("probe/count_r2", probe["count_r2"])
        pl_module.log("probe/phase_acc", probe["phase_acc"])
