"""Every file in configs/ parses and survives a fast_dev_run; bad settings exit non-zero, named."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from numsym_pl.cli import main

ROOT = Path(__file__).resolve().parents[1]
ARCH_CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
STUDY_CONFIGS = sorted(str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs" / "studies").glob("*.yaml"))
OVERLAYS = sorted(str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").glob("*/*.yaml")
                  if p.parent.name in ("tasks", "loggers", "callbacks"))
FAST = ["--trainer.fast_dev_run", "true", "--trainer.enable_progress_bar", "false",
        "--data.val_size", "16", "--data.train_size", "32"]


def _fit(tmp_path, *configs, extra=()):
    os.chdir(tmp_path)
    args = ["fit"]
    for c in configs:
        args += ["--config", str(ROOT / "configs" / c)]
    main(args + FAST + list(extra))


def test_every_arch_config_is_covered():
    assert {"gru.yaml", "lstm.yaml", "transformer_rope.yaml", "transformer_nope.yaml"} <= set(ARCH_CONFIGS)


BASES = sorted(str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs" / "base").glob("*.yaml"))


def test_every_config_file_is_smoke_tested():
    every = {str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").rglob("*.yaml")}
    # studies: tests/test_study.py; the bases through every architecture config
    assert every == set(ARCH_CONFIGS) | set(OVERLAYS) | set(STUDY_CONFIGS) | set(BASES)


def test_architecture_configs_share_one_base_and_differ_only_in_the_net():
    texts = {c: (ROOT / "configs" / c).read_text() for c in ARCH_CONFIGS}
    for base in BASES:
        assert all(f": {base}" in t for t in texts.values()), base
    bodies = {c: [line for line in t.splitlines() if not line.startswith("#") and "init_args" not in line
                  and "class_path" not in line] for c, t in texts.items()}
    assert len({tuple(b) for b in bodies.values()}) == 1  # nothing but the net and its comment differs


def test_run_directory_is_named_after_the_config_and_das_uses_the_net_default_site(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    das = tmp_path / "das.yaml"  # the base's DAS callback (no site given), cut to one step
    das.write_text("trainer:\n  callbacks:\n    - class_path: callbacks.das.DASCallback\n      init_args:\n"
                   "        alignments: [{program: up_down, variables: [count]}]\n"
                   "        settings: {n_train: 64, n_val: 32, n_test: 32, max_steps: 1, progress: false}\n")
    main(["fit", "--config", str(ROOT / "configs" / "transformer_nope.yaml"), "--config", str(das),
          "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.enable_progress_bar", "false",
          "--data.val_size", "16", "--data.train_size", "32"])
    rows = (tmp_path / "runs" / "transformer_nope" / "version_0" / "metrics.csv").read_text()
    assert "das/up_down.count/resid.1/iia" in rows


@pytest.mark.parametrize("config", ARCH_CONFIGS)
def test_arch_config_fast_dev_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit(tmp_path, config)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_fast_dev_run(overlay, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = "transformer_rope.yaml" if "transformer" in overlay else "gru.yaml"  # e.g. DAS at a transformer site
    _fit(tmp_path, base, overlay)


def _run_cli(*args, cwd):
    env = dict(os.environ, WANDB_MODE="offline")
    return subprocess.run([sys.executable, "-m", "numsym_pl", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, needle", [
    (["--data.variantt", "multi"], "variantt"),
    (["--data.task.init_args.variantt", "multi"], "variantt"),
    (["--model.lrr", "0.1"], "lrr"),
    (["--data.task.init_args.p_void", "1.5"], "p_void"),
    (["--data.task.init_args.heldout_counts", "[25]"], "heldout_counts"),
    (["--data.task.init_args.variant", "many"], "variant"),
    (["--data.task.init_args.min_count", "9", "--data.task.init_args.max_count", "3"], "max_count"),
    (["--data.task", "numsym_pl.tasks.NoSuchTask"], "data.task"),
    (["--model.lr", "-0.001"], "model.lr"),
    (["--trained_at.patience", "0"], "trained_at.patience"),
])
def test_bad_settings_exit_nonzero_naming_the_field(args, needle, tmp_path, cli):
    res = cli("fit", "--config", ROOT / "configs" / "gru.yaml", *FAST, *args, cwd=tmp_path)
    assert res.returncode != 0
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_a_bad_setting_through_the_interpreter_exits_2_without_a_traceback(tmp_path):
    res = _run_cli("fit", "--config", str(ROOT / "configs" / "gru.yaml"), *FAST, "--model.lr", "-0.001", cwd=tmp_path)
    assert res.returncode == 2 and "model.lr" in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("content", ['[{"cell": "gru-multi-s0", "fit": {', '{"cell": 1}', ''])
def test_report_on_a_truncated_or_foreign_results_file_is_named(content, tmp_path, cli):
    (tmp_path / "results.json").write_text(content)
    res = cli("report", tmp_path, cwd=tmp_path)
    assert res.returncode == 2 and "results.json" in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_misspelled_key_in_a_config_file(tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  batch_sise: 64\n")
    res = cli("fit", "--config", ROOT / "configs" / "gru.yaml", "--config", bad, *FAST, cwd=tmp_path)
    assert res.returncode != 0 and "batch_sise" in res.stderr


def test_print_config_and_module_entry_point(tmp_path):
    res = _run_cli("fit", "--config", str(ROOT / "configs" / "lstm.yaml"), "--print_config", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "numsym_pl.models.LSTMLM" in res.stdout and "vocab_size" not in res.stdout.split("data:")[0].split("net:")[1]


def test_wandb_switch_writes_an_offline_run_with_config(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    wandb.teardown()  # a run of an earlier test leaves wandb's process-wide settings (its directory) behind
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    main(["fit", "--config", str(ROOT / "configs" / "gru.yaml"), "--config", str(ROOT / "configs" / "loggers" / "wandb.yaml"),
          "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
          "--trainer.enable_progress_bar", "false", "--data.val_size", "16", "--data.train_size", "32",
          "--trainer.callbacks=[]"])  # the logger is under test; the DAS callback's wandb rows are in test_das_callback
    wandb.finish()
    runs = list(tmp_path.glob("runs/wandb/offline-run-*"))
    assert runs, list(tmp_path.rglob("*"))[:20]
    record = next(runs[0].glob("run-*.wandb")).read_bytes()  # the offline run's log of records
    for key in (b"GRULM", b"hidden_size", b"seed_everything", b"gradient_clip_val", b"val/acc_trial"):
        assert key in record, key


def test_report_against_a_directory_without_results_is_named(tmp_path, cli):
    (tmp_path / "results.json").write_text("[]")
    res = cli("report", tmp_path, "--against", tmp_path / "nowhere", cwd=tmp_path)
    assert res.returncode == 2 and "against:" in res.stderr and "nowhere" in res.stderr, res.stderr
