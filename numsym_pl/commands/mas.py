"""``numsym_pl mas``: model alignment search between trained nets of one task.

    numsym_pl mas --net_a CKPT_A --net_b CKPT_B --program up_down --variables count \\
        [--site_a state --site_b state] [--subspace 16] [--settings.max_steps 1000] [--out DIR]
    numsym_pl mas --nets CKPT1 CKPT2 CKPT3 --out DIR [--labels gru0 gru1 lstm0] [--sites state state state]

A pair: both nets' featurizers are fitted jointly (across the nets and within each) and every
direction is scored on held-out pairs; prints a table (IIA A->B, B->A, A->A, B->B with 95 %
intervals, floor, effective pairs and the permuted-value null; linear CKA and RSA) and writes
``mas_result.json`` into ``--out`` (default: ``mas_<B's label>/`` beside net A's checkpoint).
Several nets (``--nets``): every pair is aligned; writes ``mas_matrix.json`` (rewritten after each
pair) and the figure ``mas_matrix.png`` (cross-model IIA beside CKA and RSA) into ``--out``; run
again into the same ``--out``, it takes the pairs already there whose nets (label and path) and
settings match.
A checkpoint or a directory ``numsym_pl export`` wrote both load.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Optional

from jsonargparse import ActionConfigFile, ArgumentParser

from numsym_pl.analysis.mas_section import FIGURE_FILE, MATRIX_FILE, RESULT_FILE, format_mas, mas_figure
from numsym_pl.checkpoints import load_checkpoint, pick_device
from numsym_pl.das.model_alignment.matrix import align_matrix, matrix_record
from numsym_pl.das.model_alignment.run import ModelAlignment, align_models, check_same_task, check_settings
from numsym_pl.das.posthoc import fit_threads
from numsym_pl.das.settings import SearchSettings
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import read_json, write_json
from numsym_pl.preflight import writable_dir


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl mas",
                            description="Model alignment search: is a program variable in the same causal role in "
                                        "two trained nets?")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_argument("--net_a", type=Optional[str], default=None,
                        help="Net A: a checkpoint written by `numsym_pl fit`, or a `numsym_pl export` directory.")
    parser.add_argument("--net_b", type=Optional[str], default=None, help="Net B (as --net_a), trained on A's task.")
    parser.add_argument("--nets", type=str, nargs="+", default=None,
                        help="Several nets of one task (instead of --net_a/--net_b): every pair is aligned.")
    parser.add_argument("--labels", type=str, nargs="+", default=None,
                        help="The nets' names in results and figures (default: from their paths).")
    parser.add_argument("--sites", type=str, nargs="+", default=None,
                        help="With --nets: each net's site (default: each net's default site).")
    parser.add_class_arguments(ModelAlignment, nested_key=None, as_group=True)
    parser.add_class_arguments(SearchSettings, "settings")
    parser.add_argument("--out", type=Optional[str], default=None,
                        help="Directory for the results (a pair: default mas_<B's label>/ beside net A's checkpoint; "
                             "required with --nets).")
    parser.add_argument("--device", type=str, default="auto",
                        help="Where the nets and featurizers run: auto (cuda when there is one, else cpu), cpu, "
                             "cuda, cuda:N.")
    return parser


def default_label(path: str) -> str:
    """A net's name from its path: the run directory (``.../<run>/checkpoints/last.ckpt`` or
    ``.../<run>/last.ckpt`` -> ``<run>``), with the checkpoint's stem unless it is ``last``."""
    p = Path(path)
    if p.is_dir():
        return p.name
    run = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run.name if p.stem == "last" else f"{run.name}:{p.stem}"


def labels_of(paths: list[str], given: list[str] | None) -> list[str]:
    if given:
        if len(given) != len(paths):
            raise ConfigError(f"labels: one per net, got {len(given)} for {len(paths)} nets")
        if len(set(given)) != len(given):
            raise ConfigError(f"labels: the nets need distinct labels, got {given}")
        return list(given)
    labels = [default_label(p) for p in paths]
    return [label if labels.count(label) == 1 else f"{label}#{i}" for i, label in enumerate(labels)]


def load(path: str, field: str, device):
    """(net, task) of a checkpoint or export directory; a bad path is named by ``field``."""
    if not Path(path).exists():
        raise ConfigError(f"{field}: no checkpoint file or export directory at {path}")
    try:
        lm, task = load_checkpoint(path, device)
    except ConfigError as err:  # named after the das command's option; say which of the nets it is
        raise ConfigError(str(err).replace("ckpt_path", field, 1)) from err
    return lm.net.eval(), task


def _mode(cfg) -> list[tuple[str, str]]:
    """The nets to load, as (field, path): the pair, or every one of ``--nets``."""
    pair = [cfg.net_a, cfg.net_b]
    if cfg.nets is not None and any(pair):
        raise ConfigError("nets: give either --net_a and --net_b (one pair) or --nets (every pair), not both")
    if cfg.nets is not None:
        if len(cfg.nets) < 2:
            raise ConfigError(f"nets: at least two nets, got {len(cfg.nets)}")
        if cfg.site_a or cfg.site_b:
            raise ConfigError("site_a: with --nets, give each net's site by --sites")
        if cfg.out is None:
            raise ConfigError("out: --nets writes mas_matrix.json and mas_matrix.png; say where with --out")
        return [(f"nets[{i}]", p) for i, p in enumerate(cfg.nets)]
    if not all(pair):
        missing = "net_a" if not cfg.net_a else "net_b"
        raise ConfigError(f"{missing}: give --net_a and --net_b (one pair), or --nets (every pair of several)")
    if cfg.sites is not None:
        raise ConfigError("sites: for --nets; a pair takes --site_a and --site_b")
    return [("net_a", cfg.net_a), ("net_b", cfg.net_b)]


def main(argv: list[str] | None = None) -> dict:
    cfg = build_parser().parse_args(argv)
    nets_given = _mode(cfg)
    paths = [p for _, p in nets_given]
    labels = labels_of(paths, cfg.labels)
    spec = ModelAlignment(**{f.name: cfg[f.name] for f in fields(ModelAlignment)})
    settings = SearchSettings(**cfg.settings.as_dict())
    check_settings(settings)
    out_dir = writable_dir(cfg.out or Path(cfg.net_a).parent / f"mas_{labels[1]}")
    device = pick_device(cfg.device)
    loaded = [load(path, field, device) for field, path in nets_given]
    for (field, _), (_, task) in zip(nets_given[1:], loaded[1:]):
        check_same_task(loaded[0][1], task, (nets_given[0][0], field))
    nets, task = [net for net, _ in loaded], loaded[0][1]
    sources = {label: str(path) for label, path in zip(labels, paths)}
    with fit_threads(nets[0]):
        if cfg.nets is None:
            record = align_models(nets[0], nets[1], task, spec, settings, labels)
            record.update(ckpt_paths=sources, device=str(device))
            print(format_mas(record))
            print(f"wrote {write_json(out_dir / RESULT_FILE, record, indent=2)}")
            return record
        if cfg.sites is not None and len(cfg.sites) != len(nets):
            raise ConfigError(f"sites: one per net, got {len(cfg.sites)} for {len(nets)} nets")
        done = []

        def write(record: dict) -> None:  # the matrix so far, after every pair
            done.append(record)
            print(format_mas(record), flush=True)
            write_json(out_dir / MATRIX_FILE, {**matrix_record(labels, done), "ckpt_paths": sources,
                                               "device": str(device)}, indent=2)

        earlier = read_json(out_dir / MATRIX_FILE, "out") if (out_dir / MATRIX_FILE).is_file() else {}
        paths = earlier.get("ckpt_paths") or {}
        same_net = lambda label: label in sources and paths.get(label) == sources[label]  # noqa: E731
        previous = [r for r in earlier.get("pairs") or []
                    if all(same_net((r.get("nets") or {}).get(role, {}).get("label")) for role in ("a", "b"))]
        matrix = align_matrix(nets, labels, task, spec, settings, cfg.sites, done=write, previous=previous)
    matrix.update(ckpt_paths=sources, device=str(device))
    write_json(out_dir / MATRIX_FILE, matrix, indent=2)
    print(f"wrote {out_dir / MATRIX_FILE} and {mas_figure(matrix, out_dir / FIGURE_FILE)}")
    return matrix
