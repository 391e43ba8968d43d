"""``numsym_pl study``: run a study's grid and collect every result into one table.

    numsym_pl study --config configs/studies/paper_main.yaml [--quick] [--max_parallel 2] [--dry_run]
    numsym_pl study --config ... [--out_dir DIR] -- --trainer.accelerator gpu   # last on every cell's fit
    numsym_pl study --config ... --device cuda -- --trainer.accelerator gpu   # the alignments on the GPU too
    numsym_pl study --config ... --resume_from docs/findings/full/paper_main   # on a fresh machine

Cells whose ``result.json`` exists are not run again, so a killed study resumes. ``--resume_from
DIR`` takes the finished cells of another copy of the same study (its ``study.json`` and
``results.json``, e.g. committed without checkpoints), after checking that every setting that decides
a cell's numbers is the same; only the missing cells run. Writes
``<out_dir>/results.json`` (every cell's result) and ``results.csv`` (one row per cell and
alignment); ``numsym_pl report <out_dir>`` turns them into ``report.md``.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Optional

from jsonargparse import ActionConfigFile, ArgumentParser
from tqdm.auto import tqdm

from numsym_pl.checkpoints import pick_device
from numsym_pl.das.results import flat_record
from numsym_pl.errors import ConfigError, NumSymError
from numsym_pl.jsonfile import as_json, read_json, write_json
from numsym_pl.study.dashboard import log_cell
from numsym_pl.study.executors import executor_for, stop_on_signals, threads_per_cell
from numsym_pl.study.spec import Study

CSV_COLUMNS = ("cell", "arch", "task", "seed", "size", "acc_trial", "acc_trial_heldout", "acc_trial_ood", "trained_epoch",
               "epochs", "alignment", "intervention", "iia_effective", "iia_effective_lo", "iia_effective_hi", "iia",
               "iia_lo", "iia_hi", "iia_none", "discriminating", "iia_identity", "iia_full_swap", "iia_random",
               "iia_random_sd", "iia_untrained", "iia_untrained_effective", "das_steps", "error")


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base``: dicts merge key by key, ``null`` removes a key (e.g. a task
    from ``tasks``), anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl study", description="Run a grid of fit + DAS cells and collect the results. "
                            "--quick merges the study's `quick` settings over the rest: a CPU-sized run.")
    parser.add_argument("--config", action=ActionConfigFile, help="The study's YAML file (configs/studies/).")
    parser.add_class_arguments(Study, nested_key=None, as_group=True)
    parser.add_argument("--dry_run", action="store_true", help="List the cells and exit.")
    parser.add_argument("--resume_from", type=Optional[Path], default=None,
                        help="A directory with this study's study.json and results.json from another run (e.g. "
                        "committed results): its finished cells are taken, the others run.")
    return parser


def load_study(argv: list[str]) -> tuple[Study, bool, Path | None]:
    """The study (quick settings merged if asked), the dry-run flag and ``--resume_from``."""
    argv, last = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    quick = "--quick" in argv  # the flag selects the study's `quick:` block, so it is taken out before parsing
    cfg = build_parser().parse_args([a for a in argv if a != "--quick"])
    dry_run, resume_from = cfg.pop("dry_run"), cfg.pop("resume_from")
    cfg.pop("config", None)
    settings = cfg.as_dict()
    if quick:  # its own directory: a quick cell must never stand in for a full one on resume
        settings = deep_merge(settings, settings.pop("quick") or {})
        settings["out_dir"] = settings.get("out_dir") or f"runs/studies/{settings['name']}_quick"
    settings.pop("quick", None)
    if last:  # the fit arguments after `--`, last on every cell's command
        settings["last_fit_args"] = [*(settings.get("last_fit_args") or []), *last]
    study_parser = ArgumentParser(prog="numsym_pl study")
    study_parser.add_class_arguments(Study, "study")
    study = study_parser.instantiate_classes(study_parser.parse_object({"study": settings})).study
    study.settings = {**settings, "quick": quick}  # recorded as study.json beside the results
    return study, dry_run, resume_from


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
    fit = result.get("fit", {})
    base = {"cell": result["cell"], "arch": result["arch"], "task": result["task"], "seed": result["seed"],
            "size": result["size"], "acc_trial": fit.get("val/acc_trial"), "acc_trial_heldout": fit.get("val/acc_trial_heldout"),
            "acc_trial_ood": fit.get("val/acc_trial_ood"), "trained_epoch": fit.get("trained/epoch"),
            "epochs": None if fit.get("epoch") is None else int(fit["epoch"]) + 1, "error": result.get("error")}
    rows = []
    for a in result.get("alignments", []):
        flat = flat_record(a)
        rows.append({**base, "alignment": a["key"], "intervention": a["intervention"], "das_steps": flat["steps"],
                     **{k: v for k, v in flat.items() if k in CSV_COLUMNS}})
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


def main(argv: list[str] | None = None) -> list[dict]:
    study, dry_run, resume_from = load_study(sys.argv[1:] if argv is None else argv)
    threads = threads_per_cell(study.executor, study.max_parallel, study.executor_args)
    cells = study.cells(threads)
    done = [c for c in cells if (c.dir / "result.json").is_file()]
    print(f"study {study.name}: {len(cells)} cells ({len(done)} done), out_dir {study.out_dir}, executor "
          f"{study.executor} x {study.max_parallel}, {threads} thread(s) per cell")
    if dry_run:
        for c in cells:
            print(f"  {c.id}: numsym_pl fit {' '.join(c.fit_args)}; align {[a.key for a in c.alignments]}")
        return []
    if study.executor == "local":  # a cluster's nodes may see a GPU that this one does not
        pick_device(study.device)
    if resume_from is not None:
        print(f"study {study.name}: {take_finished_cells(study, cells, resume_from)} finished cells taken from {resume_from}")
    study.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(study.out_dir / "study.json", study.settings)
    run = executor_for(study.executor, study.max_parallel, study.out_dir / "submitit", study.executor_args)
    results = {}
    try:
        with stop_on_signals(), tqdm(total=len(cells), desc=f"study {study.name}", unit="cell") as bar:
            for result in run(cells):
                results[result["cell"]] = result
                if study.wandb is not None:
                    log_cell(result, study.out_dir / "cells" / result["cell"], study.name, study.wandb)
                status = "FAILED" if "error" in result else "ok"
                bar.write(f"  {result['cell']}: {status}" + (f" ({result['error'].splitlines()[0]})" if "error" in result else ""))
                bar.update(1)
                write_results(study.out_dir, [results[c.id] for c in cells if c.id in results])  # partial tables as we go
    except KeyboardInterrupt as stop:
        print(f"study {study.name}: stopped ({stop or 'interrupt'}) with {len(results)} of {len(cells)} cells finished in "
              "this run; its workers and fits are ended; run the same command again to resume", file=sys.stderr)
        raise SystemExit(130) from None
    failed = [r for r in results.values() if "error" in r]
    print(f"wrote {study.out_dir / 'results.csv'} and results.json; next: numsym_pl report {study.out_dir}")
    if failed:
        raise NumSymError(f"{len(failed)} of {len(cells)} cells failed: {[r['cell'] for r in failed]}; see their "
                          "fit.log; run the same command again to retry them (finished cells are kept)")
    return [results[c.id] for c in cells]
