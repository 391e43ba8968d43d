"""Run one cell of a study: an ordinary ``numsym_pl fit`` (a subprocess), the trained net exported
as plain files (``<cell dir>/net``: ``model.safetensors`` + ``config.json``, which ``numsym_pl das
--ckpt_path`` reads), DAS for each alignment (what ``numsym_pl das`` does) and the cell's analyses;
every step writes its result to disk and is skipped when that result exists, so a killed study
resumes where it stopped."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from numsym_pl.bridges.export import export, is_export
from numsym_pl.checkpoints import load_checkpoint, pick_device
from numsym_pl.das.alignment import check_distinct
from numsym_pl.das.controls import untrained_control
from numsym_pl.das.pairs.distinguish import competing_pairs
from numsym_pl.das.posthoc import align, load_rotation, save_result
from numsym_pl.das.record import BASELINE_FIELDS, ROWS_FILE, read_rows
from numsym_pl.errors import NumSymError
from numsym_pl.jsonfile import write_json
from numsym_pl.study.analyses import run_analyses
from numsym_pl.study.shared_controls import provenance, take_controls
from numsym_pl.study.spec import Cell

FIT_KEYS = ("val/acc_trial", "val/acc_trial_heldout", "val/acc_trial_ood", "val/acc_token", "trained/epoch",
            "trained/seconds", "trained/stopped", "epoch")


class CellFailed(NumSymError):
    """A cell's fit exited non-zero; the message ends with the tail of its log."""


def fit(cell: Cell) -> Path:
    """Train the cell's net (resuming from its last checkpoint if a previous fit was killed)."""
    ckpt = cell.dir / "fit" / "checkpoints" / "last.ckpt"
    if (cell.dir / "fit_done").exists():
        return ckpt
    cmd = [sys.executable, "-m", "numsym_pl", "fit", *cell.fit_args,
           "--trainer.logger.init_args.save_dir", str(cell.dir), "--trainer.logger.init_args.name", "",
           "--trainer.logger.init_args.version", "fit", "--trainer.enable_progress_bar", "false"]
    if ckpt.exists():
        cmd += ["--ckpt_path", str(ckpt)]
    env = dict(os.environ, OMP_NUM_THREADS=str(cell.threads), MKL_NUM_THREADS=str(cell.threads))
    log = cell.dir / "fit.log"
    with open(log, "a") as fh:
        fh.write(" ".join(cmd) + "\n")
        fh.flush()
        code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0 or not ckpt.exists():
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise CellFailed(f"cell {cell.id}: fit exited with {code} (log: {log}):\n{tail}")
    (cell.dir / "fit_done").write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
    return ckpt


def as_number(value) -> float | None:
    """A logged CSV value as a float; None for text, an empty cell or NaN."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def read_metrics(metrics_csv: Path) -> tuple[dict, dict]:
    """(the last value of each fit metric, the learning-dynamics rows) of a fit: the accuracy from
    its CSVLogger file, the DAS callback's rows from ``das_history.json`` beside it."""
    last, accuracy = {}, {}
    with open(metrics_csv) as fh:
        for row in csv.DictReader(fh):
            values = {k: as_number(v) for k, v in row.items() if v not in ("", None)}
            values = {k: v for k, v in values.items() if v is not None}
            last.update({k: v for k, v in values.items() if k in FIT_KEYS})
            epoch = int(values.get("epoch", -1))
            if "val/acc_trial" in values:
                accuracy[epoch] = {"epoch": epoch, **{k: v for k, v in values.items() if k.startswith("val/acc_trial")}}
    das = [{"epoch": r["epoch"], "key": r["key"], "iia": r["iia"], **{b: r.get(b) for b in BASELINE_FIELDS.values()}}
           for r in read_rows(metrics_csv.parent / ROWS_FILE)]
    return last, {"accuracy": sorted(accuracy.values(), key=lambda r: r["epoch"]),
                  "das": sorted(das, key=lambda r: (r["epoch"], r["key"]))}


def run_cell(cell: Cell) -> dict:
    """The cell's result (also written to ``<cell dir>/result.json``)."""
    result_path = cell.dir / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    cell.dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cell.threads)
    t0 = time.perf_counter()
    ckpt = fit(cell)
    if not is_export(cell.dir / "net"):  # the trained net as plain files: any alignment refits from it
        export(ckpt, cell.dir / "net")
    fit_metrics, dynamics = read_metrics(cell.dir / "fit" / "metrics.csv")
    device = pick_device(cell.device)
    lm, task = load_checkpoint(ckpt, device)
    records, swaps = {}, {}
    alignments = check_distinct([a.for_net(lm.net) for a in cell.alignments], f"cell {cell.id}: alignments")
    # no progress bar: cells run in parallel, their bars would interleave
    settings = replace(cell.das, seed=cell.das_seed, progress=False)
    out = {a.key: cell.dir / "das" / a.key.replace("/", "@") for a in alignments}
    for alignment in alignments:
        if (out[alignment.key] / "das_result.json").is_file():
            record = json.loads((out[alignment.key] / "das_result.json").read_text())
            swap = (load_rotation(out[alignment.key] / "rotation.pt") if (out[alignment.key] / "rotation.pt").is_file()
                    else None)
        else:  # the untrained-net controls come after the fits, shared by the cells of this architecture and task
            record, swap = align(lm.net, task, alignment, settings, ckpt, with_control=False)
            record["device"] = str(device)
            out[alignment.key].mkdir(parents=True, exist_ok=True)
            save_result(record, out[alignment.key], swap)
        records[alignment.key] = record
        swaps[alignment.key] = None if swap is None else swap.cpu()
    if settings.controls:
        def add_control(alignment, control):
            records[alignment.key]["controls"] = {**(records[alignment.key].get("controls") or {}),
                                                  "untrained": control}
            save_result(records[alignment.key], out[alignment.key])

        shared = replace(cell.das, progress=False)  # the controls of an architecture and task share one seed
        wanted = [(a, provenance(getattr(lm.net, "init_config", None), task.config(), a, shared, str(device)))
                  for a in alignments if "untrained" not in (records[a.key].get("controls") or {})]
        take_controls(cell, wanted, lambda a: untrained_control(lm.net, task, a, shared), add_control)
    records = [records[a.key] for a in alignments]
    analyses = run_analyses(cell, alignments, lm.net.cpu().eval(), task, swaps)  # they make their trials on the CPU
    # how often each two competing hypotheses' labels differ (no net: a property of the task and programs)
    distinct = competing_pairs(task, alignments, n=cell.das.n_test, seed=cell.das.seed)
    result = {**cell.labels, "fit": fit_metrics, "dynamics": dynamics, "ckpt_path": str(ckpt),
              "arch_family": lm.net.family, "task_family": task.family, "task_config": task.config(),
              "task_max_count": getattr(task, "max_count", None),
              "alignments": records, "analyses": analyses, "distinguishability": distinct,
              "seconds": time.perf_counter() - t0}
    write_json(result_path, result)
    return result
