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

import sys

from tqdm.auto import tqdm

from numsym_pl.checkpoints import pick_device
from numsym_pl.errors import NumSymError
from numsym_pl.jsonfile import write_json
from numsym_pl.study.dashboard import log_cell
from numsym_pl.study.executors import executor_for, stop_on_signals, threads_per_cell
from numsym_pl.study.loading import load_study
from numsym_pl.study.results import take_finished_cells, write_results


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
        print(f"study {study.name}: {take_finished_cells(study, cells, resume_from)} finished cells taken from "
              f"{resume_from}")
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
                bar.write(f"  {result['cell']}: {status}"
                          + (f" ({result['error'].splitlines()[0]})" if "error" in result else ""))
                bar.update(1)
                write_results(study.out_dir,
                              [results[c.id] for c in cells if c.id in results])  # partial tables as we go
    except KeyboardInterrupt as stop:
        print(f"study {study.name}: stopped ({stop or 'interrupt'}) with {len(results)} of {len(cells)} cells "
              "finished in this run; its workers and fits are ended; run the same command again to resume",
              file=sys.stderr)
        raise SystemExit(130) from None
    failed = [r for r in results.values() if "error" in r]
    print(f"wrote {study.out_dir / 'results.csv'} and results.json; next: numsym_pl report {study.out_dir}")
    if failed:
        raise NumSymError(f"{len(failed)} of {len(cells)} cells failed: {[r['cell'] for r in failed]}; see their "
                          "fit.log; run the same command again to retry them (finished cells are kept)")
    return [results[c.id] for c in cells]
