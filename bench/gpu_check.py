"""The GPU paths, each beside the same run on the CPU (run by ``bench/gpu_check.sh``).

    python bench/gpu_check.py [--out runs/gpu_check] [--accelerator gpu] [--smoke] [--sweeps]

On the accelerator (``--accelerator gpu``): the reference GRU (``configs/gru.yaml``, its DAS
callback included) and the RoPE transformer (``configs/transformer_rope.yaml`` with voids, 60
epochs) fitted in ``16-mixed`` and ``bf16-mixed``; ``numsym_pl das`` on the GRU checkpoint with
``--device cuda``; the quick learning-dynamics study with ``-- --trainer.accelerator gpu``; one RoPE
study cell (``bench/gpu_study.yaml``) with its seven alignments and their controls on the GPU
(``study --device cuda``), accelerator side only. On the
CPU, the same commands in ``32-true`` (the reference) with ``--device cpu``, run at the same time
in a second process chain (the CPU side gets the cores the GPU side does not use). Prints one table:
for each run its wall time, the epoch it was trained at (val/acc_trial and held-out >= 0.999), its
final val/acc_trial, the IIA its DAS callback logged last (or the DAS command's IIA and steps, or
the learning-dynamics study's IIA curve), GPU column beside CPU column; writes it to
``<out>/gpu_check.md`` with every run's log beside it. ``--sweeps`` adds ``bench/das_sweep.py`` on
the accelerator (the GRU's 7 sizes alone and batched; the RoPE net's 3 sites x 7 sizes against one
alignment): the batched sweep's speed ratios, a few minutes more.

``--accelerator cpu`` with ``--smoke`` runs the whole script here in a few minutes, the
"accelerator" side in ``bf16-mixed`` on the CPU (Lightning's CPU autocast), with tiny budgets:
the test of the script itself (``tests/test_gpu_check.py``), not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numsym_pl.study.cell import read_metrics  # noqa: E402

QUIET = ["--trainer.enable_progress_bar", "false"]
SMOKE_STUDY = ["--trainer.max_epochs", "2", "--data.train_size", "64", "--data.val_size", "32",
               "--trainer.check_val_every_n_epoch", "1"]
SMOKE_FIT = [*SMOKE_STUDY, "--config", "configs/callbacks/checkpoint_only.yaml"]  # no DAS callback
#: what bench/das_sweep.py prints last, as table rows
SWEEP_FIGURES = {"sweep / one alignment": r"sweep: [\d.]+ s = ([\d.]+x) one alignment",
                 "one by one / one alignment": r"one by one: [\d.]+ s = ([\d.]+x) one alignment",
                 "largest IIA difference (sweep vs alone)": r"largest IIA difference ([\d.]+)",
                 "one alignment alone": r"reference alignment alone \([^)]*\): ([\d.]+ s)"}
SMOKE_STUDY_DAS = ["--das.n_train", "128", "--das.n_val", "64", "--das.n_test", "64", "--das.max_steps", "4",
                   "--das.eval_every", "2"]
SMOKE_DAS = ["--settings.n_train", "128", "--settings.n_val", "64", "--settings.n_test", "64",
             "--settings.max_steps", "4", "--settings.eval_every", "2"]


def plan(out: Path, accelerator: str, smoke: bool, sweeps: bool = False) -> dict[str, list[dict]]:
    """The two chains of runs, ``accel`` (on ``accelerator``) and ``cpu``, in order; each run a dict
    with its ``kind`` (the table's row group), ``prec``, ``name`` and ``numsym_pl`` arguments."""
    device = "cpu" if accelerator == "cpu" else "cuda"
    fit_extra, study_extra, das_extra = (SMOKE_FIT, SMOKE_STUDY, SMOKE_DAS) if smoke else ([], [], [])
    nets = {"gru": ["--config", "configs/gru.yaml"],
            "rope": ["--config", "configs/transformer_rope.yaml", "--config", "configs/tasks/void.yaml",
                     "--trainer.max_epochs", "60"]}
    # DAS runs on one checkpoint, the CPU's reference GRU, on both devices: the same net, so the
    # IIA differs only by where (and in which precision) the rotation was fitted
    reference = out / "fits" / "fit-gru-cpu-32-true" / "run" / "checkpoints" / "last.ckpt"
    mixed = ["bf16-mixed"] if accelerator == "cpu" else ["16-mixed", "bf16-mixed"]  # CPU autocast is bf16 only
    chains = {}
    for side, accel, precisions, dev in (("accel", accelerator, mixed, device), ("cpu", "cpu", ["32-true"], "cpu")):
        runs = []
        for net, args in nets.items():
            for prec in precisions:
                name = f"fit-{net}-{side}-{prec}"
                runs.append({"kind": f"fit {net}", "prec": prec, "name": name,
                             "args": ["fit", *args, *fit_extra, *QUIET, "--trainer.accelerator", accel,
                                      "--trainer.precision", prec, "--trainer.logger.init_args.save_dir",
                                      str(out / "fits"), "--trainer.logger.init_args.name", name,
                                      "--trainer.logger.init_args.version", "run"]})
        runs.append({"kind": "learning dynamics (quick)", "prec": "", "name": f"learning_dynamics-{side}",
                     "args": ["study", "--config", "configs/studies/learning_dynamics.yaml", "--quick",
                              "--out_dir", str(out / f"learning_dynamics-{side}"), "--", "--trainer.accelerator", accel,
                              *study_extra]})
        das = {"kind": "das gru (CPU checkpoint)", "prec": "", "name": f"das-gru-{side}",
               "after": "fit-gru-cpu-32-true",
               "args": ["das", "--ckpt_path", str(reference), "--device", dev, "--program", "up_down",
                        "--variables", "count", "--site", "state", "--subspace", "16", "--settings.progress", "false",
                        *das_extra, "--out", str(out / f"das-gru-{side}")]}
        runs.insert(len(precisions) * 2 if side == "accel" else 1, das)  # the CPU's right after its GRU fit
        chains[side] = runs
    # a study cell whose post-hoc alignments run on the accelerator (study --device), the GPU side only
    chains["accel"].append({"kind": "study cell rope (alignments on the device)", "prec": "",
                            "name": "study-rope-accel",
                            "args": ["study", "--config", "bench/gpu_study.yaml", "--device", device,
                                     "--out_dir", str(out / "study-rope-accel"), *(SMOKE_STUDY_DAS if smoke else []),
                                     "--", "--trainer.accelerator", accelerator, *study_extra]})
    if sweeps:  # a batched sweep against one alignment, on the accelerator, on the CPU's checkpoints
        rope = out / "fits" / "fit-rope-cpu-32-true" / "run" / "checkpoints" / "last.ckpt"
        small = ["--max_steps", "4", "--n_train", "256", "--sizes", "1,2,4,16"] if smoke else []
        chains["accel"] += [
            {"kind": "sweep gru state (7 sizes)", "prec": "", "name": "sweep-gru-accel", "after": "fit-gru-cpu-32-true",
             "script": "bench/das_sweep.py", "args": ["--device", device, "--ckpt", str(reference), *small]},
            {"kind": "sweep rope resid/attn/mlp (7 sizes)", "prec": "", "name": "sweep-rope-accel",
             "after": "fit-rope-cpu-32-true", "script": "bench/das_sweep.py",
             "args": ["--device", device, "--ckpt", str(rope), "--sites", "resid.1,attn.1,mlp.1",
                      "--alone", "reference", "--max_steps", "500", "--n_train", "4000", *small]}]
    return chains


def run_chain(runs: list[dict], out: Path, env: dict, walls: dict, done: dict[str, threading.Event]) -> None:
    """Run ``runs`` one after another, each after the run it waits for (``after``) has finished."""
    for run in runs:
        if "after" in run:
            done[run["after"]].wait()
        t0 = time.perf_counter()
        with open(out / f"{run['name']}.log", "w") as log:
            cmd = [run["script"]] if "script" in run else ["-m", "numsym_pl"]
            code = subprocess.run([sys.executable, *cmd, *run["args"]], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT).returncode
        walls[run["name"]] = (time.perf_counter() - t0, code)
        done[run["name"]].set()
        print(f"  {run['name']}: {'ok' if code == 0 else f'exit {code}'} in {walls[run['name']][0]:.1f} s", flush=True)


def figures(name: str, out: Path) -> dict[str, str]:
    """What a run measured, as printable figures (empty where it wrote nothing)."""
    if name.startswith("fit-"):
        path = out / "fits" / name / "run" / "metrics.csv"
        if not path.is_file():
            return {}
        last, dynamics = read_metrics(path)
        das = dynamics["das"][-1] if dynamics["das"] else None
        trained = last.get("trained/epoch")
        return {"trained at epoch": "not trained" if trained is None else f"{int(trained)}",
                "val/acc_trial": f"{last.get('val/acc_trial', float('nan')):.3f}",
                "DAS callback IIA (last)": "-" if das is None else f"{das['iia']:.3f} (epoch {das['epoch']})"}
    if name.startswith("das-"):
        path = out / name / "das_result.json"
        if not path.is_file():
            return {}
        r = json.loads(path.read_text())
        lo, hi = r["intervals"]["iia"]
        return {"IIA [95 % CI]": f"{r['iia']:.3f} [{lo:.3f}, {hi:.3f}]", "DAS steps": str(r["steps"]),
                "DAS seconds": f"{r['seconds']:.1f}", "device": r.get("device", "?")}
    if name.startswith("sweep-"):
        log = (out / f"{name}.log").read_text() if (out / f"{name}.log").is_file() else ""
        found = {key: re.search(pattern, log) for key, pattern in SWEEP_FIGURES.items()}
        return {key: m.group(1) for key, m in found.items() if m}
    path = out / name / "results.json"
    if not path.is_file():
        return {}
    cell = json.loads(path.read_text())[0]
    if name.startswith("study-"):
        aligned = cell.get("alignments", [])
        untrained = {a["key"]: ((a.get("controls") or {}).get("untrained") or {}).get("iia", float("nan"))
                     for a in aligned}
        return {"val/acc_trial": f"{cell['fit'].get('val/acc_trial', float('nan')):.3f}",
                "alignments' devices": " ".join(sorted({a.get("device", "?") for a in aligned})),
                **{f"IIA {a['key']}": f"{a['iia']:.3f} (untrained net {untrained[a['key']]:.3f})" for a in aligned}}
    curve = [f"{d['iia']:.2f}" for d in cell.get("dynamics", {}).get("das", [])]
    return {"val/acc_trial": f"{cell['fit'].get('val/acc_trial', float('nan')):.3f}", "IIA curve": " ".join(curve)}


def table(chains: dict[str, list[dict]], walls: dict, out: Path, accelerator: str) -> str:
    """One row per (run kind, figure): the accelerator's runs (one per precision) beside the CPU's."""
    rows = [f"| run | figure | {accelerator} (mixed precision) | cpu (32-true) |", "|---|---|---|---|"]
    kinds = list(dict.fromkeys(run["kind"] for runs in chains.values() for run in runs))
    for kind in kinds:
        cols = {}
        for side, runs in chains.items():
            for run in (r for r in runs if r["kind"] == kind):
                wall, code = walls.get(run["name"], (None, None))
                wall = "-" if wall is None else f"{wall:.1f}" + ("" if code == 0 else f" (exit {code})")
                cols.setdefault(side, []).append((run["prec"], {"wall s": wall, **figures(run["name"], out)}))
        for key in dict.fromkeys(k for runs in cols.values() for _, fig in runs for k in fig):
            label = lambda side, prec: f"{prec}: " if prec and side == "accel" else ""  # noqa: E731
            cells = ["; ".join(f"{label(side, prec)}{fig.get(key, '-')}"
                               for prec, fig in cols.get(side, [])) or "not run"
                     for side in ("accel", "cpu")]
            rows.append(f"| {kind} | {key} | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/gpu_check")
    parser.add_argument("--accelerator", default="gpu", choices=["gpu", "cpu"])
    parser.add_argument("--smoke", action="store_true", help="tiny budgets: tests the script, measures nothing")
    parser.add_argument("--sweeps", action="store_true",
                        help="also bench/das_sweep.py on the accelerator: the GRU's 7 sizes (alone and batched) "
                             "and the RoPE net's resid.1, attn.1, mlp.1 x 7 sizes (the sweep's speed ratios; "
                             "a few more minutes)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.accelerator == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: torch sees no CUDA device; on a CPU machine run with --accelerator cpu --smoke",
                  file=sys.stderr)
            return 2
        print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    chains = plan(out, args.accelerator, args.smoke, args.sweeps)
    env = dict(os.environ, WANDB_MODE="offline",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    walls: dict = {}
    done = {run["name"]: threading.Event() for runs in chains.values() for run in runs}
    t0 = time.perf_counter()
    if args.accelerator == "cpu":  # one machine: the CPU side first, then the "accelerator" side
        run_chain(chains["cpu"] + chains["accel"], out, env, walls, done)
    else:  # the CPU side on the cores the GPU side leaves, at the same time
        cpu = threading.Thread(target=run_chain, args=(chains["cpu"], out, env, walls, done))
        cpu.start()
        run_chain(chains["accel"], out, env, walls, done)
        cpu.join()
    when = f"{'smoke, ' if args.smoke else ''}{time.strftime('%Y-%m-%d %H:%M')}, {time.perf_counter() - t0:.0f} s"
    text = f"# gpu_check ({when})\n\n"
    text += table(chains, walls, out, args.accelerator) + "\n"
    (out / "gpu_check.md").write_text(text)
    print(text)
    return 0 if all(code == 0 for _, code in walls.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
