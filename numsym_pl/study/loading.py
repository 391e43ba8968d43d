"""A study from its YAML and the command line: the parser of ``numsym_pl study``, the ``quick``
block merged over the rest, the fit arguments after ``--`` (``load_study``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from jsonargparse import ActionConfigFile, ArgumentParser

from numsym_pl.study.spec import Study


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base``: dicts merge key by key, ``null`` removes a key (e.g. a task
    from ``tasks``), anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl study",
                            description="Run a grid of fit + DAS cells and collect the results. "
                                        "--quick merges the study's `quick` settings over the rest: a CPU-sized run.")
    parser.add_argument("--config", action=ActionConfigFile, help="The study's YAML file (configs/studies/).")
    parser.add_class_arguments(Study, nested_key=None, as_group=True)
    parser.add_argument("--dry_run", action="store_true", help="List the cells and exit.")
    parser.add_argument("--resume_from", type=Optional[Path], default=None,
                        help="A directory with this study's study.json and results.json from another run (e.g. "
                        "committed results): its finished cells are taken, the others run.")
    return parser


def load_study(argv: list[str]) -> tuple[Study, bool, Path | None]:
    """The study (quick settings merged if asked), the dry-run flag and ``--resume_from``."""
    argv, last = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    quick = "--quick" in argv  # the flag selects the study's `quick:` block, so it is taken out before parsing
    cfg = build_parser().parse_args([a for a in argv if a != "--quick"])
    dry_run, resume_from = cfg.pop("dry_run"), cfg.pop("resume_from")
    cfg.pop("config", None)
    settings = cfg.as_dict()
    if quick:  # its own directory: a quick cell must never stand in for a full one on resume
        settings = deep_merge(settings, settings.pop("quick") or {})
        settings["out_dir"] = settings.get("out_dir") or f"runs/studies/{settings['name']}_quick"
    settings.pop("quick", None)
    if last:  # the fit arguments after `--`, last on every cell's command
        settings["last_fit_args"] = [*(settings.get("last_fit_args") or []), *last]
    study_parser = ArgumentParser(prog="numsym_pl study")
    study_parser.add_class_arguments(Study, "study")
    study = study_parser.instantiate_classes(study_parser.parse_object({"study": settings})).study
    study.settings = {**settings, "quick": quick}  # recorded as study.json beside the results
    return study, dry_run, resume_from
