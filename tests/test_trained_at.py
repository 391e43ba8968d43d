"""TrainedAt: the paper's criterion (every monitored trial accuracy >= threshold, k validations
running), stopping there; and the config groups that let overlays change it without a callback list."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from jsonargparse import Namespace

from numsym_pl.trained_at import TrainedAt
from numsym_pl.cli import NumSymCLI
from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


class Scripted(pl.LightningModule):
    """Logs the scripted accuracies, one entry per validation."""

    def __init__(self, script: list[dict]):
        super().__init__()
        self.layer, self.script, self.checks = torch.nn.Linear(1, 1), script, 0

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        values = self.script[min(self.checks, len(self.script) - 1)]
        for k, v in values.items():
            self.log(k, v, on_epoch=True)

    def on_validation_epoch_end(self):
        self.checks += 0 if self.trainer.sanity_checking else 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=2)

    val_dataloader = train_dataloader


def _fit(tmp_path, script, callback, max_epochs=10, ckpt_path=None):
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[callback],
                         logger=pl.loggers.CSVLogger(tmp_path, name="r", version=0),
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(Scripted(script), ckpt_path=ckpt_path)
    rows = list(csv.DictReader(open(tmp_path / "r" / "version_0" / "metrics.csv")))
    return trainer, {k: float(v) for r in rows for k, v in r.items() if k.startswith("trained/") and v}


ID, HELD = "val/acc_trial", "val/acc_trial_heldout"


def test_a_single_spike_does_not_count_and_the_fit_stops_after_patience_checks(tmp_path):
    script = [{ID: 0.5, HELD: 0.5}, {ID: 1.0, HELD: 1.0}, {ID: 0.9, HELD: 1.0}, {ID: 1.0, HELD: 1.0},
              {ID: 1.0, HELD: 1.0}]
    trainer, trained = _fit(tmp_path, script, TrainedAt(patience=2))
    assert trained["trained/epoch"] == 4 and trained["trained/stopped"] == 1.0
    assert trainer.current_epoch == 5  # epochs 0..4 ran, then it stopped (max_epochs 10)


def test_held_out_accuracy_below_threshold_keeps_training(tmp_path):
    trainer, trained = _fit(tmp_path, [{ID: 1.0, HELD: 0.99}], TrainedAt(patience=1), max_epochs=4)
    assert not trained and trainer.current_epoch == 4


def test_a_monitor_the_run_never_logs_is_left_out_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="acc_trial_heldout"):
        _, trained = _fit(tmp_path, [{ID: 1.0}], TrainedAt(patience=1))
    assert trained["trained/epoch"] == 0


def test_without_stop_it_records_the_epoch_and_trains_on(tmp_path):
    trainer, trained = _fit(tmp_path, [{ID: 0.5, HELD: 1}, {ID: 1.0, HELD: 1.0}], TrainedAt(patience=2, stop=False),
                            max_epochs=5)
    assert trained["trained/epoch"] == 2 and trained["trained/stopped"] == 0.0 and trainer.current_epoch == 5


def test_the_streak_survives_a_resume():
    a = TrainedAt(patience=3)
    a.streak = 2
    b = TrainedAt(patience=3)
    b.load_state_dict(a.state_dict())
    assert b.streak == 2 and b.reached is None


def test_patience_below_one_is_refused_by_name():
    with pytest.raises(ConfigError, match="trained_at.patience"):
        TrainedAt(patience=0)


def _config(*configs) -> Namespace:
    cli = NumSymCLI(NextTokenLM, TrialDataModule, run=False,
                    args=[a for c in configs for a in ("--config", str(ROOT / "configs" / c))])
    return cli.config


def test_overlays_change_the_checkpoint_and_the_stop_without_repeating_a_callback_list():
    for path in (ROOT / "configs").rglob("*.yaml"):
        text = path.read_text()
        assert "callbacks.ModelCheckpoint" not in text and "TrainedAt" not in text, path
    base, dynamics, only = _config("gru.yaml"), _config("gru.yaml", "callbacks/dynamics.yaml"), \
        _config("gru.yaml", "callbacks/checkpoint_only.yaml")
    assert (base.checkpoint.every_n_epochs, base.checkpoint.save_top_k, base.trained_at.stop) == (25, -1, True)
    assert ((dynamics.checkpoint.every_n_epochs, dynamics.checkpoint.save_top_k, dynamics.trained_at.stop)
            == (10, -1, False))
    assert (only.checkpoint.save_top_k, only.checkpoint.save_last, only.trained_at.stop) == (0, True, True)
    assert only.trainer.callbacks == [] and len(dynamics.trainer.callbacks) == 1


def test_last_ckpt_is_the_net_a_fit_ends_with_between_periodic_checkpoints(tmp_path, cli):
    """Checkpoints every 5 epochs and a fit of 7 (one step each): ``last.ckpt`` holds the net after
    step 7 (Lightning's own ModelCheckpoint leaves it at epoch 4, step 5)."""
    res = cli("fit", "--config", ROOT / "configs" / "gru.yaml", "--trainer.max_epochs", "7",
              "--trainer.callbacks", "[]", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
              "--trainer.default_root_dir", tmp_path, "--checkpoint.dirpath", tmp_path / "ckpts",
              "--checkpoint.every_n_epochs", "5", "--data.val_size", "16", "--data.train_size", "64",
              "--model.net.init_args.hidden_size", "16", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    last = torch.load(tmp_path / "ckpts" / "last.ckpt", map_location="cpu", weights_only=False)
    periodic = torch.load(tmp_path / "ckpts" / "epoch004.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 7 and periodic["global_step"] == 5
    assert any(not torch.equal(v, periodic["state_dict"][k]) for k, v in last["state_dict"].items())
