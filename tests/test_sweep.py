"""The sweep: sites x sizes x featurizers in one call, each cell what it would be fitted alone, its
files (json, csv, heatmap), its wandb run, its controls and its named errors."""

import csv
import json

import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.sweep import check_sweep, run_sweep, sizes_at
from numsym_pl.errors import ConfigError
from numsym_pl.tasks import VOCAB, NumericEquivalence
from tests.conftest import SMALL_NETS
from tests.test_planted import TASK, PlantedCounter

SETTINGS = SearchSettings(n_train=1000, n_val=200, n_test=300, max_steps=40, batch_size=64, eval_every=20, lr=0.01,
                          patience=2, progress=False, random_seeds=2)
TINY = SearchSettings(n_train=128, n_val=64, n_test=64, max_steps=4, batch_size=32, eval_every=2, progress=False,
                      random_seeds=2)


def test_each_cell_of_a_batched_sweep_is_what_it_is_fitted_alone():
    net = PlantedCounter(VOCAB.size, hidden_size=8)
    records = run_sweep(net, TASK, "up_down", "count", ["state"], [1, 4], ["rotation", "low_rank"], SETTINGS)
    assert [(r["featurizer"], r["subspace"]) for r in records] == [(f, k) for f in ("rotation", "low_rank")
                                                                   for k in (1, 4)]
    for r in records:
        alone, _ = run_alignment(net, TASK, Alignment("up_down", "count", "state",
                                                      Interchange(r["subspace"], featurizer=r["featurizer"])),
                                 SETTINGS)
        assert abs(r["iia"] - alone.iia) <= 0.02, (r["featurizer"], r["subspace"], r["iia"], alone.iia)
        assert (r["iia_none"] == alone.iia_none
                and r["iia_identity"] == alone.iia_identity)  # the same pairs and baselines
        assert abs(r["steps"] - alone.steps) <= SETTINGS.eval_every
    assert {r["net"] for r in records} == {"trained"}


def test_sizes_are_capped_at_each_sites_width_and_bad_sweeps_are_named():
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]()  # d = 16, mlp 64
    cells = check_sweep(net, "up_down", "count", ["resid.1", "mlp.1"], [8, 32, 64], ["rotation"])
    assert [(c.site, c.intervention.subspace) for c in cells] == [("resid.1", 8), ("mlp.1", 8), ("mlp.1", 32),
                                                                  ("mlp.1", 64)]
    assert sizes_at(16, [1, 8, 16], n_blocks=2) == [1, 8]
    with pytest.raises(ConfigError, match="site"):
        check_sweep(net, "up_down", "count", ["state"], [1], ["rotation"])
    with pytest.raises(ConfigError, match="sizes"):
        check_sweep(net, "up_down", "count", ["resid.1"], [32], ["rotation"])
    with pytest.raises(ConfigError, match="featurizer"):
        check_sweep(net, "up_down", "count", ["resid.1"], [1], ["no_such"])
    with pytest.raises(ConfigError, match="one variable at a time"):
        check_sweep(net, "up_down", "count+phase", ["resid.1"], [1], ["boundless"])


def test_a_transformer_sweep_covers_resid_attn_and_mlp_sites_and_brings_the_control_of_revnet():
    torch.manual_seed(0)
    net = SMALL_NETS["rope"]()
    records = run_sweep(net, NumericEquivalence("multi"), "up_down", "count", ["resid.1", "attn.1", "mlp.1"], [1, 4],
                        ["rotation", "revnet"], TINY)
    trained = [r for r in records if r["net"] == "trained"]
    assert {(r["site"], r["featurizer"], r["subspace"]) for r in trained} == {
        (s, f, k) for s in ("resid.1", "attn.1", "mlp.1") for f in ("rotation", "revnet") for k in (1, 4)}
    untrained = [r for r in records if r["net"] == "untrained"]
    assert untrained and {r["featurizer"] for r in untrained} == {"revnet"}  # the control featurizer, on a fresh net
    for r in records:
        assert 0 <= r["iia"] <= 1 and r["steps"] == 4 and r["seconds_site"] >= r["seconds"] > 0


def test_the_sweep_command_writes_json_csv_heatmap_and_a_wandb_run(tiny_ckpt, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from numsym_pl.cli import main

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "sweep"
    main(["sweep", "--ckpt_path", str(tiny_ckpt), "--sites", "state", "--sizes", "1,2,4,64",
          "--featurizers", "rotation,low_rank",
          "--settings.n_train", "128", "--settings.n_val", "64", "--settings.n_test", "64", "--settings.max_steps", "3",
          "--settings.eval_every", "3", "--settings.progress", "false", "--settings.random_seeds", "2",
          "--out", str(out), "--wandb_project", "numsym_pl-test"])
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["sizes"] == [1, 2, 4, 64] and len(saved["records"]) == 6  # 64 is wider than the 16-wide state
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 6 and {r["subspace"] for r in rows} == {"1", "2", "4"} and all(r["iia_lo"] for r in rows)
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    run = next(out.glob("wandb/offline-run-*"))
    record = next(run.glob("run-*.wandb")).read_bytes()
    for key in (b"sweep/table", b"sweep/heatmap", b"sweep/best_iia"):
        assert key in record, key
    assert list(run.rglob("*.png")), "the heatmap was not logged"


def test_the_sweep_command_names_bad_input(tiny_ckpt, tmp_path, capsys):
    from numsym_pl.cli import main

    with pytest.raises(SystemExit):
        main(["sweep", "--ckpt_path", str(tiny_ckpt), "--sizes", "1,two", "--out", str(tmp_path)])
    assert "sweep.sizes" in capsys.readouterr().err
