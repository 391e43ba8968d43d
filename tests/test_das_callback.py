"""DASCallback: logging, isolation from training, resume, bf16, wandb, DDP (2 CPU processes)."""

import csv
import os
import subprocess
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from callbacks.das import DASCallback
from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.data import TrialDataModule
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.models import GRULM
from numsym_pl.tasks import VOCAB, NumericEquivalence
from tests.conftest import numsym_pl_side_by_side

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = SearchSettings(n_train=256, n_val=64, n_test=64, max_steps=8, batch_size=32, eval_every=4, progress=False)
DATA = dict(task=NumericEquivalence("single", max_count=8, heldout_counts=(3,), ood_counts=(9, 10)), train_size=256,
            val_size=64, batch_size=32)


def _fit(tmp_path, callbacks, max_epochs=3, ckpt_path=None, dropout=0.0, **trainer_kwargs):
    pl.seed_everything(0)
    lm = NextTokenLM(GRULM(VOCAB.size, hidden_size=16, dropout=dropout), lr=3e-3, warmup_steps=1)
    logger = pl.loggers.CSVLogger(tmp_path, name="run", version=0)
    trainer = pl.Trainer(max_epochs=max_epochs, logger=logger, callbacks=callbacks, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, deterministic=True, log_every_n_steps=1,
                         **trainer_kwargs)
    trainer.fit(lm, TrialDataModule(**DATA), ckpt_path=ckpt_path)
    return trainer, list(csv.DictReader(open(tmp_path / "run" / "version_0" / "metrics.csv")))


def _col(rows, key):
    return [(r["epoch"], float(r[key])) for r in rows if r.get(key)]


@pytest.mark.parametrize("background", [False, True])
def test_logs_iia_at_every_nth_epoch_and_writes_the_figure(tmp_path, background):
    cb = DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=2, settings=SETTINGS,
                     background=background)
    trainer, rows = _fit(tmp_path, [cb], max_epochs=5, enable_checkpointing=False)
    iia = _col(rows, "das/up_down.count/state/iia")
    assert [e for e, _ in iia] == ["1.0", "3.0", "4.0"]  # epochs 1, 3 and the end of fit
    for key in ("iia_identity", "iia_full_swap", "iia_random", "steps", "seconds", "iia_lo", "iia_hi", "iia_none"):
        assert len(_col(rows, f"das/up_down.count/state/{key}")) == 3
    lo, hi = _col(rows, "das/up_down.count/state/iia_lo"), _col(rows, "das/up_down.count/state/iia_hi")
    assert all(a[1] <= v <= b[1] for a, (_, v), b in zip(lo, iia, hi))
    assert (tmp_path / "run" / "version_0" / "figures" / "learning_dynamics.png").stat().st_size > 10_000
    assert [r["epoch"] for r in cb.history] == [1, 3, 4] and cb.accuracy


def test_checks_are_dense_while_the_accuracy_is_in_transition(tmp_path):
    """``dense_between``: a check after every epoch whose validation accuracy lies in the window (here
    the whole of [0, 1): every validated epoch), beside the regular ones; none outside it."""
    cb = DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=10, settings=SETTINGS,
                     dense_between=(0.0, 1.0), at_fit_end=False)
    _fit(tmp_path, [cb], max_epochs=4, enable_checkpointing=False, check_val_every_n_epoch=2)
    assert [r["epoch"] for r in cb.history] == [1, 3]  # the epochs with a validation
    assert all(0 <= r["val/acc_trial"] < 1 for r in cb.accuracy)
    with pytest.raises(ValueError, match="dense_between"):
        DASCallback(dense_between=(0.5, 0.2))


def test_the_untrained_control_comes_first_at_step_0_and_once(tmp_path):
    cb = DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=2, settings=SETTINGS,
                     at_fit_start=True, warm_start=True)
    _, rows = _fit(tmp_path, [cb], max_epochs=2, enable_checkpointing=False)
    iia = [(r["epoch"], r["step"]) for r in rows if r.get("das/up_down.count/state/iia")]
    assert iia[0] == ("-1.0", "0") and [r["epoch"] for r in cb.history] == [-1, 1]
    assert not cb.history[1]["warm_start"]  # training's fits do not start from the untrained net's rotation


@pytest.mark.parametrize("background", [False, True])
def test_training_is_identical_with_and_without_the_callback(tmp_path, background):
    """Dropout makes training draw from the global RNG, so DAS touching it would show."""
    cb = DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=1, settings=SETTINGS,
                     at_fit_start=True, background=background)
    _, with_das = _fit(tmp_path / "a", [cb], enable_checkpointing=False, dropout=0.3)
    _, without = _fit(tmp_path / "b", [], enable_checkpointing=False, dropout=0.3)
    for key in ("train/loss_step", "val/acc_trial", "val/loss", "val/acc_token"):
        assert _col(with_das, key) == _col(without, key) and _col(without, key)


@pytest.mark.parametrize("background", [False, True])
def test_resume_continues_the_history_without_duplicates_or_gaps(tmp_path, background):
    def make():
        return [DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=1,
                            settings=SETTINGS, warm_start=True, background=background),
                pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_epochs=1, save_top_k=-1,
                                             filename="e{epoch}", auto_insert_metric_name=False)]

    first = make()
    _fit(tmp_path / "first", first, max_epochs=2)
    ckpt = tmp_path / "ckpt" / "e1.ckpt"  # written after epoch 1's DAS ran
    state = torch.load(ckpt, weights_only=True)["callbacks"]
    (das_state,) = [v for k, v in state.items() if "DASCallback" in k]
    assert [r["epoch"] for r in das_state["history"]] == [0, 1]  # in the background too: it waits for the fit
    second = make()
    _fit(tmp_path / "second", second, max_epochs=4, ckpt_path=str(ckpt))
    assert [r["epoch"] for r in second[0].history] == [0, 1, 2, 3]
    assert [r["warm_start"] for r in second[0].history] == [False, True, True, True]


def test_bf16_keeps_the_rotation_fp32_and_iia_close_to_fp32(trained_gru):
    net, task = trained_gru
    s = SearchSettings(n_train=1000, n_val=200, n_test=500, max_steps=60, batch_size=64, eval_every=30, progress=False)
    r32, swap32 = run_alignment(net, task, Alignment("up_down", "count", "state", Interchange(8)), s)
    s.precision = "bf16"
    r16, swap16 = run_alignment(net, task, Alignment("up_down", "count", "state", Interchange(8)), s)
    assert swap16.weight.dtype == torch.float32
    assert r32.iia > 0.3  # a real alignment, not two zeros
    assert abs(r32.iia - r16.iia) <= 0.02, (r32.iia, r16.iia)


@pytest.fixture(scope="module")
def trained_gru(tmp_path_factory):
    pl.seed_everything(0)
    dm = TrialDataModule(**{**DATA, "train_size": 512})
    lm = NextTokenLM(GRULM(VOCAB.size, hidden_size=32), lr=3e-3, warmup_steps=10)
    pl.Trainer(max_epochs=40, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, default_root_dir=tmp_path_factory.mktemp("g")).fit(lm, dm)
    return lm.net, dm.task


def test_wandb_offline_summary_holds_das_keys(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cb = DASCallback([Alignment("up_down", "count", "state", Interchange(4))], every_n_epochs=1, settings=SETTINGS)
    pl.seed_everything(0)
    logger = pl.loggers.WandbLogger(project="t", save_dir=str(tmp_path), offline=True)
    trainer = pl.Trainer(max_epochs=1, logger=logger, callbacks=[cb], enable_progress_bar=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(NextTokenLM(GRULM(VOCAB.size, hidden_size=16)), TrialDataModule(**DATA))
    summary = dict(logger.experiment.summary)
    wandb.finish()
    assert "das/up_down.count/state/iia" in summary and "das/up_down.count/state/iia_full_swap" in summary
    assert "figures/learning_dynamics" in summary and "das/history" in summary
    assert "das/up_down.count/state/fit_curve" in summary  # the fit's validation IIA and loss over its steps


def _cli_fit(tmp_path, *extra, background=False) -> tuple:
    """(cwd, args, env) of ``numsym_pl fit`` of a tiny GRU with a DAS callback, for
    ``numsym_pl_side_by_side``; ``_logged_iia`` reads what it logged."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "das.yaml"
    cfg.write_text("""
trainer:
  max_epochs: 2
  accelerator: cpu
  enable_progress_bar: false
  logger: {class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: runs, name: t, version: 0}}
  callbacks:
    - class_path: callbacks.das.DASCallback
      init_args:
        every_n_epochs: 1
        background: BACKGROUND
        alignments: [{program: up_down, variables: [count], site: state, intervention: {class_path: Interchange, """
                   """init_args: {subspace: 4}}}]
        settings: {n_train: 128, n_val: 64, n_test: 64, max_steps: 4, batch_size: 32, eval_every: 2, progress: false}
model:
  lr: 0.0
  net: {class_path: numsym_pl.models.GRULM, init_args: {hidden_size: 16}}
data: {task: {class_path: numsym_pl.tasks.NumericEquivalence, init_args: {variant: single, max_count: 8, """
                   """heldout_counts: [3], ood_counts: [9]}}, train_size: 128, val_size: 32, batch_size: 32}
""".replace("BACKGROUND", str(background).lower()))
    # a trainer on one thread fits in its own process; background fits need a thread to spare
    env = dict(os.environ, OMP_NUM_THREADS="2" if background else "1", WANDB_MODE="offline")
    return tmp_path, ["fit", "--config", cfg, *extra], env


def _logged_iia(tmp_path, res: subprocess.CompletedProcess) -> list:
    """The DAS rows (IIA, then full-swap IIA) the fit in ``tmp_path`` logged."""
    assert res.returncode == 0, res.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "runs" / "t" / "version_0" / "metrics.csv")))
    return _col(rows, "das/up_down.count/state/iia") + _col(rows, "das/up_down.count/state/iia_full_swap")


def test_ddp_two_cpu_processes_log_the_single_process_iia(tmp_path):
    """lr = 0 keeps the weights equal in both runs, so the logged IIA must match exactly; the DDP
    run takes part in every collective of training and finishes (a hang hits the timeout), each of
    its ranks fitting in a background worker of its own (one thread, as the single run here)."""
    runs = _cli_fit(tmp_path / "single"), _cli_fit(tmp_path / "ddp", "--trainer.strategy", "ddp_spawn",
                                                      "--trainer.devices", "2", background=True)
    single, ddp = (_logged_iia(run[0], res) for run, res in zip(runs, numsym_pl_side_by_side(*runs, timeout=400)))
    assert single and ddp == single


def test_context_interventions_run_from_the_callback(tmp_path):
    from numsym_pl.models import TransformerLM

    cb = DASCallback([Alignment("ctx_distr", None, "resid.1", intervention="attention_hiding"),
                      Alignment("up_down", "count", "resid.1", Interchange(4))], every_n_epochs=1, settings=SETTINGS)
    pl.seed_everything(0)
    logger = pl.loggers.CSVLogger(tmp_path, name="run", version=0)
    trainer = pl.Trainer(max_epochs=1, logger=logger, callbacks=[cb], enable_progress_bar=False,
                         enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(NextTokenLM(TransformerLM(VOCAB.size, d_model=16)), TrialDataModule(**DATA))
    rows = list(csv.DictReader(open(tmp_path / "run" / "version_0" / "metrics.csv")))
    assert _col(rows, "das/attention_hiding.ctx_distr/attn/iia") and _col(rows, "das/up_down.count/resid.1/iia")
    assert list(cb.rotations) == ["up_down.count/resid.1"]


def test_a_subspace_too_wide_for_the_site_fails_before_training(tmp_path):
    cb = DASCallback([Alignment("up_down", "count+phase", "state", Interchange(12))], every_n_epochs=5,
                     settings=SETTINGS)
    with pytest.raises(ValueError, match="^subspace:"):
        _fit(tmp_path, [cb], max_epochs=5, enable_checkpointing=False)


def test_the_callback_aligns_the_programs_of_a_harder_family_during_training(tmp_path):
    from numsym_pl.models import GRULM as _GRU
    from numsym_pl.tasks import TwoTypeCounting

    task = TwoTypeCounting(max_count=4, ood_max=5)
    cb = DASCallback([Alignment("two_counters", "count_a", "state", Interchange(4)),
                      Alignment("total_and_first", "count_a", "state", Interchange(4))],
                     every_n_epochs=1, settings=SETTINGS)
    pl.seed_everything(0)
    lm = NextTokenLM(_GRU(task.vocab.size, hidden_size=16), lr=3e-3, warmup_steps=1)
    trainer = pl.Trainer(max_epochs=2, logger=pl.loggers.CSVLogger(tmp_path, name="run", version=0), callbacks=[cb],
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         default_root_dir=tmp_path, log_every_n_steps=1)
    trainer.fit(lm, TrialDataModule(task=task, train_size=128, val_size=32, batch_size=32))
    rows = list(csv.DictReader(open(tmp_path / "run" / "version_0" / "metrics.csv")))
    for key in ("two_counters.count_a/state", "total_and_first.count_a/state"):
        assert [e for e, _ in _col(rows, f"das/{key}/iia")] == ["0.0", "1.0"], key
