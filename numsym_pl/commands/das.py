"""``numsym_pl das``: post-hoc alignment of a trained checkpoint.

    numsym_pl das --ckpt_path RUN/checkpoints/last.ckpt --program up_down --variables count \\
        --site state [--intervention.subspace 16] [--intervention.featurizer pca_rotation] [--controls] \
        [--settings.max_steps 2000] [--out DIR] [--device auto] [--config das.yaml]
    numsym_pl das --ckpt_path ... --program ctx_distr --intervention attention_hiding
    numsym_pl das --ckpt_path ... --program ctx_distr --intervention AttentionHiding --intervention.layers [0]

Prints a short table (every IIA with its 95 % interval, RAVEL's cause and isolation; beside IIA
the null of a DAS alignment, the same fit against the program with the intervened values permuted,
which ``--settings.null false`` skips; ``--controls`` adds the same alignment on an untrained net;
``--compare up_up.demo_count`` how
often a competing hypothesis's labels differ from this one's) and writes ``das_result.json``
(and the learned rotation, ``rotation.pt``) next to the checkpoint (or into ``--out``).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser, lazy_instance

from numsym_pl.analysis.das_table import format_table
from numsym_pl.checkpoints import load_checkpoint, pick_device
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.pairs.distinguish import distinguishability
from numsym_pl.das.posthoc import align, save_result
from numsym_pl.das.settings import SearchSettings
from numsym_pl.preflight import writable_dir


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl das", description="Fit DAS on a trained checkpoint and report IIA.")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by `numsym_pl fit`.")
    parser.add_class_arguments(Alignment, nested_key=None, as_group=True)
    # the interchange by default, so that its arguments are options at once: --intervention.featurizer pca_rotation
    parser.set_defaults(intervention=lazy_instance(Interchange))
    parser.add_class_arguments(SearchSettings, "settings")
    parser.add_argument("--controls", action=ActionYesNo, default=False,
                        help="Also fit the alignment on an untrained net of the same architecture "
                             "(same as --settings.controls).")
    parser.add_argument("--compare", type=str, default="",
                        help="Competing hypotheses, comma-separated program.variable[+variable] (e.g. "
                             "total_and_first.count_a,up_up.demo_count), whose labels are compared with this "
                             "alignment's on the same pairs: the fraction that differ (distinguishability).")
    parser.add_argument("--out", type=str, default=None,
                        help="Directory for das_result.json (default: the checkpoint's).")
    parser.add_argument("--device", type=str, default="auto",
                        help="Where the net and the rotation run: auto (cuda when there is one, else cpu), cpu, "
                             "cuda, cuda:N.")
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    cfg = parser.parse_args(argv)
    out_dir = writable_dir(cfg.out or Path(cfg.ckpt_path).parent)
    device = pick_device(cfg.device)
    lm, task = load_checkpoint(cfg.ckpt_path, device)
    alignment = Alignment(**{f.name: cfg[f.name] for f in fields(Alignment)})
    settings = SearchSettings(**{**cfg.settings.as_dict(), "controls": cfg.settings.controls or cfg.controls})
    rivals = [Alignment(program=c.split(".", 1)[0], variables=c.split(".", 1)[1] if "." in c else None)
              for c in cfg.compare.split(",") if c]
    for rival in rivals:  # a rival that does not fit the task fails before the fit, by name
        rival.program_object().check_task(task)
    record, swap = align(lm.net, task, alignment, settings, cfg.ckpt_path)
    record["device"] = str(device)
    record["distinguishability"] = [distinguishability(task, alignment, r, settings.n_test, settings.seed)
                                    for r in rivals]
    print(format_table(record))
    print(f"wrote {save_result(record, out_dir, swap)}")
    return record
