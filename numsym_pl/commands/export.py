"""``numsym_pl export``: a trained checkpoint as safetensors, a config and a model card.

    numsym_pl export --ckpt_path RUN/checkpoints/last.ckpt --out DIR [--das_result RUN/checkpoints/das_result.json]

Writes ``model.safetensors``, ``config.json`` and ``README.md`` into ``DIR`` (with ``--das_result``
the card lists its alignments, and the ``rotation.pt`` beside it becomes ``featurizer.safetensors``
+ ``featurizer.json``); ``numsym_pl.load(DIR)`` reads it back and ``numsym_pl das --ckpt_path DIR``
runs on it (``numsym_pl.bridges.export``).
"""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from numsym_pl.bridges.export import export


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl export",
                            description="Export a trained net as safetensors + config.json + a model card.")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_argument("--ckpt_path", type=str, required=True,
                        help="Checkpoint written by `numsym_pl fit` (or a directory this command wrote).")
    parser.add_argument("--out", type=str, required=True,
                        help="Directory to write the export into (created if needed).")
    parser.add_argument("--das_result", type=str, default=None,
                        help="A das_result.json of `numsym_pl das` on this checkpoint: its alignments go into the "
                             "model card, and the rotation.pt beside it is exported too.")
    return parser


def main(argv: list[str] | None = None) -> Path:
    cfg = build_parser().parse_args(argv)
    out = export(cfg.ckpt_path, cfg.out, cfg.das_result)
    print(f"wrote {out}")
    return out
