"""Studies: grid expansion, the shipped study configs, a tiny study end to end (resume, failures,
the submitit executor) and its report."""

import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from numsym_pl.analysis.report import write_report
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das.controls import untrained_control
from numsym_pl.cli import main
from numsym_pl.errors import ConfigError, NumSymError
from numsym_pl.study.loading import deep_merge, load_study
from numsym_pl.commands.study import main as study_main
from tests.test_cli_configs import check_fast_dev_run, check_overlay_reached_the_run, listed_das, spy_on_fits

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted(p.name for p in (ROOT / "configs" / "studies").glob("*.yaml"))
FAST = ["--trainer.fast_dev_run", "true", "--trainer.enable_progress_bar", "false",
        "--data.val_size", "16", "--data.train_size", "32"]


def test_deep_merge_merges_dicts_replaces_the_rest_and_drops_nulls():
    base = {"a": {"x": 1, "y": 2}, "b": [1, 2], "c": 3}
    assert deep_merge(base, {"a": {"y": 5, "x": None}, "b": [9], "c": None}) == {"a": {"y": 5}, "b": [9]}


def _check_the_grid_is_the_declared_one(study, spec: dict):
    """``study`` (as loaded) is the grid ``spec`` (its YAML, quick block merged or not) declares: one cell per
    architecture x task x seed x size, each fitting the architecture's config, then the task's overlays, the study's
    and the architecture's fit arguments and its seed (and its size, scaled by the architecture's ``size_args``),
    aligning the architecture's and the task's alignments, with the study's DAS settings and analyses."""
    tasks, sizes = spec.get("tasks") or {"multi": []}, spec.get("sizes") or [None]
    cells = study.cells()
    assert sorted(((c.arch, c.task, c.seed, c.size) for c in cells), key=str) == \
        sorted(itertools.product(spec["architectures"], tasks, spec["seeds"], sizes), key=str)
    for c in cells:
        arch = spec["architectures"][c.arch]
        head = ["--config", arch["config"], *(a for o in tasks[c.task] for a in ("--config", o)),
                *spec.get("fit_args", []), *arch.get("fit_args", []), "--seed_everything", str(c.seed)]
        assert c.fit_args[:len(head)] == head, c.id
        for key, mult in (arch.get("size_args") or {}).items() if c.size is not None else ():
            assert c.fit_args[c.fit_args.index(f"--{key}") + 1] == str(round(c.size * mult)), c.id
        declared = [*arch.get("alignments", []), *(spec.get("task_alignments") or {}).get(c.task, [])]
        assert len(c.alignments) == len(declared), c.id
        for a, d in zip(c.alignments, declared):
            got = {"program": a.program, "variables": list(a.variables), "site": a.site}
            assert {k: got[k] for k in got if k in d} == {k: d[k] for k in got if k in d}, c.id
        assert all(getattr(c.das, k) == v for k, v in spec.get("das", {}).items()), c.id
        assert c.analyses == spec.get("analyses", []), c.id


def test_each_shipped_study_expands_into_the_grid_it_declares(monkeypatch):
    """The four paper studies ship, and every shipped study, full and --quick, loads into the grid it declares."""
    assert {"paper_main.yaml", "model_size.yaml", "learning_dynamics.yaml", "gradience.yaml"} <= set(STUDIES)
    monkeypatch.chdir(ROOT)
    for name in STUDIES:
        spec = yaml.safe_load((ROOT / "configs" / "studies" / name).read_text())
        quick = spec.pop("quick", {})
        for argv, declared in (([], spec), (["--quick"], deep_merge(spec, quick))):
            study, *_ = load_study(["--config", f"configs/studies/{name}", *argv])
            _check_the_grid_is_the_declared_one(study, declared)


def _configs_of(cell):
    return tuple(a for i, a in enumerate(cell.fit_args) if i > 0 and cell.fit_args[i - 1] == "--config")


@pytest.mark.parametrize("name", STUDIES)
def test_study_config_expands_full_and_quick(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    full, *_ = load_study(["--config", f"configs/studies/{name}"])
    quick, *_ = load_study(["--config", f"configs/studies/{name}", "--quick"])
    assert len(quick.cells()) < len(full.cells())
    assert quick.out_dir != full.out_dir  # a quick result never stands in for a full one
    assert len({c.id for c in full.cells()}) == len(full.cells())


def test_arguments_after_a_double_dash_go_last_on_every_cell_and_into_study_json(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    study, *_ = load_study(["--config", "configs/studies/learning_dynamics.yaml", "--quick", "--out_dir", str(tmp_path),
                           "--", "--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed"])
    (cell,) = study.cells()
    # after the architecture's own arguments (its --config would otherwise override them)
    assert cell.fit_args[-4:] == ["--trainer.accelerator", "gpu", "--trainer.precision", "bf16-mixed"]
    assert cell.fit_args.index("configs/callbacks/dynamics.yaml") < cell.fit_args.index("--trainer.accelerator")
    # the quick study's own last arguments (validation every 5 epochs) come before them
    assert study.settings["last_fit_args"] == ["--trainer.check_val_every_n_epoch", "5", "--trainer.accelerator", "gpu",
                                               "--trainer.precision", "bf16-mixed"]
    assert study.out_dir == tmp_path
    plain, *_ = load_study(["--config", "configs/studies/learning_dynamics.yaml", "--quick"])
    assert "--trainer.accelerator" not in plain.cells()[0].fit_args


def test_every_distinct_cell_config_of_the_studies_survives_a_fast_dev_run(tmp_path, monkeypatch):
    """Each distinct list of config files a quick study's cell fits with trains a step, validates, logs, has the
    overlays' settings (merged in order) and runs the DAS callback the last list of callbacks names (or none)."""
    combos = {}
    for name in STUDIES:
        monkeypatch.chdir(ROOT)
        study, *_ = load_study(["--config", f"configs/studies/{name}", "--quick"])
        for cell in study.cells():
            combos.setdefault(_configs_of(cell), cell)
    assert len(combos) >= len(STUDIES)
    fast_run = spy_on_fits(monkeypatch)
    for i, (configs, cell) in enumerate(combos.items()):
        (tmp_path / str(i)).mkdir()
        monkeypatch.chdir(tmp_path / str(i))  # each run's files (the DAS figure) in a directory of its own
        fast_run.trainers.clear()
        fast_run.logged.clear()
        args = [a if not a.startswith("configs/") else str(ROOT / a) for a in cell.fit_args]
        main(["fit", *args, *FAST])
        arch, *overlays = (yaml.safe_load((ROOT / c).read_text()) for c in configs)
        trainer = fast_run.trainers[0]
        assert type(trainer.lightning_module.net).__name__ == arch["model"]["net"]["class_path"].rsplit(".", 1)[1]
        merged = {}
        for overlay in overlays:  # a later file's list replaces an earlier one's (the callbacks)
            merged = deep_merge(merged, overlay)
        check_overlay_reached_the_run(trainer, merged)
        callbacks = merged.get("trainer", {}).get("callbacks")
        if callbacks is None:
            callbacks = yaml.safe_load((ROOT / "configs" / "base" / "trainer.yaml").read_text())["callbacks"]
        check_fast_dev_run(fast_run, listed_das(callbacks))


def test_grid_sizes_seeds_and_scaled_subspace(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    study, *_ = load_study(["--config", "configs/studies/model_size.yaml", "--out_dir", str(tmp_path)])
    cells = {c.id: c for c in study.cells()}
    assert len(cells) == 50 and {c.size for c in cells.values()} == {64, 96, 128, 192, 256}
    lstm = cells["lstm-multi-d96-s1"]
    assert lstm.fit_args[lstm.fit_args.index("--model.net.init_args.hidden_size") + 1] == "48"  # [h; c] = 96
    assert (lstm.alignments[0].intervention.subspace == 12
            and cells["gru-multi-d256-s0"].alignments[0].intervention.subspace == 16)
    assert lstm.dir == tmp_path / "cells" / "lstm-multi-d96-s1"


def test_bad_study_settings_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narchitectures: {gru: {config: configs/nope.yaml}}\n")
    with pytest.raises(ConfigError, match="architectures.gru.config"):
        load_study(["--config", str(bad)])
    bad.write_text("name: x\narchitectures: {gru: {config: configs/gru.yaml}}\nanalyses: [tea_leaves]\n")
    with pytest.raises(ConfigError, match="analyses"):
        load_study(["--config", str(bad)])
    bad.write_text("name: x\narchitectures: {gru: {config: configs/gru.yaml}}\ndevice: gpu\n")
    with pytest.raises(ConfigError, match="device: 'gpu' is not a device"):
        load_study(["--config", str(bad)])
    bad.write_text("name: x\narchitectures: {gru: {confg: configs/gru.yaml}}\n")
    with pytest.raises(SystemExit):
        load_study(["--config", str(bad)])


def _tiny_study(tmp_path, **over):
    study = {
        "name": "tiny", "out_dir": str(tmp_path / "study"),
        "architectures": {"gru": {"config": str(ROOT / "configs/gru.yaml"), "alignments": [
            {"program": "up_down", "variables": ["count", "phase"], "site": "state",
             "intervention": {"class_path": "Interchange", "init_args": {"subspace": 2}}},
            {"program": "up_up", "variables": ["demo_count"], "site": "state",
             "intervention": {"class_path": "Interchange", "init_args": {"subspace": 2}}}]}},
        "seeds": [0, 1],
        "fit_args": ["--config", str(ROOT / "configs/callbacks/checkpoint_only.yaml"), "--trainer.max_epochs", "1",
                     "--data.train_size", "64", "--data.val_size", "32", "--model.net.init_args.hidden_size", "16",
                     "--trainer.check_val_every_n_epoch", "1"],
        "das": {"n_train": 128, "n_val": 32, "n_test": 48, "max_steps": 4, "eval_every": 2, "progress": False,
                "null": False},
        "analyses": ["gradience", "ood_interventions", "phase_flips"], "max_parallel": 2}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(deep_merge(study, over)))
    return path


def test_tiny_study_runs_resumes_and_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = lambda **over: str(_tiny_study(tmp_path, das={"controls": True}, **over))
    results = study_main(["--config", tiny()])
    out = tmp_path / "study"
    assert [r["cell"] for r in results] == ["gru-multi-s0", "gru-multi-s1"]
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 and "up_down.count+phase/state" in rows[1]
    r0 = json.loads((out / "cells/gru-multi-s0/result.json").read_text())
    assert (0 <= r0["fit"]["val/acc_trial"] <= 1
            and set(r0["analyses"]) == {"gradience", "ood_interventions", "phase_flips"})
    assert "up_down.count+phase/state" in r0["analyses"]["phase_flips"]
    assert {a["device"] for a in r0["alignments"]} == {"cpu"}  # the study's default device

    # the untrained-net controls: computed once for the row's two seeds (run side by side), each the
    # number the cell would have computed alone
    assert len(list((out / "controls/gru-multi").glob("*.json"))) == 2  # one per alignment
    r1 = json.loads((out / "cells/gru-multi-s1/result.json").read_text())
    study, *_ = load_study(["--config", tiny()])
    lm, task = load_checkpoint(out / "cells/gru-multi-s0/fit/checkpoints/last.ckpt", "cpu")
    for a0, a1, alignment in zip(r0["alignments"], r1["alignments"], study.cells()[0].alignments):
        shared = a0["controls"]["untrained"]
        assert a1["controls"]["untrained"] == shared and shared["computed_in"] in ("gru-multi-s0", "gru-multi-s1")
        alone = untrained_control(lm.net, task, alignment.for_net(lm.net), replace(study.das, progress=False))
        assert {k: v for k, v in alone.items() if k != "seconds"} == {k: shared[k] for k in alone if k != "seconds"}

    # a killed study: one cell's result and one DAS result gone; the fit is not repeated
    log = out / "cells/gru-multi-s1/fit.log"
    fit_runs = log.read_text().count("numsym_pl fit")
    (out / "cells/gru-multi-s1/result.json").unlink()
    das_json = next((out / "cells/gru-multi-s1/das").glob("up_up*/das_result.json"))
    das_json.unlink()
    again = study_main(["--config", tiny()])
    assert log.read_text().count("numsym_pl fit") == fit_runs and das_json.is_file()
    assert again[0] == json.loads((out / "cells/gru-multi-s0/result.json").read_text())

    # on another machine, from committed results (no checkpoints) that hold one of the two cells
    committed = tmp_path / "committed"
    committed.mkdir()
    shutil.copy(out / "study.json", committed)
    (committed / "results.json").write_text(json.dumps(again[:1]))
    moved = tmp_path / "moved"
    resumed = study_main(["--config", tiny(out_dir=str(moved)), "--resume_from", str(committed)])
    assert resumed[0] == again[0] and not (moved / "cells/gru-multi-s0/fit.log").exists()  # taken, not rerun
    assert (moved / "cells/gru-multi-s1/fit.log").is_file() and resumed[1]["cell"] == "gru-multi-s1"
    # its controls come from the taken cell's result: none computed here
    assert ([a["controls"]["untrained"] for a in resumed[1]["alignments"]]
            == [a["controls"]["untrained"] for a in again[1]["alignments"]])
    assert not (moved / "controls").exists()
    with pytest.raises(ConfigError, match=r"differs from this study in \['seeds'\]"):
        study_main(["--config", tiny(out_dir=str(tmp_path / "other"), seeds=[0]),
                    "--resume_from", str(committed)])

    main(["report", str(out)])
    report = (out / "report.md").read_text()
    for heading in ("## Main table", "### The grid at a glance", "### Every alignment", "## Claims", "## Gradience",
                    "### 1. Interventions with counts outside", "### 2. Two variables intervened together",
                    "### 3. Repeated phase flips", "### 4. Does IIA predict"):
        assert heading in report, heading
    assert "| gru | multi | 2 |" in report
    for png in ("main_iia", "gradience", "ood_interventions", "count_and_phase", "phase_flips"):
        assert (out / "figures" / f"{png}.png").stat().st_size > 5_000


def test_a_failing_cell_is_reported_and_the_others_finish(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _tiny_study(tmp_path, seeds=[0], analyses=[], max_parallel=1,
                       tasks={"multi": [], "broken": [str(tmp_path / "missing.yaml")]})
    with pytest.raises(NumSymError, match="1 of 2 cells failed"):
        study_main(["--config", str(path)])
    rows = (tmp_path / "study/results.csv").read_text()
    assert "gru-broken-s0" in rows and "CellFailed" in rows and "gru-multi-s0,gru,multi" in rows


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where torch sees no CUDA device")
def test_a_local_study_on_cuda_without_a_gpu_stops_before_any_cell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        study_main(["--config", str(_tiny_study(tmp_path, device="cuda"))])
    assert not (tmp_path / "study").exists()


def test_report_needs_results(tmp_path):
    with pytest.raises(ConfigError, match="results.json"):
        write_report(tmp_path)


@pytest.mark.slow  # 26 s: one cell through submitit's local executor (an optional extra)
def test_submitit_local_executor_runs_a_cell(tmp_path):
    pytest.importorskip("submitit")
    path = _tiny_study(tmp_path, seeds=[0], analyses=[], executor="submitit",
                       executor_args={"cluster": "local", "timeout_min": 10})
    env = dict(os.environ, WANDB_MODE="offline")
    res = subprocess.run([sys.executable, "-m", "numsym_pl", "study", "--config", str(path)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    result = json.loads((tmp_path / "study/cells/gru-multi-s0/result.json").read_text())
    assert result["alignments"][0]["key"] == "up_down.count+phase/state"
    assert list((tmp_path / "study/submitit").glob("*_log.out"))  # ran as a submitit job


def test_a_study_with_wandb_logs_each_cell_as_a_named_grouped_tagged_run(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    path = _tiny_study(tmp_path, analyses=[], wandb={"project": "numsym_pl-test", "tags": ["tiny"]})
    study_main(["--config", str(path)])
    for cell in ("gru-multi-s0", "gru-multi-s1"):
        marker = json.loads((tmp_path / f"study/cells/{cell}/wandb.json").read_text())
        record = next(Path(marker["dir"]).glob("run-*.wandb")).read_bytes()
        for key in (cell.encode(), b"tiny", b"arch:gru", b"task:multi", b"seed:", b"trainer/step", b"val/acc_trial",
                    b"post/up_down.count+phase/state/iia_effective", b"iia_lo", b"iia_untrained"):
            assert key in record, (cell, key)
    # a resumed study does not log a cell twice
    before = sorted(p.name for p in (tmp_path / "study/cells/gru-multi-s0").rglob("run-*.wandb"))
    study_main(["--config", str(path)])
    assert sorted(p.name for p in (tmp_path / "study/cells/gru-multi-s0").rglob("run-*.wandb")) == before
    with pytest.raises(ConfigError, match="wandb"):
        load_study(["--config", str(_tiny_study(tmp_path, wandb={"projekt": "x"}))])


def test_a_study_of_a_harder_family_aligns_its_programs_and_reports_a_verdict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    over = {"tasks": {"two_type": [str(ROOT / "configs/tasks/two_type_counting.yaml")]},
            "task_alignments": {"two_type": [
                {"program": "two_counters", "variables": ["count_a"],
                 "intervention": {"class_path": "Interchange", "init_args": {"subspace": 2}}},
                {"program": "total_and_first", "variables": ["count_a"],
                 "intervention": {"class_path": "Interchange", "init_args": {"subspace": 2}}}]},
            "seeds": [0], "analyses": [], "max_parallel": 1}
    path = _tiny_study(tmp_path, **over)
    spec = yaml.safe_load(path.read_text())
    spec["architectures"]["gru"]["alignments"] = []  # the paper's programs do not fit this family
    path.write_text(yaml.safe_dump(spec))
    [result] = study_main(["--config", str(path)])
    assert result["task_family"] == "two_type_counting"
    assert [a["key"] for a in result["alignments"]] == ["two_counters.count_a/state", "total_and_first.count_a/state"]
    assert all(a["cause_isolation"]["all"]["n_cause"] > 0 for a in result["alignments"])
    [d] = result["distinguishability"]
    assert (d["first"], d["second"]) == ("two_counters.count_a", "total_and_first.count_a") and d["differ"] > 0.5
    main(["report", str(tmp_path / "study")])
    report = (tmp_path / "study" / "report.md").read_text()
    assert "## Competing programs" in report and "| gru-two_type-s0 | two_type_counting |" in report
    assert "not trained" in report  # one epoch on 64 trials: the verdict says so instead of ranking programs


def test_task_alignments_must_name_tasks_of_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narchitectures: {gru: {config: configs/gru.yaml}}\n"
                   "task_alignments: {two_type: [{program: two_counters}]}\n")
    with pytest.raises(ConfigError, match="task_alignments: \\['two_type'\\] are not tasks"):
        load_study(["--config", str(bad)])
