"""Crash and resume, determinism, failures that must be loud and lose nothing."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import numsym_pl_side_by_side

ROOT = Path(__file__).resolve().parents[1]
BASE = ("""
seed_everything: {seed}
trainer:
  max_epochs: {epochs}
  accelerator: cpu
  deterministic: true
  enable_progress_bar: false
  log_every_n_steps: 1
  logger: {{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: {save_dir}, """
        """name: run, version: 0}}}}
  callbacks:
    - class_path: callbacks.das.DASCallback
      init_args:
        every_n_epochs: 1
        warm_start: true
        alignments: [{{program: up_down, variables: [count], site: state, intervention: {{class_path: Interchange, """
        """init_args: {{subspace: 4}}}}}}]
        settings: {{n_train: 128, n_val: 64, n_test: 64, max_steps: 4, batch_size: 32, eval_every: 2, progress: false}}
{extra_callbacks}
checkpoint: {{every_n_epochs: 1, save_top_k: -1, save_last: true}}
model:
  lr: 0.003
  warmup_steps: 1
  net: {{class_path: numsym_pl.models.GRULM, init_args: {{hidden_size: 16}}}}
data: {{task: {{class_path: numsym_pl.tasks.NumericEquivalence, init_args: {{variant: single, max_count: 8, """
        """heldout_counts: [3], ood_counts: [9]}}}}, train_size: 256, val_size: 32, batch_size: 32, seed: {seed}}}
""")


def _config(tmp_path, name="cfg.yaml", seed=0, epochs=4, save_dir="runs", extra=()):
    extra_cb = "".join(f"    - {c}\n" for c in extra)
    path = tmp_path / name
    path.write_text(BASE.format(seed=seed, epochs=epochs, save_dir=save_dir, extra_callbacks=extra_cb.rstrip("\n")))
    return path


def _fit(tmp_path, *args, timeout=300):
    (res,) = _fits((tmp_path, *args), timeout=timeout)
    return res


def _fits(*runs, timeout=300) -> list[subprocess.CompletedProcess]:
    """``numsym_pl fit`` for each (directory, *args), one thread each, side by side (the machine's
    cores each take one), in the order given."""
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="offline", PYTHONPATH=str(ROOT))
    return numsym_pl_side_by_side(*((d, ["fit", *args], env) for d, *args in runs), timeout=timeout)


def _metrics(run_dir: Path) -> list[dict]:
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


def _final(rows, keys=("val/acc_trial", "val/loss", "val/acc_token", "das/up_down.count/state/iia")):
    last = {}
    for r in rows:
        for k in keys:
            if r.get(k):
                last[k] = (r["epoch"], r[k])
    return last


def _das_epochs(rows):
    return [int(float(r["epoch"])) for r in rows if r.get("das/up_down.count/state/iia")]


@pytest.mark.slow  # the default suite's time; run with -m slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full, crashed = _fits((tmp_path / "a", "--config", str(_config(tmp_path / "a"))),
                          (tmp_path / "b", "--config", str(_config(tmp_path / "b", extra=[
                              "{class_path: tests.faults.KillAt, init_args: {epoch: 2, batch: 3}}"]))))
    assert full.returncode == 0, full.stderr[-2000:]
    assert crashed.returncode == -9  # SIGKILL
    resumed = _fit(tmp_path / "b", "--config", str(_config(tmp_path / "b", name="resume.yaml")), "--ckpt_path", "last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (_metrics(tmp_path / "a" / "runs" / "run" / "version_0"),
            _metrics(tmp_path / "b" / "runs" / "run" / "version_0"))
    assert _final(b) == _final(a) and len(_final(a)) == 4
    # DAS history: every epoch once, none lost or repeated, in the resumed checkpoint too
    state = torch.load(tmp_path / "b" / "runs" / "run" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    history = next(v for k, v in state["callbacks"].items() if "DASCallback" in k)["history"]
    assert [r["epoch"] for r in history] == [0, 1, 2, 3]
    assert sorted(set(_das_epochs(b))) == [0, 1, 2, 3]


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    seeds = {"s0": 0, "s0_again": 0, "s1": 1}
    for name in seeds:
        (tmp_path / name).mkdir()
    results = _fits(*((tmp_path / n, "--config", str(_config(tmp_path / n, seed=s, epochs=2)))
                      for n, s in seeds.items()))
    runs = {}
    for name, res in zip(seeds, results):
        assert res.returncode == 0, res.stderr[-2000:]
        runs[name] = _final(_metrics(tmp_path / name / "runs" / "run" / "version_0"))
    assert runs["s0"] == runs["s0_again"]
    assert runs["s0"] != runs["s1"]


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    res = _fit(tmp_path, "--config", str(_config(tmp_path, epochs=4,
                                                 extra=["{class_path: tests.faults.NaNAt, init_args: {epoch: 2}}"])))
    assert res.returncode != 0
    assert "epoch 2" in res.stderr and "step 16" in res.stderr and "Traceback" not in res.stderr
    ckpts = tmp_path / "runs" / "run" / "version_0" / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["state_dict"].values())


@pytest.mark.parametrize("needle", ["trunc.ckpt", "missing.ckpt"])
def test_resume_from_a_bad_checkpoint_is_named(tiny_ckpt, tmp_path, needle, cli):
    bad = tmp_path / needle
    if needle == "trunc.ckpt":
        bad.write_bytes(tiny_ckpt.read_bytes()[:2000])
    res = cli("fit", "--config", _config(tmp_path), "--ckpt_path", bad, cwd=tmp_path)
    assert res.returncode != 0 and needle in res.stderr and "Traceback" not in res.stderr


def test_resume_from_another_architecture_is_named(tiny_ckpt, tmp_path, cli):
    res = cli("fit", "--config", _config(tmp_path), "--model.net", "numsym_pl.models.LSTMLM", "--ckpt_path", tiny_ckpt,
              cwd=tmp_path)
    assert res.returncode != 0 and "ckpt_path:" in res.stderr and "GRULM" in res.stderr and "LSTMLM" in res.stderr
    assert "Traceback" not in res.stderr


def test_unwritable_output_directory_is_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root): permissions cannot be tested")
        res = _fit(tmp_path, "--config", str(_config(tmp_path, save_dir=str(ro / "runs"))))
        assert res.returncode != 0 and "save_dir" in res.stderr and str(ro) in res.stderr
    finally:
        ro.chmod(0o700)


def test_output_path_blocked_by_a_file_is_named(tmp_path, cli):
    (tmp_path / "blocker").write_text("a file where a directory should go")
    res = cli("fit", "--config", _config(tmp_path, save_dir=str(tmp_path / "blocker" / "runs")), cwd=tmp_path)
    assert (res.returncode != 0 and "save_dir" in res.stderr and "blocker" in res.stderr
            and "Traceback" not in res.stderr)


def test_misconfigured_wandb_falls_back_to_csv(tmp_path):
    pytest.importorskip("wandb")
    cfg = _config(tmp_path, epochs=1)
    wb = tmp_path / "wandb.yaml"
    wb.write_text("trainer:\n  logger:\n    class_path: lightning.pytorch.loggers.WandbLogger\n"
                  "    init_args: {project: t, save_dir: runs}\n")
    env_mode = os.environ.get("WANDB_MODE")
    os.environ["WANDB_MODE"] = "bogus-mode"  # wandb refuses to start with this
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        res = subprocess.run([sys.executable, "-m", "numsym_pl", "fit", "--config", str(cfg), "--config", str(wb)],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        os.environ["WANDB_MODE"] = env_mode or "offline"
    assert res.returncode == 0, res.stderr[-2000:]
    assert "wandb could not start" in res.stderr
    rows = _metrics(next((tmp_path / "runs" / "wandb_fallback").glob("version_*")))
    assert any(r.get("val/acc_trial") for r in rows)


@pytest.mark.slow  # the default suite's time; run with -m slow
def test_ddp_fails_fast_when_one_rank_raises(tmp_path):
    cfg = _config(tmp_path, epochs=2, extra=["{class_path: tests.faults.RaiseOnRank, init_args: {rank: 1}}"])
    res = _fit(tmp_path, "--config", str(cfg), "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2", timeout=240)
    assert res.returncode != 0 and "injected failure on rank 1" in res.stderr
