"""``numsym_pl sweep``: one program's variable(s) at many sites x subspace sizes x featurizers, in
one call, on a trained checkpoint (``numsym_pl.das.sweep``).

    numsym_pl sweep --ckpt_path RUN/checkpoints/last.ckpt --program up_down --variables count \\
        --sites state [--sizes 1,2,4,8,16,32,64] [--featurizers rotation,low_rank] [--controls] \\
        [--out DIR] [--wandb_project NAME]

``--sites`` takes names joined by commas, or ``all`` (every site of the net); sizes larger than a
site's width are left out there. Writes ``sweep.json`` (the settings and every cell's record),
``sweep.csv`` (one row per cell) and ``sweep.png`` (the IIA heatmap, baselines beside it) into
``--out`` (default: the checkpoint's directory, under ``sweep/``); with ``--wandb_project`` it also
logs the table and the heatmap to a wandb run in ``<out>/wandb`` (offline when ``WANDB_MODE=offline``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser

from numsym_pl.analysis.sweep_outputs import format_grid, log_to_wandb, write_outputs
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das.settings import SearchSettings
from numsym_pl.das.sweep import DEFAULT_SIZES, run_sweep
from numsym_pl.errors import ConfigError
from numsym_pl.preflight import writable_dir

def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl sweep",
                            description="Align a variable at many sites, sizes and featurizers at once.")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by `numsym_pl fit`.")
    parser.add_argument("--program", type=str, default="up_down",
                        help="The symbolic program (or a program class's path).")
    parser.add_argument("--variables", type=Optional[str], default=None,
                        help="Variable(s), joined by '+' (default: the program's first).")
    parser.add_argument("--sites", type=Optional[str], default=None,
                        help="Sites joined by commas, or 'all' (default: the net's default site).")
    parser.add_argument("--sizes", type=str, default=",".join(map(str, DEFAULT_SIZES)),
                        help="Subspace sizes, joined by commas.")
    parser.add_argument("--featurizers", type=str, default="rotation",
                        help="Featurizers joined by commas (rotation, low_rank, "
                             "pca_rotation, boundless, revnet, or a class path).")
    parser.add_class_arguments(SearchSettings, "settings")
    parser.add_argument("--controls", action=ActionYesNo, default=False,
                        help="Also sweep an untrained net of the same architecture.")
    parser.add_argument("--out", type=Optional[str], default=None,
                        help="Directory for sweep.json/csv/png (default: CKPT_DIR/sweep).")
    parser.add_argument("--device", type=str, default="auto",
                        help="auto (cuda when there is one, else cpu), cpu, cuda, cuda:N.")
    parser.add_argument("--wandb_project", type=Optional[str], default=None,
                        help="Also log the table and heatmap to this wandb project.")
    return parser


def split(text: str, field: str) -> list[str]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError(f"sweep.{field}: empty list")
    return items


def main(argv: list[str] | None = None) -> dict:
    cfg = build_parser().parse_args(argv)
    out_dir = writable_dir(cfg.out or Path(cfg.ckpt_path).parent / "sweep")
    lm, task = load_checkpoint(cfg.ckpt_path, cfg.device)
    net = lm.net.eval()
    sites = list(net.sites) if cfg.sites == "all" else split(cfg.sites, "sites") if cfg.sites else [net.default_site]
    try:
        sizes = [int(k) for k in split(cfg.sizes, "sizes")]
    except ValueError as err:
        raise ConfigError(f"sweep.sizes: not a list of integers: {cfg.sizes!r}") from err
    featurizers = split(cfg.featurizers, "featurizers")
    settings = SearchSettings(**{**cfg.settings.as_dict(), "controls": cfg.settings.controls or cfg.controls})
    t0 = time.perf_counter()
    records = run_sweep(net, task, cfg.program, cfg.variables, sites, sizes, featurizers, settings)
    meta = {"ckpt_path": str(cfg.ckpt_path), "program": cfg.program, "variables": records[0]["variables"],
            "sites": sites, "sizes": sizes, "featurizers": featurizers, "settings": asdict(settings),
            "seconds": time.perf_counter() - t0, "task": task.config(), "task_family": task.family}
    paths = write_outputs(records, meta, out_dir)
    if cfg.wandb_project:
        paths["wandb"] = log_to_wandb(cfg.wandb_project, records, meta, paths["png"])
    print(format_grid(records))
    print(f"{len(records)} cells in {meta['seconds']:.1f} s; wrote " + ", ".join(str(p) for p in paths.values()))
    return {**meta, "records": records, "paths": {k: str(v) for k, v in paths.items()}}
