"""The report's tables, its study comparison and its correlation statistics, on made-up numbers."""

import math

import numpy as np
import pytest

from numsym_pl.analysis.against import against_section
from numsym_pl.analysis.summary import correlation, dynamics_points, run_correlation


def _cell(arch_family, variant, family="numeric_equivalence"):
    return {"arch_family": arch_family, "task_family": family,
            "task_config": {"class_path": "numsym_pl.tasks.NumericEquivalence", "init_args": {"variant": variant}}}


def _alignment(program, variables=(), intervention="das", **where):
    return {"alignment": {"program": program, "variables": list(variables), "intervention": intervention, **where}}


def test_two_sites_of_one_program_are_two_rows(tmp_path):
    """A cell aligned at two sites keeps both: the report never keeps only the first match."""
    from numsym_pl.analysis.report import write_report

    rec = lambda site, iia: {"key": f"up_down.count/{site}", "iia": iia, "iia_identity": 0.1, "iia_full_swap": 0.5,
                             "iia_random": 0.1, "steps": 10, "intervention": "das",
                             **_alignment("up_down", ["count"])}
    cell = {"cell": "rope-multi-s0", "arch": "rope", "task": "multi", "seed": 0, "size": None,
            **_cell("transformer", "multi"),
            "fit": {"val/acc_trial": 1.0}, "dynamics": {"accuracy": [], "das": []}, "analyses": {},
            "alignments": [rec("resid.1", 0.31), rec("resid.2", 0.77)]}
    import json
    (tmp_path / "results.json").write_text(json.dumps([cell]))
    report = write_report(tmp_path).read_text()
    assert "up_down.count/resid.1 | – | 0.310" in report and "up_down.count/resid.2 | – | 0.770" in report


def test_the_report_shows_iia_by_site_where_one_variable_is_aligned_at_several(tmp_path):
    from numsym_pl.analysis.report import write_report

    rec = lambda site, eff: {"key": f"up_down.count/{site}", "site": site, "iia": eff, "iia_effective": eff,
                             "iia_none": 0.1, "n": 1000, "n_effective": 900, "steps": 10, "intervention": "das",
                             **_alignment("up_down", ["count"])}
    cell = {"cell": "rope-multi-s0", "arch": "rope", "task": "multi", "seed": 0, "size": None,
            **_cell("transformer", "multi"),
            "fit": {"val/acc_trial": 1.0}, "dynamics": {"accuracy": [], "das": []}, "analyses": {},
            "alignments": [rec("resid.1", 0.9), rec("attn.1", 0.2), rec("mlp.1", 0.6),
                           {**rec("resid.1", 0.5), "key": "up_up.demo_count/resid.1"}]}
    import json
    (tmp_path / "results.json").write_text(json.dumps([cell]))
    report = write_report(tmp_path).read_text()
    section = report.split("### IIA by site")[1].split("##")[0]
    assert "| arch | task | alignment | resid.1 | attn.1 | mlp.1 |" in section
    assert ("| rope | multi | up_down.count | 0.900 [0.879, 0.918] | 0.200 [0.175, 0.227] | 0.600 [0.568, 0.632] |"
            in section)
    assert "up_up" not in section  # aligned at one site only


def test_the_report_leads_with_effective_iia_and_its_interval_and_flags_a_floor_inside_it(tmp_path):
    from numsym_pl.analysis.report import write_report

    rec = lambda var, iia, eff, none: {"key": f"up_down.{var}/state", "iia": iia, "iia_effective": eff,
                                       "iia_none": none, "n": 1000, "n_effective": 500, "iia_identity": 0.1,
                                       "iia_full_swap": 0.5, "iia_random": 0.1, "steps": 10, "intervention": "das",
                                       **_alignment("up_down", [var])}
    cell = {"cell": "gru-multi-s0", "arch": "gru", "task": "multi", "seed": 0, "size": None,
            **_cell("recurrent", "multi"),
            "fit": {"val/acc_trial": 1.0}, "dynamics": {"accuracy": [], "das": []}, "analyses": {},
            "alignments": [rec("count", 0.99, 0.985, 0.08), rec("phase", 0.52, 0.04, 0.51)]}
    import json
    (tmp_path / "results.json").write_text(json.dumps([cell]))
    report = write_report(tmp_path).read_text()
    assert "up_down.count/state | 0.985 [0.969, 0.992] | 0.990 [0.982, 0.995] | 0.080 [0.065, 0.098] | yes" in report
    assert "up_down.phase/state | 0.040 [0.026, 0.061] | 0.520 [0.489, 0.551] | 0.510 [0.479, 0.541] | **no**" in report
    assert "This study declares no claims" in report and "agrees" not in report  # measured, no verdict


def test_the_grid_table_has_one_row_per_architecture_and_task_with_each_programs_first_alignment():
    from numsym_pl.analysis.report import grid_table

    def rec(key, eff, program, variables, intervention="das"):
        return {"key": key, "iia": eff, "iia_effective": eff, "iia_none": 0.05, "n": 1000, "n_effective": 900,
                "intervention": intervention, **_alignment(program, variables, intervention)}

    def cell(arch, family, seed, alignments):
        return {**_cell(family, "multi"), "cell": f"{arch}-multi-s{seed}", "arch": arch, "task": "multi", "seed": seed,
                "fit": {"val/acc_trial": 1.0}, "alignments": alignments}

    rope = [cell("rope", "transformer", s, [rec("up_down.count/resid.1", c, "up_down", ["count"]),
                                            rec("up_up.demo_count/resid.1", 0.01, "up_up", ["demo_count"]),
                                            rec("ctx_distr.balance/resid.1", 0.7, "ctx_distr", ["balance"]),  # no claim
                                            rec("attention_hiding.ctx_distr/attn", h, "ctx_distr", [],
                                                "attention_hiding")])
            for s, (c, h) in enumerate([(0.02, 0.95), (0.03, 0.97)])]
    gru = [cell("gru", "recurrent", 0, [rec("up_down.count/state", 0.98, "up_down", ["count"]),
                                        rec("ctx_distr.balance/state", 0.6, "ctx_distr", ["balance"])])]
    lines = grid_table(rope + gru).splitlines()
    assert lines[0] == "| arch | task | seeds | trial acc | up_down | up_up | ctx_distr |" and len(lines) == 4
    row = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert row["rope"][2:4] == ["2", "1.000 ± 0.000"]
    assert row["rope"][4].startswith("0.025 ± 0.007 [") and row["rope"][4].endswith("`up_down.count/resid.1`")
    assert row["rope"][6].startswith("0.700 ± 0.000") and row["rope"][6].endswith("`ctx_distr.balance/resid.1`")
    assert row["gru"][5] == "–" and row["gru"][6].endswith("`ctx_distr.balance/state`")  # each group's first


def test_a_report_of_a_study_in_progress_names_the_cells_still_to_run():
    from numsym_pl.analysis.report import still_to_run

    study = {"architectures": {"gru": {}, "rope": {}}, "tasks": {"multi": [], "same": []}, "seeds": [0, 1, 2],
             "sizes": [None]}
    done = [_result("gru-multi", s, 0.9) for s in range(3)] + [_result("gru-same", 0, 0.3, task="same")]
    done.append({"cell": "gru-same-s1", "arch": "gru", "task": "same", "error": "CellFailed: ..."})  # to run again
    assert still_to_run(done, study) == (" (of the study's 12 cells; still to run: gru same 2, rope multi 3, "
                                         "rope same 3)")
    full = done[:3] + [_result("gru-same", s, 0.3, task="same") for s in range(3)]
    assert still_to_run(full, {**study, "architectures": {"gru": {}}}) == "" and still_to_run(full, {}) == ""


def test_correlation_and_its_intervals():
    rng = np.random.default_rng(0)
    x = rng.random(30)
    strong = correlation(x, 2 * x + 0.01 * rng.standard_normal(30))
    assert strong["r"] > 0.99 and strong["ci_boot"][0] > 0.95 and strong["ci_fisher"][0] > 0.95
    none = correlation(x, rng.random(30))
    assert none["ci_boot"][0] < 0 < none["ci_boot"][1]
    assert math.isnan(correlation([0.1, 0.2], [0.3, 0.4])["r"])  # too few cells


def test_dynamics_points_pair_each_das_check_with_the_validation_of_its_epoch():
    result = {"dynamics": {"accuracy": [{"epoch": 4, "val/acc_trial": 0.1}, {"epoch": 9, "val/acc_trial": 0.5},
                                        {"epoch": 19, "val/acc_trial": 0.9}],
                           "das": [{"epoch": -1, "key": "a", "iia": 0.0}, {"epoch": 9, "key": "a", "iia": 0.4},
                                   {"epoch": 19, "key": "a", "iia": 0.8}, {"epoch": 19, "key": "b", "iia": 0.1},
                                   {"epoch": 29, "key": "a", "iia": 0.9}]}}
    assert dynamics_points(result, "a") == [(9, 0.5, 0.4), (19, 0.9, 0.8)]  # no accuracy at -1 or 29
    assert dynamics_points(result, "b") == [(19, 0.9, 0.1)]
    result["dynamics"]["das"][1]["iia_full_swap"] = 0.3  # a baseline where the check scored one
    assert dynamics_points(result, "a", "iia_full_swap") == [(9, 0.5, 0.3)]


def test_run_correlation_resamples_whole_runs_and_says_when_it_cannot():
    rng = np.random.default_rng(0)
    acc = np.linspace(0, 1, 12)
    runs = [list(zip(acc, acc + rng.normal(0, 0.1, 12))) for _ in range(5)]
    c = run_correlation(runs)
    assert c["n_runs"] == 5 and c["n_checks"] == 60 and c["ci_by"] == "runs"
    assert c["ci"][0] <= c["r"] <= c["ci"][1] and c["r"] > 0.9 and len(c["per_run"]) == 5
    same = run_correlation([runs[0]] * 4)  # identical runs: resampling runs cannot move r
    assert same["ci"] == pytest.approx([same["r"], same["r"]])
    one = run_correlation([runs[0], runs[1][:2]])  # a run with fewer than 3 checks is left out
    assert (one["n_runs"] == 1 and one["ci_by"] == "checks (one run)"
            and one["r"] == pytest.approx(np.corrcoef(*np.array(runs[0]).T)[0, 1]))
    assert run_correlation([])["n_runs"] == 0


def _result(cell, seed, iia_eff, acc=1.0, task="multi", key="up_down.count/state"):
    return {**_cell("recurrent", task), "cell": f"{cell}-s{seed}", "arch": "gru", "task": task, "seed": seed,
            "fit": {"val/acc_trial": acc},
            "alignments": [{**_alignment("up_down", ["count"]), "key": key, "iia": iia_eff, "iia_effective": iia_eff,
                            "n": 1000, "n_effective": 900,
                            "intervals": {"iia_effective": [iia_eff - 0.02, iia_eff + 0.01]}}]}


def test_against_sets_two_studies_side_by_side_with_a_t_interval_over_seeds():
    full = [_result("gru-multi", s, v) for s, v in enumerate([0.95, 0.97, 0.99])]
    quick = [_result("gru-multi", 0, 0.60), _result("gru-same", 0, 0.3, task="same")]
    text = against_section(full, quick, "full", "quick")
    row = next(line for line in text.splitlines() if line.startswith("| gru | multi"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:4] == ["up_down.count/state", "3 / 1"] and cells[6] == "effective"
    # three seeds: Student's t over them (0.97 ± 0.02 -> ± 4.303 * 0.02 / sqrt 3, within [0, 1]); one seed: Wilson
    assert cells[7] == "0.970 ± 0.020 [0.920, 1.000]" and cells[8] == "0.600 [0.580, 0.610]"
    assert len(cells) == 9  # figures only: verdicts belong to declared claims
    assert "1 (arch, task) group(s) are in one study only" in text
    assert "No cell group" in against_section(full, [_result("gru-same", 0, 0.3, task="same")], "full", "other")


def test_a_seed_whose_net_did_not_learn_the_task_is_left_out_of_the_grid_and_said_so():
    """Four trained seeds align, a fifth never learned the task (its IIA near 0): the grid reads the four."""
    from numsym_pl.analysis.report import grid_table

    cells = [_result("gru-multi", s, v) for s, v in enumerate([0.95, 0.96, 0.97, 0.98])] + [
        _result("gru-multi", 4, 0.05, acc=0.07)]
    row = [c.strip() for c in grid_table(cells).splitlines()[2].strip("|").split("|")]
    assert row[2] == "5 (4 trained)" and row[4].startswith("0.965 ± 0.013 [")
    assert row[4].endswith("`up_down.count/state`")
    assert "(4 of 5 seeds)" in against_section(cells, cells, "full", "other")


def test_the_dynamics_section_sets_the_baselines_correlations_beside_the_das_one(tmp_path):
    """r over training for DAS IIA and, as its controls, for the random-rotation and full-swap IIA
    of the same checks: a baseline that rises with accuracy as much makes r say little."""
    from numsym_pl.analysis.report import dynamics_section

    rng = np.random.default_rng(0)
    results = []
    for seed in range(3):
        acc = np.clip(np.linspace(-0.2, 1.2, 10) + rng.normal(0, 0.05, 10), 0, 1)
        das = [{"epoch": 10 * i + 9, "key": "up_down.count/state", "iia": float(a * 0.8), "iia_identity": 0.0,
                "iia_full_swap": float(a * 0.5 + rng.normal(0, 0.01)), "iia_random": float(rng.random() * 0.1)}
               for i, a in enumerate(acc)]
        results.append({"cell": f"gru-multi-s{seed}", "arch": "gru", "task": "multi", "seed": seed, "size": None,
                        "fit": {}, "alignments": [],
                        "dynamics": {"accuracy": [{"epoch": 10 * i + 9, "val/acc_trial": float(a)}
                                                  for i, a in enumerate(acc)], "das": das}})
    section = dynamics_section(results, tmp_path)
    row = next(line for line in section.splitlines() if line.startswith("| gru | up_down.count/state | 3 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    das_r, random_r, swap_r = (float(cells[i].split()[0]) for i in (4, 7, 8))
    assert das_r > 0.99 and swap_r > 0.95 and abs(random_r) < 0.6  # the full swap rises with accuracy too
    assert "control: r, full-state swap" in section and (tmp_path / "figures" / "learning_dynamics.png").is_file()
