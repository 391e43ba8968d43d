"""``numsym_pl probe``: linear decodability of a program's variables (default Up-Down's ``count``
and ``phase``) at every site of a checkpoint's net, and a PCA figure per site.

    numsym_pl probe --ckpt_path RUN/checkpoints/last.ckpt [--program up_down] [--sites [state]] [--out DIR]

Writes ``probe.json`` and ``figures/pca_<site>.png`` next to the checkpoint (or into ``--out``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from jsonargparse import ActionConfigFile, ArgumentParser

from numsym_pl.analysis.probe import linear_decodability, pca_figure
from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.preflight import writable_dir
from numsym_pl.jsonfile import write_json


def main(argv: list[str] | None = None) -> list[dict]:
    parser = ArgumentParser(prog="numsym_pl probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by `numsym_pl fit`.")
    parser.add_argument("--sites", type=Optional[list[str]], default=None, help="Sites to probe (default: all).")
    parser.add_argument("--program", type=str, default="up_down", help="Program whose variables are probed "
                        "(a registered name or a class path).")
    parser.add_argument("--n_trials", type=int, default=600, help="Trials whose states are probed.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Optional[str], default=None, help="Output directory (default: the checkpoint's).")
    cfg = parser.parse_args(argv)
    out = writable_dir(cfg.out or Path(cfg.ckpt_path).parent)
    lm, task = load_checkpoint(cfg.ckpt_path)
    net = lm.net.eval()
    rows = []
    for site in cfg.sites or list(net.sites):
        net.check_site(site)
        row = linear_decodability(net, task, site, cfg.n_trials, cfg.seed, cfg.program)
        row["pca_figure"] = str(pca_figure(net, task, site, out / "figures" / f"pca_{site}.png", seed=cfg.seed,
                                           program=cfg.program))
        rows.append(row)
        print(f"{site:<10} " + "  ".join(f"{k} {v:.3f}" for k, v in row.items() if k.endswith(("_r2", "_acc"))))
    write_json(out / "probe.json", {"ckpt_path": cfg.ckpt_path, "task": task.config(), "sites": rows}, indent=2)
    print(f"wrote {out / 'probe.json'}")
    return rows
