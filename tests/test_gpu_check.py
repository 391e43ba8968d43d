"""bench/gpu_check.py: what it runs on a GPU machine, and (with -m slow) the whole script on the CPU."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu_check  # noqa: E402


def _args(run, flag):
    return run["args"][run["args"].index(flag) + 1]


def test_the_gpu_plan_runs_both_mixed_precisions_das_on_cuda_and_the_study_on_the_gpu(tmp_path):
    chains = gpu_check.plan(tmp_path, "gpu", smoke=False)
    accel, cpu = chains["accel"], chains["cpu"]
    fits = [r for r in accel if r["args"][0] == "fit"]
    assert sorted((r["kind"], r["prec"]) for r in fits) == [("fit gru", "16-mixed"), ("fit gru", "bf16-mixed"),
                                                           ("fit rope", "16-mixed"), ("fit rope", "bf16-mixed")]
    assert all(_args(r, "--trainer.accelerator") == "gpu" and _args(r, "--trainer.precision") == r["prec"]
               for r in fits)
    assert [(_args(r, "--trainer.accelerator"), _args(r, "--trainer.precision"))
            for r in cpu if r["args"][0] == "fit"] == [
        ("cpu", "32-true"), ("cpu", "32-true")]
    das = {side: next(r for r in runs if r["args"][0] == "das") for side, runs in chains.items()}
    assert _args(das["accel"], "--device") == "cuda" and _args(das["cpu"], "--device") == "cpu"
    # both DAS runs read the checkpoint the CPU's GRU fit writes, and wait for it
    reference = next(r for r in cpu if r["name"] == das["cpu"]["after"])
    written = (Path(_args(reference, "--trainer.logger.init_args.save_dir")) / reference["name"] / "run"
               / "checkpoints" / "last.ckpt")
    assert _args(das["accel"], "--ckpt_path") == _args(das["cpu"], "--ckpt_path") == str(written)
    assert cpu.index(das["cpu"]) > cpu.index(reference)
    study = next(r for r in accel if r["args"][0] == "study")
    assert study["args"][-3:] == ["--", "--trainer.accelerator", "gpu"] and "--quick" in study["args"]
    cell = next(r for r in accel if r["name"] == "study-rope-accel")  # alignments on the GPU too
    assert _args(cell, "--device") == "cuda" and cell["args"][-3:] == ["--", "--trainer.accelerator", "gpu"]
    assert not any(r["name"].startswith("study-") for r in cpu)
    assert len({r["name"] for runs in chains.values() for r in runs}) == sum(map(len, chains.values()))


def test_the_sweeps_run_das_sweep_on_the_accelerator_on_the_cpu_checkpoints(tmp_path):
    chains = gpu_check.plan(tmp_path, "gpu", smoke=False, sweeps=True)
    sweeps = [r for r in chains["accel"] if r.get("script") == "bench/das_sweep.py"]
    assert [r["after"] for r in sweeps] == ["fit-gru-cpu-32-true", "fit-rope-cpu-32-true"]
    assert all(_args(r, "--device") == "cuda" and "fits/fit-" in _args(r, "--ckpt") for r in sweeps)
    assert _args(sweeps[1], "--sites") == "resid.1,attn.1,mlp.1"
    assert not any("script" in r for r in gpu_check.plan(tmp_path, "gpu", smoke=False)["accel"])


def test_without_cuda_the_gpu_check_says_how_to_run_it_here(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "--accelerator cpu --smoke" in capsys.readouterr().err


@pytest.mark.slow  # ~8 min: ten numsym_pl processes and two sweeps
def test_the_whole_script_runs_on_the_cpu_and_fills_its_table(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--accelerator", "cpu", "--smoke",
                          "--sweeps", "--out", str(tmp_path)], capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = [line.split(" | ") for line in (tmp_path / "gpu_check.md").read_text().splitlines()
            if line.startswith("| ") and "---" not in line]
    figures = {(r[0].lstrip("| "), r[1]): (r[2], r[3].rstrip(" |")) for r in rows[1:]}
    for kind in ("fit gru", "fit rope", "das gru (CPU checkpoint)", "learning dynamics (quick)"):
        accel, cpu = figures[(kind, "wall s")]
        assert accel.startswith("bf16-mixed: ") or kind.startswith(("das", "learning")), accel
        assert "exit" not in accel + cpu and "-" not in (accel[-1], cpu[-1])
    assert figures[("das gru (CPU checkpoint)", "device")] == ("cpu", "cpu")
    assert all(v != "-" for v in figures[("fit gru", "val/acc_trial")])
    for kind in ("sweep gru state (7 sizes)", "sweep rope resid/attn/mlp (7 sizes)"):
        assert figures[(kind, "sweep / one alignment")][0].endswith("x")
    cell = "study cell rope (alignments on the device)"
    assert "exit" not in figures[(cell, "wall s")][0] and figures[(cell, "alignments' devices")][0] == "cpu"
    assert figures[(cell, "IIA context_substitution.ctx_distr/resid.1")][0] != "-"
    assert "untrained net" in figures[(cell, "IIA up_down.count/mlp.1")][0]
