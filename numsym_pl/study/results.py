"""A study's results on disk: ``results.json`` (every cell's result), ``results.csv`` (one row per
cell and alignment), and the finished cells taken from another copy of the same study."""

from __future__ import annotations

import csv
from pathlib import Path

from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import as_json, read_json, write_json
from numsym_pl.study.spec import Study
from numsym_pl.das.record import BASELINE_FIELDS, DRIFT_FIELDS, flat_record

CSV_COLUMNS = ("cell", "arch", "task", "seed", "size", "acc_trial", "acc_trial_heldout", "acc_trial_ood",
               "trained_epoch", "epochs", "alignment", "intervention", "iia_effective", "iia_effective_lo",
               "iia_effective_hi", "iia", "iia_lo", "iia_hi", "iia_none", "discriminating", *BASELINE_FIELDS.values(),
               "iia_random_sd", "iia_untrained", "iia_untrained_effective", "iia_null", "iia_null_effective",
               "das_seed", "das_steps", "das_stopped", "das_best_step", *DRIFT_FIELDS.values(), "error")


# study.json fields that decide a cell's numbers; the rest (where and how cells run) may differ
RESULT_SETTINGS = ("architectures", "tasks", "seeds", "sizes", "fit_args", "das", "analyses", "task_alignments",
                   "last_fit_args", "quick")


def take_finished_cells(study: Study, cells: list, source: Path) -> int:
    """Write the finished cells of ``source`` (a copy of this study's results) into this study's cell
    directories where they have no result yet; the number taken. A setting in RESULT_SETTINGS that
    differs is a ConfigError: a cell from another grid must never stand in for one of this grid."""
    theirs = read_json(source / "study.json", "--resume_from")
    ours = as_json(study.settings)
    differ = [k for k in RESULT_SETTINGS if theirs.get(k) != ours.get(k)]
    if differ:
        raise ConfigError(f"--resume_from: {source / 'study.json'} differs from this study in {differ}; its cells "
                          "would not be this study's cells")
    finished = {r["cell"]: r for r in read_json(source / "results.json", "--resume_from") if "error" not in r}
    taken = 0
    for cell in cells:
        if cell.id in finished and not (cell.dir / "result.json").is_file():
            cell.dir.mkdir(parents=True, exist_ok=True)
            write_json(cell.dir / "result.json", finished[cell.id])
            taken += 1
    return taken


def csv_rows(result: dict) -> list[dict]:
    """One row per (alignment, DAS seed): a DAS seed's own figures on its row; the baselines and
    controls, measured with the first DAS seed, on that seed's row only."""
    fit = result.get("fit", {})
    base = {"cell": result["cell"], "arch": result["arch"], "task": result["task"], "seed": result["seed"],
            "size": result["size"], "acc_trial": fit.get("val/acc_trial"),
            "acc_trial_heldout": fit.get("val/acc_trial_heldout"),
            "acc_trial_ood": fit.get("val/acc_trial_ood"), "trained_epoch": fit.get("trained/epoch"),
            "epochs": None if fit.get("epoch") is None else int(fit["epoch"]) + 1, "error": result.get("error")}
    rows = []
    for a in result.get("alignments", []):
        flat = flat_record(a)
        first = {**base, "alignment": a["key"], "intervention": a["intervention"], "das_steps": flat["steps"],
                 "das_seed": (a.get("settings") or {}).get("seed"), "das_stopped": a.get("stopped"),
                 "das_best_step": a.get("best_step"), **{k: v for k, v in flat.items() if k in CSV_COLUMNS}}
        rows.append(first)
        for r in (a.get("replicates") or [])[1:]:
            (lo, hi), (elo, ehi) = r["interval"] or (None, None), r["iia_effective_interval"] or (None, None)
            rows.append({**base, "alignment": a["key"], "intervention": a["intervention"], "das_seed": r["seed"],
                         "iia": r["iia"], "iia_lo": lo, "iia_hi": hi, "iia_effective": r["iia_effective"],
                         "iia_effective_lo": elo, "iia_effective_hi": ehi, "iia_none": r["iia_none"],
                         "das_steps": r["steps"], "das_stopped": r["stopped"], "das_best_step": r["best_step"]})
    return rows or [base]


def write_results(out_dir: Path, results: list[dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "results.json", results)
    tmp = out_dir / "results.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, CSV_COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerows(csv_rows(r))
    tmp.replace(out_dir / "results.csv")
