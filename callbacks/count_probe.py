"""Example of a user callback: a linear probe of the Up-Down count (copy it to start your own)."""

import lightning.pytorch as pl
import numpy as np
import torch

from numsym_pl.programs import TokenKinds, get_program


class CountProbe(pl.Callback):
    """Every N epochs, fit a least-squares read-out of Up-Down ``count`` from the net's ``site``
    on half of fresh trials and log its R² on the other half as ``probe/count_r2``.

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
        task = trainer.datamodule.task
        rng = np.random.default_rng(trainer.current_epoch)  # own RNG: training is not disturbed
        trials = task.sample(task.sample_counts("train", self.n_trials, rng), rng)
        state, _ = get_program("up_down").trace(trials.tokens, TokenKinds.of(task), trials.count)
        with torch.no_grad():
            h = pl_module.net.states(torch.as_tensor(trials.tokens, device=pl_module.device), self.site)
        keep = torch.as_tensor(trials.tokens != task.vocab.PAD)
        X = torch.cat([h[keep].float().cpu(), torch.ones(int(keep.sum()), 1)], 1)  # [N, d + 1]
        y = torch.as_tensor(state["count"])[keep].float()[:, None]
        half = len(X) // 2
        w = torch.linalg.lstsq(X[:half], y[:half]).solution
        resid = y[half:] - X[half:] @ w
        r2 = 1 - resid.pow(2).sum() / (y[half:] - y[half:].mean()).pow(2).sum()
        pl_module.log("probe/count_r2", r2.item())
