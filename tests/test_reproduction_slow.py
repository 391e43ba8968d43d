"""End-to-end reproduction (slow: minutes each). Run with ``python -m pytest -m slow``."""

import csv
import json
from pathlib import Path

import pytest

from numsym_pl.cli import main
from numsym_pl.das.command import main as das_main

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
    common = ["--ckpt_path", ckpt, "--site", "state", "--subspace", "16", "--settings.progress", "false"]
    up_down = das_main(common + ["--program", "up_down", "--variables", "count", "--out", str(tmp_path / "ud")])
    up_up = das_main(common + ["--program", "up_up", "--variables", "demo_count", "--out", str(tmp_path / "uu")])
    assert up_down["iia"] >= 0.90
    assert up_down["iia_identity"] < up_down["iia"] - 0.2 and up_down["iia_full_swap"] < up_down["iia"] - 0.2
    assert up_up["iia"] < up_down["iia"]
    assert json.loads((tmp_path / "ud" / "das_result.json").read_text())["iia"] == up_down["iia"]
