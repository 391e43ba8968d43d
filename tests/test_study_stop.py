"""A study that is stopped (SIGTERM, as `kill` or `pkill` send) or killed (SIGKILL) takes its
workers and their fits down with it: before, its spawned workers lived on as orphans."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, pytest.param(signal.SIGKILL, marks=pytest.mark.slow)],
                         ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_study_takes_its_workers_and_their_fits_along(tmp_path, sig):
    study = {"name": "long", "out_dir": str(tmp_path / "study"), "seeds": [0, 1], "max_parallel": 2, "analyses": [],
             "architectures": {"gru": {"config": str(ROOT / "configs/gru.yaml"), "alignments": [
                 {"program": "up_down", "variables": ["count"], "site": "state",
                  "intervention": {"class_path": "Interchange", "init_args": {"subspace": 2}}}]}},
             "fit_args": ["--config", str(ROOT / "configs/callbacks/checkpoint_only.yaml"),
                          "--trainer.max_epochs", "500", "--model.net.init_args.hidden_size", "16"]}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(study))
    env = dict(os.environ, WANDB_MODE="offline")
    proc = subprocess.Popen([sys.executable, "-m", "numsym_pl", "study", "--config", str(path)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        # both workers have started their fit: two workers, two fits (and the pool's helper processes)
        while sum("numsym_pl fit" in (tmp_path / f"study/cells/gru-multi-s{s}/fit.log").read_text(errors="ignore")
                  if (tmp_path / f"study/cells/gru-multi-s{s}/fit.log").exists() else 0 for s in (0, 1)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.5)
        time.sleep(3)  # the fits are running
        seen = descendants(proc.pid)
        fits = [p for p in seen if b"fit" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(fits) >= 2, "the two fits are not running"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:  # it says so; a SIGKILL is not caught, the workers see their parent go
            assert proc.returncode == 130, err[-2000:]
            assert "run the same command again to resume" in err
        deadline = time.monotonic() + 15
        while any(alive(p) for p in seen) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [p for p in seen if alive(p)], "processes of the study outlived it"
    finally:
        for p in seen | ({proc.pid} if proc.poll() is None else set()):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
