"""``numsym_pl das``: post-hoc alignment of a trained checkpoint.

    numsym_pl das --ckpt_path RUN/checkpoints/last.ckpt --program up_down --variables count \\
        --site state --subspace 16 [--settings.max_steps 2000] [--out DIR] [--config das.yaml]
    numsym_pl das --ckpt_path ... --intervention attention_hiding --program ctx_distr

Prints a short table and writes ``das_result.json`` (and the learned rotation, ``rotation.pt``)
next to the checkpoint (or into ``--out``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from jsonargparse import ActionConfigFile, ArgumentParser

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.intervention import SubspaceSwap
from numsym_pl.das.run import check_alignment, run_alignment
from numsym_pl.das.search import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import write_json
from numsym_pl.lit_module import NextTokenLM
from numsym_pl.preflight import check_writable, read_checkpoint
from numsym_pl.tasks import TaskFamily, build_task

#: the numeric-equivalence settings that checkpoints written before tasks were objects kept flat
LEGACY_TASK_FIELDS = ("variant", "min_count", "max_count", "heldout_counts", "ood_counts", "p_void")


def task_of(datamodule_hparams: dict, path: str | Path = "") -> TaskFamily:
    """The task a checkpoint's data module was built with (``hparams.task``); a checkpoint written
    before tasks were objects holds the numeric-equivalence fields flat and is converted."""
    config = datamodule_hparams.get("task")
    if config is None and "variant" in datamodule_hparams:
        config = {"class_path": "numsym_pl.tasks.NumericEquivalence",
                  "init_args": {k: datamodule_hparams[k] for k in LEGACY_TASK_FIELDS if k in datamodule_hparams}}
    if not isinstance(config, dict):
        raise ConfigError(f"ckpt_path: {path} records no task; was it written by `numsym_pl fit`?")
    return build_task(config)


def load_checkpoint(path: str | Path) -> tuple[NextTokenLM, TaskFamily]:
    """The trained module and the task it was trained on, from a checkpoint written by ``fit``."""
    ckpt = read_checkpoint(path)
    hp, dm = ckpt.get("hyper_parameters", {}), ckpt.get("datamodule_hyper_parameters")
    if not isinstance(hp.get("net"), dict) or dm is None:
        raise ConfigError(f"ckpt_path: {path} lacks the model/data configuration; was it written by `numsym_pl fit`?")
    lm = NextTokenLM.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    return lm, task_of(dm, path)


def writable_dir(path: str | Path) -> Path:
    """``path``, created if needed, after making sure it can be written (``out:`` error otherwise)."""
    check_writable(path, "out")
    return Path(path)


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
            ("IIA identity (raw neurons)", result["iia_identity"]), ("IIA full-state swap", result["iia_full_swap"]),
            ("IIA random rotation", result["iia_random"]),
            *[(f"IIA {var} alone", v) for var, v in (result.get("iia_alone") or {}).items()],
            ("steps", result["steps"]), ("seconds", result["seconds"])]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {fmt(v)}" for k, v in rows)


def save_result(record: dict, out_dir: Path, swap: SubspaceSwap | None = None) -> Path:
    """Write ``das_result.json`` (and the learned rotation, ``rotation.pt``) atomically into ``out_dir``."""
    if swap is not None:
        torch.save({"width": swap.width, "subspace": swap.subspace, "n_blocks": swap.n_blocks,
                    "orthogonal_map": swap.orthogonal_map, "state_dict": swap.state_dict()}, out_dir / "rotation.pt")
    return write_json(out_dir / "das_result.json", record, indent=2)


def load_rotation(path: str | Path) -> SubspaceSwap:
    """The rotation ``numsym_pl das`` saved as ``rotation.pt``."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    swap = SubspaceSwap(saved["width"], saved["subspace"], saved["n_blocks"], "rotation",
                        orthogonal_map=saved.get("orthogonal_map", "matrix_exp"))
    swap.load_state_dict(saved["state_dict"])
    return swap


def align(lm: NextTokenLM, task: TaskFamily, alignment: Alignment, settings: SearchSettings,
          ckpt_path: str | Path = "") -> tuple[dict, SubspaceSwap | None]:
    """Fit and score ``alignment`` on the trained net: (the JSON record, the learned swap)."""
    check_alignment(lm.net, alignment)
    lm.net.eval()
    result, swap = run_alignment(lm.net, task, alignment, settings)
    record = {**result.as_dict(), "key": alignment.key, "alignment": alignment.identity, "intervention": alignment.intervention,
              "ckpt_path": str(ckpt_path), "task": task.config(), "task_family": task.family, "settings": asdict(settings)}
    return record, swap


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    cfg = parser.parse_args(argv)
    out_dir = writable_dir(cfg.out or Path(cfg.ckpt_path).parent)
    lm, task = load_checkpoint(cfg.ckpt_path)
    alignment = Alignment(cfg.program, cfg.variables, cfg.site, cfg.subspace, cfg.intervention, cfg.layers, cfg.span)
    record, swap = align(lm, task, alignment, SearchSettings(**cfg.settings.as_dict()), cfg.ckpt_path)
    print(format_table(record))
    print(f"wrote {save_result(record, out_dir, swap)}")
    return record
