"""A sweep's outputs: ``sweep.json``, ``sweep.csv`` (one row per cell), the IIA heatmap, the text
grid printed by ``numsym_pl sweep`` and an optional wandb run."""

from __future__ import annotations

import csv
from pathlib import Path

from numsym_pl.analysis.figures import sweep_heatmap
from numsym_pl.jsonfile import write_json
from numsym_pl.das.record import BASELINE_FIELDS, flat_record

CSV_FIELDS = ("net", "featurizer", "site", "subspace", "iia", "iia_lo", "iia_hi", "iia_effective", "n_effective",
              "iia_none", *BASELINE_FIELDS.values(), "learned_width", "steps", "seconds", "seconds_site")


def csv_row(record: dict) -> dict:
    return {**{k: record.get(k) for k in CSV_FIELDS},
            **{k: v for k, v in flat_record(record).items() if k in CSV_FIELDS}}


def write_outputs(records: list[dict], meta: dict, out_dir: Path) -> dict[str, Path]:
    paths = {"json": write_json(out_dir / "sweep.json", {**meta, "records": records}, indent=2)}
    with open(out_dir / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_row(r) for r in records)
    paths["csv"] = out_dir / "sweep.csv"
    paths["png"] = sweep_heatmap(records, out_dir / "sweep.png",
                                 title=f"{meta['program']}.{'+'.join(meta['variables'])}"
                                       f" — {'/'.join(Path(meta['ckpt_path']).parts[-4:-2]) or meta['ckpt_path']}")
    return paths


def log_to_wandb(project: str, records: list[dict], meta: dict, png: Path) -> str:
    """One wandb run holding the sweep's table and heatmap, written beside them (``<out>/wandb``);
    returns its directory."""
    import wandb

    run = wandb.init(project=project, job_type="sweep", name=f"sweep-{Path(meta['ckpt_path']).parent.parent.name}",
                     config={k: v for k, v in meta.items() if k != "records"}, dir=str(png.parent), reinit=True)
    rows = [csv_row(r) for r in records]
    run.log({"sweep/table": wandb.Table(columns=list(CSV_FIELDS), data=[[r[k] for k in CSV_FIELDS] for r in rows]),
             "sweep/heatmap": wandb.Image(str(png))})
    best = max(records, key=lambda r: r["iia"])
    run.summary.update({"sweep/best_iia": best["iia"], "sweep/best_site": best["site"],
                        "sweep/best_subspace": best["subspace"]})
    directory = run.dir
    run.finish()
    return directory


def format_grid(records: list[dict]) -> str:
    """IIA per (net, featurizer, site) row and size column."""
    sizes = sorted({r["subspace"] for r in records})
    rows = {}
    for r in records:
        rows.setdefault((r["net"], r["featurizer"], r["site"]), {})[r["subspace"]] = r["iia"]
    head = f"{'net':<10} {'featurizer':<13} {'site':<10} " + " ".join(f"{k:>5}" for k in sizes)
    lines = [head] + [f"{n:<10} {f:<13} {s:<10} " + " ".join(f"{v[k]:5.2f}" if k in v else f"{'':>5}" for k in sizes)
                      for (n, f, s), v in rows.items()]
    return "\n".join(lines)
