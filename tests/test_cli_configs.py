"""Every file in configs/ parses and survives a fast_dev_run; bad settings exit non-zero, named."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import yaml
from lightning.pytorch.loggers.logger import DummyLogger

from callbacks.das import DASCallback
from numsym_pl.cli import main
from numsym_pl.trained_at import TrainedAt

ROOT = Path(__file__).resolve().parents[1]
ARCH_CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
STUDY_CONFIGS = sorted(str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs" / "studies").glob("*.yaml"))
OVERLAYS = sorted(str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs").glob("*/*.yaml")
                  if p.parent.name in ("tasks", "loggers", "callbacks", "positive_control"))
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
    # studies: tests/test_study.py; claims files (not fit configs): tests/test_claims.py; the bases
    # through every architecture config
    claims = {str(p.relative_to(ROOT / "configs")) for p in (ROOT / "configs" / "claims").glob("*.yaml")}
    assert every == set(ARCH_CONFIGS) | set(OVERLAYS) | set(STUDY_CONFIGS) | set(BASES) | claims


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


def spy_on_fits(monkeypatch) -> SimpleNamespace:
    """What the fast_dev_runs started next produce: ``trainers`` (each fit's Trainer) and ``logged`` ((step,
    metrics) as handed to the loggers). fast_dev_run swaps every configured logger for Lightning's DummyLogger (no
    metrics.csv; LightningCLI writes no config.yaml either), so the rows are caught on their way into it."""
    run = SimpleNamespace(trainers=[], logged=[])
    fit = pl.Trainer.fit

    def spied_fit(trainer, *args, **kwargs):
        run.trainers.append(trainer)
        return fit(trainer, *args, **kwargs)
    monkeypatch.setattr(pl.Trainer, "fit", spied_fit)
    monkeypatch.setattr(DummyLogger, "log_metrics", lambda self, metrics, step=None: run.logged.append((step, metrics)))
    return run


VAL_KEYS = {"val/loss", "val/acc_token", "val/acc_trial", "val/acc_trial_heldout", "val/acc_trial_ood"}


def _config(name: str) -> dict:
    return yaml.safe_load((ROOT / "configs" / name).read_text())


def listed_das(callbacks: list[dict]) -> list[dict]:
    """The DAS callbacks of a ``trainer.callbacks`` list, as configured."""
    return [c for c in callbacks if c["class_path"] == "callbacks.das.DASCallback"]


def check_fast_dev_run(run, configured: list[dict]):
    """One training step and one validation ran and reached the loggers; the run's DAS callbacks are
    ``configured`` (their alignments, sites filled in from the net), each fitted every alignment at fast_dev_run's
    size (2 steps), logged its ``das/<key>/...`` row at the row's step and drew its figure; without one, none of it."""
    (trainer,) = run.trainers
    assert trainer.state.finished and trainer.global_step == 1
    at = {(step, k): v for step, metrics in run.logged for k, v in metrics.items()}
    values = {k: v for (_, k), v in at.items()}
    assert {"train/loss_step", "train/loss_epoch", *VAL_KEYS} <= set(values), sorted(values)
    assert all(0 < values[k] < float("inf") for k in ("train/loss_step", "train/loss_epoch", "val/loss"))
    assert all(0 <= values[k] <= 1 for k in VAL_KEYS if "/acc_" in k)
    das, net = [cb for cb in trainer.callbacks if isinstance(cb, DASCallback)], trainer.lightning_module.net
    assert len(das) == len(configured)
    for cb, listed in zip(das, configured):
        args = listed["init_args"]
        assert [(a.program, list(a.variables), a.site) for a in cb.alignments] == \
            [(a["program"], a["variables"], a.get("site") or net.default_site) for a in args["alignments"]]
        epochs = (-1, 0) if args.get("at_fit_start") else (0,)  # -1: the net as initialised, at step 0
        assert sorted((r["epoch"], r["key"]) for r in cb.history) == \
            sorted((e, a.key) for e in epochs for a in cb.alignments)
        for r in cb.history:
            assert 0 <= r["iia"] <= 1 and 1 <= r["steps"] <= 2, r  # fast_dev_run's DAS: 64 pairs, 2 steps
            assert r["step"] == (0 if r["epoch"] == -1 else 1)
            for name in ("iia", "iia_none", "iia_full_swap", "steps"):
                assert at[(r["step"], f"das/{r['key']}/{name}")] == pytest.approx(r[name]), name
    assert any(k.startswith("das/") for k in values) == bool(das)
    figure = Path(trainer.default_root_dir) / "figures" / "learning_dynamics.png"
    assert figure.is_file() == bool(das) and (not das or figure.read_bytes()[:4] == b"\x89PNG")


@pytest.mark.parametrize("config", ARCH_CONFIGS)
def test_arch_config_fast_dev_run(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast_run = spy_on_fits(monkeypatch)
    _fit(tmp_path, config)
    net = _config(config)["model"]["net"]["class_path"]
    assert type(fast_run.trainers[0].lightning_module.net).__name__ == net.rsplit(".", 1)[1]
    check_fast_dev_run(fast_run, listed_das(_config("base/trainer.yaml")["callbacks"]))  # at the net's default site


def check_overlay_reached_the_run(trainer, overlay: dict):
    """The run has the overlay's settings: its task (class and arguments), its ``data``, ``trainer``, ``checkpoint``
    and ``trained_at`` values (its DAS callbacks: ``check_fast_dev_run``; not its logger, which fast_dev_run
    replaces)."""
    data = dict(overlay.get("data", {}))
    task = data.pop("task", {})
    if "class_path" in task:
        assert type(trainer.datamodule.task).__name__ == task["class_path"].rsplit(".", 1)[1]
    for k, v in (task.get("init_args") or {}).items():
        assert getattr(trainer.datamodule.task, k) == v, k
    for k, v in data.items():
        assert trainer.datamodule.hparams[k] == v, k
    for k, v in overlay.get("trainer", {}).items():
        if k not in ("callbacks", "logger"):
            assert getattr(trainer, k) == v, k
    trained_at = next(cb for cb in trainer.callbacks if isinstance(cb, TrainedAt))
    for group, cb in (("checkpoint", trainer.checkpoint_callback), ("trained_at", trained_at)):
        for k, v in overlay.get(group, {}).items():
            assert getattr(cb, k) == v, f"{group}.{k}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_fast_dev_run(overlay, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast_run = spy_on_fits(monkeypatch)
    # e.g. DAS at a transformer site
    base = "transformer_rope.yaml" if "transformer" in overlay or "rope" in overlay else "gru.yaml"
    _fit(tmp_path, base, overlay)
    settings = _config(overlay)
    check_overlay_reached_the_run(fast_run.trainers[0], settings)
    callbacks = settings.get("trainer", {}).get("callbacks")  # a list replaces the base's
    if callbacks is None:
        callbacks = _config("base/trainer.yaml")["callbacks"]
    check_fast_dev_run(fast_run, listed_das(callbacks))


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
    main(["fit", "--config", str(ROOT / "configs" / "gru.yaml"),
          "--config", str(ROOT / "configs" / "loggers" / "wandb.yaml"),
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
