"""End-to-end reproduction (slow: minutes each). Run with ``python -m pytest -m slow``."""

import csv
import json
from pathlib import Path

import pytest

from numsym_pl.cli import main
from numsym_pl.commands.das import main as das_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gru", "lstm"])
def test_recurrent_net_trains_and_aligns_with_up_down(arch, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(ROOT / "configs" / f"{arch}.yaml"), "--trainer.enable_progress_bar", "false"])
    run = next(tmp_path.glob(f"runs/{arch}/*"))
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("val/acc_trial")]
    assert float(rows[-1]["val/acc_trial"]) >= 0.999
    ckpt = str(run / "checkpoints" / "last.ckpt")
    common = ["--ckpt_path", ckpt, "--site", "state", "--intervention.subspace", "16", "--settings.progress", "false"]
    up_down = das_main(common + ["--program", "up_down", "--variables", "count", "--out", str(tmp_path / "ud")])
    up_up = das_main(common + ["--program", "up_up", "--variables", "demo_count", "--out", str(tmp_path / "uu")])
    assert up_down["iia"] >= 0.90
    assert up_down["iia_identity"] < up_down["iia"] - 0.2 and up_down["iia_full_swap"] < up_down["iia"] - 0.2
    assert up_up["iia"] < up_down["iia"]
    assert json.loads((tmp_path / "ud" / "das_result.json").read_text())["iia"] == up_down["iia"]


@pytest.mark.slow
def test_ddp_two_processes_train_the_gru_config_like_one(tmp_path, monkeypatch):
    """2 CPU processes (gloo) with half the batch each vs one process: same global batch, same
    epochs; both must train (>= 0.99) and end within 0.01 of each other."""
    import os
    import subprocess
    import sys

    results = {}
    for name, extra in (("single", []), ("ddp", ["--trainer.strategy", "ddp_spawn", "--trainer.devices", "2",
                                                 "--data.batch_size", "64"])):
        d = tmp_path / name
        d.mkdir()
        res = subprocess.run([sys.executable, "-m", "numsym_pl", "fit", "--config", str(ROOT / "configs" / "gru.yaml"),
                              "--trainer.max_epochs", "100", "--trainer.enable_progress_bar", "false",
                              "--trainer.accelerator", "cpu", "--trainer.callbacks", "null", *extra],
                             cwd=d, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                             timeout=1800)
        assert res.returncode == 0, res.stderr[-2000:]
        rows = [r for r in csv.DictReader(open(next(d.glob("runs/gru/*/metrics.csv")))) if r.get("val/acc_trial")]
        results[name] = float(rows[-1]["val/acc_trial"])
    assert min(results.values()) >= 0.99 and abs(results["single"] - results["ddp"]) <= 0.01, results
