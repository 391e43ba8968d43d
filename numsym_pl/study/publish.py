"""A study as a record others can re-derive: its settings, results and report, and every cell's
trained net, so that any alignment can be fitted again without training.

``publish(RUN_DIR, DEST)`` writes

- ``DEST/study.json``, ``results.json.gz`` (gzip-compressed: a 60-cell grid's JSON is megabytes, and
  every reader of ``results.json`` takes it), ``results.csv``: the study's, with each cell's
  ``ckpt_path`` pointing at its net under ``DEST``;
- ``DEST/nets/<cell>/model.safetensors`` + ``config.json``: the cell's final net (what the study
  exported to ``<cell>/net``, or its last checkpoint exported now), weights only, stored in
  ``dtype`` (``config.json``'s ``weights_dtype``; a net loads them into its own float32
  parameters), so that ``numsym_pl das --ckpt_path DEST/nets/<cell>`` runs on it;
- ``DEST/mas/`` when the study has model-alignment results;
- ``DEST/report.md`` and ``figures/`` (``numsym_pl report DEST``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from numsym_pl.bridges.export import CONFIG, FORMAT, MODEL, export, is_export
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import read_json, write_json

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def publish_net(net_dir: Path, out: Path, dtype: str) -> Path:
    """``net_dir``'s weights (floating tensors cast to ``dtype``) and config into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in load_file(net_dir / MODEL).items()}
    save_file(state, out / MODEL, metadata={"format": FORMAT})
    write_json(out / CONFIG, {**read_json(net_dir / CONFIG, "net"), "weights_dtype": dtype}, indent=2)
    return out


def publish(run_dir: str | Path, dest: str | Path, dtype: str = "float16") -> list[str]:
    """Publish the study in ``run_dir`` into ``dest`` (module docstring); the cells whose net it wrote."""
    from numsym_pl.analysis.report import read_study

    if dtype not in DTYPES:
        raise ConfigError(f"dtype: one of {sorted(DTYPES)}, got {dtype!r}")
    run_dir, dest = Path(run_dir), Path(dest)
    results, study = read_study(run_dir)
    if dest.resolve() == run_dir.resolve():
        raise ConfigError(f"dest: {dest} is the study's own directory; publish into another one")
    dest.mkdir(parents=True, exist_ok=True)
    published = []
    for r in results:
        if "error" in r:
            continue
        cell_dir, out = run_dir / "cells" / r["cell"], dest / "nets" / r["cell"]
        net = cell_dir / "net"
        if not is_export(net):
            ckpt = Path(r.get("ckpt_path") or cell_dir / "fit" / "checkpoints" / "last.ckpt")
            if not ckpt.is_file():
                raise ConfigError(f"run_dir: cell {r['cell']} has neither an exported net ({net}) nor its checkpoint "
                                  f"({ckpt})")
            export(ckpt, net)
        publish_net(net, out, dtype)
        r["ckpt_path"] = out.as_posix()
        for a in r.get("alignments", []):
            if "ckpt_path" in a:
                a["ckpt_path"] = out.as_posix()
        published.append(r["cell"])
    write_json(dest / "study.json", study, indent=1)
    write_json(dest / "results.json.gz", results, indent=None)
    (dest / "results.json").unlink(missing_ok=True)  # an earlier publication's, uncompressed
    if (run_dir / "results.csv").is_file():
        shutil.copyfile(run_dir / "results.csv", dest / "results.csv")
    if (run_dir / "mas").is_dir():
        shutil.copytree(run_dir / "mas", dest / "mas", dirs_exist_ok=True)
    return published
