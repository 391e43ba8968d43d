"""``numsym_pl das``: post-hoc alignment of a trained checkpoint.

    numsym_pl das --ckpt_path RUN/checkpoints/last.ckpt --program up_down --variables count \\
        --site state --subspace 16 [--controls] [--settings.max_steps 2000] [--out DIR] [--device auto] [--config das.yaml]
    numsym_pl das --ckpt_path ... --intervention attention_hiding --program ctx_distr

Prints a short table (every IIA with its 95 % interval, RAVEL's cause and isolation;
``--controls`` adds the same alignment on an untrained net; ``--compare up_up.demo_count`` how
often a competing hypothesis's labels differ from this one's) and writes ``das_result.json``
(and the learned rotation, ``rotation.pt``) next to the checkpoint (or into ``--out``).
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser

from numsym_pl.checkpoints import load_checkpoint, pick_device
from numsym_pl.das.alignment import Alignment
from numsym_pl.das.distinguish import distinguishability
from numsym_pl.das.results import align, save_result
from numsym_pl.das.search import SearchSettings
from numsym_pl.programs import get_program
from numsym_pl.preflight import writable_dir


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="numsym_pl das", description="Fit DAS on a trained checkpoint and report IIA.")
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below.")
    parser.add_argument("--ckpt_path", type=str, required=True, help="Checkpoint written by `numsym_pl fit`.")
    parser.add_class_arguments(Alignment, nested_key=None, as_group=True)
    parser.add_class_arguments(SearchSettings, "settings")
    parser.add_argument("--controls", action=ActionYesNo, default=False,
                        help="Also fit the alignment on an untrained net of the same architecture (same as --settings.controls).")
    parser.add_argument("--compare", type=str, default="",
                        help="Competing hypotheses, comma-separated program.variable[+variable] (e.g. "
                             "total_and_first.count_a,up_up.demo_count), whose labels are compared with this alignment's "
                             "on the same pairs: the fraction that differ (distinguishability).")
    parser.add_argument("--out", type=str, default=None, help="Directory for das_result.json (default: the checkpoint's).")
    parser.add_argument("--device", type=str, default="auto",
                        help="Where the net and the rotation run: auto (cuda when there is one, else cpu), cpu, cuda, cuda:N.")
    return parser


def control_rows(controls: dict | None) -> list[tuple]:
    """The controls' rows: random subspaces over seeds, the untrained net."""
    rows, controls = [], controls or {}
    if "random_subspace" in controls:
        r = controls["random_subspace"]
        rows.append((f"random subspaces ({len(r['values'])} seeds), mean ± sd", f"{r['mean']:.3f} ± {r['sd']:.3f}"))
    if "untrained" in controls:
        u, ci = controls["untrained"], controls["untrained"].get("intervals") or {}
        rows += [("untrained net: IIA on effective pairs", (u.get("iia_effective"), ci.get("iia_effective"))),
                 ("untrained net: IIA, all pairs", (u.get("iia"), ci.get("iia"))),
                 ("untrained net: IIA without intervention", (u.get("iia_none"), ci.get("iia_none")))]
    return rows


def cause_rows(scores: dict | None) -> list[tuple]:
    """RAVEL's cause and isolation, intervening on every variable (``all``) and on each alone."""
    rows = []
    for which, s in (scores or {}).items():
        where = "all variables" if which == "all" else f"{which} alone"
        rows += [(f"cause, {where} ({s['n_cause']} pairs)", (s["cause"], s["cause_ci"])),
                 (f"isolation, {where} ({s['n_isolation']} pairs)", (s["isolation"], s["isolation_ci"]))]
    return rows


def format_table(result: dict) -> str:
    """The result as a two-column table; an IIA with its 95 % interval over the test pairs."""
    ci = result.get("intervals") or {}
    iia = lambda field: (result.get(field), ci.get(field))
    featurizer = (result.get("alignment") or {}).get("featurizer")
    rows = [("intervention", result["intervention"]), *([("featurizer", featurizer)] if featurizer else []), ("program", result["program"]), ("variables", "+".join(result["variables"])), ("site", result["site"]),
            ("subspace", result["subspace"]),
            (f"IIA on effective pairs ({result.get('n_effective')} of {result.get('n')})", iia("iia_effective")),
            ("IIA, all held-out pairs", iia("iia")), ("IIA without intervention (floor)", iia("iia_none")),
            ("discriminating (floor below the interval)", result.get("discriminating")),
            ("IIA identity (raw neurons)", iia("iia_identity")), ("IIA full-state swap", iia("iia_full_swap")),
            ("IIA random rotation", iia("iia_random")),
            *[(f"IIA {var} alone", v) for var, v in (result.get("iia_alone") or {}).items()],
            *[(f"learned {k}", v) for k, v in (result.get("featurizer_fit") or {}).items()],
            *control_rows(result.get("controls")),
            *cause_rows(result.get("cause_isolation")),
            *[(f"distinguishable from {d['second']}: labels differ on", (d["differ"], d["interval"]))
              for d in result.get("distinguishability") or []],
            ("steps", result["steps"]), ("seconds", result["seconds"])]

    def fmt(v):
        if isinstance(v, tuple):
            value, bounds = v
            return fmt(value) + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds and value is not None else "")
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {fmt(v)}" for k, v in rows)


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
        get_program(rival.program).check_task(task)
    record, swap = align(lm, task, alignment, settings, cfg.ckpt_path)
    record["device"] = str(device)
    record["distinguishability"] = [distinguishability(task, alignment, r, settings.n_test, settings.seed) for r in rivals]
    print(format_table(record))
    print(f"wrote {save_result(record, out_dir, swap)}")
    return record
