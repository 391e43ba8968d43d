"""``numsym_pl das``: post-hoc alignment of a trained checkpoint.

    numsym_pl das --ckpt_path RUN/checkpoints/last.ckpt --program up_down --variables count \\
        --site state --subspace 16 [--settings.max_steps 2000] [--out DIR] [--config das.yaml]
    numsym_pl das --ckpt_path ... --intervention attention_hiding --program ctx_distr

Prints a short table and writes ``das_result.json`` (and the learned rotation, ``rotation.pt``)
next to the checkpoint (or into ``--out``).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from numsym_pl.checkpoints import load_checkpoint
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.results import align, save_result
from numsym_pl.das.search import SearchSettings
from numsym_pl.preflight import writable_dir


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl das", description="Fit DAS on a trained checkpoint and report IIA.")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by `numsym_pl fit`.")
    parser.add_class_arguments(Alignment, nested_key=None, as_group=True)
    parser.add_class_arguments(SearchSettings, "settings")
    parser.add_argument("--out", type=str, default=None, help="Directory for das_result.json (default: the checkpoint's).")
    return parser


def format_table(result: dict) -> str:
    rows = [("intervention", result["intervention"]), ("program", result["program"]), ("variables", "+".join(result["variables"])), ("site", result["site"]),
            ("subspace", result["subspace"]), ("IIA (held-out pairs)", result["iia"]),
            (f"IIA on effective pairs ({result.get('n_effective')} of {result.get('n')})", result.get("iia_effective")),
            ("IIA without intervention (floor)", result.get("iia_none")),
            ("IIA identity (raw neurons)", result["iia_identity"]), ("IIA full-state swap", result["iia_full_swap"]),
            ("IIA random rotation", result["iia_random"]),
            *[(f"IIA {var} alone", v) for var, v in (result.get("iia_alone") or {}).items()],
            ("steps", result["steps"]), ("seconds", result["seconds"])]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {fmt(v)}" for k, v in rows)


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    cfg = parser.parse_args(argv)
    out_dir = writable_dir(cfg.out or Path(cfg.ckpt_path).parent)
    lm, task = load_checkpoint(cfg.ckpt_path)
    alignment = Alignment(**{f.name: cfg[f.name] for f in fields(Alignment)})
    record, swap = align(lm, task, alignment, SearchSettings(**cfg.settings.as_dict()), cfg.ckpt_path)
    print(format_table(record))
    print(f"wrote {save_result(record, out_dir, swap)}")
    return record
