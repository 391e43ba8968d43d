"""How fast DAS converges: the reference alignments fitted with the constant-rate settings
(``SearchSettings.CONSTANT_RATE``: Adam 1e-3 from a random rotation, up to 2,000 steps, the last
featurizer kept), the defaults (warm-up and cosine decay, the best featurizer kept, started at the
principal axes of the site's states), the defaults from a random rotation (``random_start``), and a
long reference (Adam 1e-3 from a random rotation, up to 8,000 steps, high patience), over several
DAS seeds each.

    python bench/das_convergence.py [--seeds 3] [--only gru_single] [--workers 2]

The reference nets are trained once (``numsym_pl fit``, stopped once trained) into
``runs/bench/das_convergence/nets`` and every fit's record is kept in ``.../fits``, so a killed
run resumes where it stopped. Every fit scores its test pairs at every check (``monitor_test``,
never used to choose or stop). Per alignment it prints the converged IIA of each DAS seed (its long
reference's test IIA: a seed's fits share their pairs), and per setting the steps (and seconds)
after which the test IIA of the featurizer the fit would return stays within 0.01 of its seed's
converged IIA, and the final test IIA; the ratio is against the long reference's own steps (the
same rate, 1e-3, without a budget). ``--summarize`` prints the table from the fits kept so far.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "runs" / "bench" / "das_convergence"
#: net -> (fit configs, program, variables, site)
NETS = {
    "gru_multi": (["configs/gru.yaml"], "up_down", "count", "state"),
    "gru_single": (["configs/gru.yaml", "configs/tasks/single_object.yaml"], "up_down", "count", "state"),
    "lstm_same": (["configs/lstm.yaml", "configs/tasks/same_object.yaml"], "up_down", "count", "state"),
    "lstm_multi": (["configs/lstm.yaml"], "up_up", "demo_count", "state"),
    "rope_multi": (["configs/transformer_rope.yaml", "configs/tasks/void.yaml"], "up_down", "count", "resid.1"),
}
WITHIN = 0.01


def settings_of(name: str, seed: int):
    from numsym_pl.das import SearchSettings

    base = SearchSettings(progress=False, monitor_test=True, seed=seed)
    return {"constant_rate": replace(base, **SearchSettings.CONSTANT_RATE),
            "random_start": replace(base, start="random"), "defaults": base,
            "long_reference": replace(base, lr=1e-3, schedule="constant", warmup_steps=0, max_steps=8000,
                                      eval_every=100, patience=20, plateau_metric="loss", plateau_delta=0.001,
                                      start="random")}[name]


SETTINGS = ("constant_rate", "random_start", "defaults", "long_reference")


def train(name: str) -> Path:
    """The reference net's checkpoint, trained here unless it exists."""
    ckpt = OUT / "nets" / name / "last.ckpt"
    if ckpt.exists():
        return ckpt
    configs = [a for c in NETS[name][0] for a in ("--config", c)]
    cmd = [sys.executable, "-m", "numsym_pl", "fit", *configs, "--trainer.callbacks", "[]", "--trainer.logger", "false",
           "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(ckpt.parent),
           "--checkpoint.dirpath", str(ckpt.parent)]
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="offline")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    with open(ckpt.parent / "fit.log", "w") as log:
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return ckpt


def fit_one(net_name: str, setting: str, seed: int) -> dict:
    """One fit's record (cached in ``fits/``): its history, final test IIA, steps, seconds."""
    path = OUT / "fits" / f"{net_name}-{setting}-s{seed}.json"
    if path.exists():
        return json.loads(path.read_text())
    import torch

    from numsym_pl.checkpoints import load_checkpoint
    from numsym_pl.das import Alignment, Interchange, run_alignment

    torch.set_num_threads(1)
    _, program, variables, site = NETS[net_name]
    lm, task = load_checkpoint(OUT / "nets" / net_name / "last.ckpt", torch.device("cpu"))
    alignment = Alignment(program, variables, site, Interchange(16))
    settings = replace(settings_of(setting, seed), baselines=False)
    t0 = time.perf_counter()
    result, _ = run_alignment(lm.net, task, alignment, settings)
    record = {"net": net_name, "setting": setting, "seed": seed, "key": alignment.key, "iia": result.iia,
              "steps": result.fit["steps"], "stopped": result.fit["stopped"], "best_step": result.fit["best_step"],
              "seconds": time.perf_counter() - t0, "history": result.fit["history"], "keep": settings.keep,
              "settings": asdict(settings)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def returned_curve(record: dict) -> list[tuple[int, float]]:
    """(step, test IIA of the featurizer the fit would return if it stopped at that check)."""
    out, best, kept = [], -1.0, None
    for row in record["history"]:
        if record["keep"] == "last" or row["iia_val"] > best:
            best, kept = row["iia_val"], row["iia_test"]
        out.append((row["step"], kept))
    return out


def steps_within(record: dict, target: float) -> int | None:
    """The first check from which the returned featurizer's test IIA stays within ``WITHIN`` of
    ``target`` to the end of the fit (None: it never settles there)."""
    settled = None
    for step, value in returned_curve(record):
        settled = (settled or step) if abs(value - target) <= WITHIN else None
    return settled


def summarize(records: list[dict]) -> tuple[str, dict]:
    """Per alignment and setting: the steps after which each seed stays within ``WITHIN`` of the long
    reference of the same DAS seed (the same pairs, so the comparison is paired), their median, its
    seconds and ratio to the long reference's own median, and the final test IIA per seed."""
    lines, table = [], {}
    for net_name in NETS:
        mine = [r for r in records if r["net"] == net_name]
        long = {r["seed"]: r["iia"] for r in mine if r["setting"] == "long_reference"}
        if not long:
            continue
        table[net_name] = {"converged": long, "settings": {}}
        lines.append(f"\n{net_name} {mine[0]['key']}: converged IIA per DAS seed (long reference) "
                     + ", ".join(f"{long[s]:.3f}" for s in sorted(long)) + f", mean {np.mean(list(long.values())):.3f}")
        lines.append(f"  {'setting':<15} {'steps within 0.01 (per seed)':<30} {'median':>7} {'s':>5} {'ratio':>6} "
                     f"{'final test IIA (per seed)':<26} stopped")
        ref = [steps_within(r, long[r["seed"]]) for r in mine if r["setting"] == "long_reference"]
        ref_median = float(np.median(ref)) if all(s is not None for s in ref) else None
        for setting in SETTINGS:
            rs = sorted((r for r in mine if r["setting"] == setting and r["seed"] in long), key=lambda r: r["seed"])
            if not rs:
                continue
            within = [steps_within(r, long[r["seed"]]) for r in rs]
            seconds = [r["seconds"] * s / r["steps"] if s is not None else None for r, s in zip(rs, within)]
            median = float(np.median(within)) if all(s is not None for s in within) else None
            ratio = median / ref_median if median is not None and ref_median else None
            sec = float(np.median(seconds)) if median is not None else None
            fmt = lambda v: "never" if v is None else f"{v:.0f}"
            finals = ", ".join(f"{r['iia']:.3f}" for r in rs)
            lines.append(f"  {setting:<15} {', '.join(fmt(s) for s in within):<30} {fmt(median):>7} "
                         f"{'-' if sec is None else f'{sec:.0f}':>5} {'-' if ratio is None else f'{ratio:.2f}':>6} "
                         f"{finals:<26} {', '.join(r['stopped'] for r in rs)}")
            table[net_name]["settings"][setting] = {"steps_within": within, "median_steps": median,
                                                    "median_seconds": sec, "ratio_to_long": ratio,
                                                    "final_iia": [r["iia"] for r in rs],
                                                    "stopped": [r["stopped"] for r in rs],
                                                    "best_step": [r["best_step"] for r in rs],
                                                    "steps": [r["steps"] for r in rs]}
    return "\n".join(lines), table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(NETS), choices=list(NETS))
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--workers", type=int, default=2, help="fits at once, one CPU thread each")
    parser.add_argument("--out", type=Path, default=None, help="also write the table and every record here (JSON)")
    parser.add_argument("--summarize", action="store_true", help="only print the table of the fits kept so far")
    args = parser.parse_args()
    if args.summarize:
        print(summarize([json.loads(p.read_text()) for p in sorted((OUT / "fits").glob("*.json"))])[0])
        return
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(train, args.only))  # the nets first: every fit needs one
        jobs = [(n, s, seed) for n in args.only for seed in range(args.seeds) for s in args.settings]
        records = []
        for record in pool.map(fit_one, *zip(*jobs)):
            records.append(record)
            print(f"  {record['net']} {record['setting']} seed {record['seed']}: IIA {record['iia']:.3f}, "
                  f"{record['steps']} steps ({record['stopped']}), {record['seconds']:.0f} s", flush=True)
    text, table = summarize(records)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"table": table, "records": [{k: v for k, v in r.items() if k != "history"}
                                                                     for r in records]}, indent=1))


if __name__ == "__main__":
    main()
