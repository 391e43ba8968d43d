"""A study as a wandb dashboard: each finished cell becomes one wandb run, named after the cell,
grouped by the study, tagged with its architecture, task, seed and size, holding the fit's
metrics over training (replayed from the cell's ``metrics.csv``, on ``trainer/step``) and its
post-hoc alignments' IIA, intervals, floor, baselines and controls in its summary and config.
Grouping the project's runs by ``arch`` and ``task`` then gives the grid's curves and tables with
their spread over seeds.

A study turns it on with ``wandb: {project: numsym_pl}`` (``offline: true`` by default, or when
``WANDB_MODE=offline``; ``wandb sync`` uploads later). A cell is logged once: its run's id is
derived from the study and the cell, and ``<cell dir>/wandb.json`` marks it done, so a resumed
study logs only the cells it has not logged.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from numsym_pl.das.record import flat_record
from numsym_pl.jsonfile import write_json
from numsym_pl.study.cell import as_number

def metric_rows(metrics_csv: Path) -> list[dict]:
    """The fit's logged rows merged per step, in step order, as numbers (``trainer/step`` added)."""
    by_step: dict[int, dict] = {}
    if not metrics_csv.is_file():
        return []
    with open(metrics_csv) as fh:
        for row in csv.DictReader(fh):
            values = {k: x for k, v in row.items() if (x := as_number(v)) is not None}
            if "step" in values:
                by_step.setdefault(int(values.pop("step")), {}).update(values)
    return [{**values, "trainer/step": step} for step, values in sorted(by_step.items())]


def run_id(study: str, cell: str) -> str:
    return hashlib.sha1(f"{study}/{cell}".encode()).hexdigest()[:16]


def log_cell(result: dict, cell_dir: Path, study: str, settings: dict) -> Path | None:
    """Log one finished cell as a wandb run (see the module's docstring); returns the run's
    directory, or None if the cell was logged before or failed."""
    marker = Path(cell_dir) / "wandb.json"
    if marker.is_file() or "error" in result:
        return None
    import wandb

    offline = settings.get("offline", True) or os.environ.get("WANDB_MODE") == "offline"
    tags = [f"arch:{result['arch']}", f"task:{result['task']}", f"seed:{result['seed']}", f"size:{result['size']}",
            *settings.get("tags", [])]
    alignments = {a["key"]: flat_record(a) for a in result.get("alignments", [])}
    config = {"study": study, "cell": result["cell"], "arch": result["arch"], "task": result["task"],
              "seed": result["seed"], "size": result["size"], "arch_family": result.get("arch_family"),
              "task_family": result.get("task_family"), "task_config": result.get("task_config"),
              "alignments": alignments}
    run = wandb.init(project=settings.get("project", "numsym_pl"), entity=settings.get("entity"), group=study,
                     name=result["cell"], id=run_id(study, result["cell"]), job_type="cell", tags=tags, config=config,
                     dir=str(cell_dir), mode="offline" if offline else "online", resume="allow", reinit=True)
    run.define_metric("trainer/step")
    run.define_metric("*", step_metric="trainer/step")
    for row in metric_rows(Path(cell_dir) / "fit" / "metrics.csv"):
        run.log(row)
    summary = {f"fit/{k}": v for k, v in (result.get("fit") or {}).items()}
    for key, figures in alignments.items():
        summary.update({f"post/{key}/{f}": v for f, v in figures.items() if v is not None})
    run.summary.update(summary)
    directory = Path(run.dir).parent
    run.finish()
    write_json(marker, {"id": run_id(study, result["cell"]), "dir": str(directory), "offline": offline})
    return directory
