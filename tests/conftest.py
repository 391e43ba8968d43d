import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N: one thread per worker and per process it starts,
    os.environ["OMP_NUM_THREADS"] = "1"  # so that N workers do not oversubscribe N cores
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))

from numsym_pl.models import GRULM, LSTMLM, TransformerLM  # noqa: E402
from numsym_pl.tasks import VOCAB  # noqa: E402

SMALL_NETS = {
    "gru": lambda: GRULM(VOCAB.size, hidden_size=16),
    "lstm": lambda: LSTMLM(VOCAB.size, hidden_size=8),
    "rope": lambda: TransformerLM(VOCAB.size, d_model=16, n_layers=2, n_heads=2, positional="rope"),
    "nope": lambda: TransformerLM(VOCAB.size, d_model=16, n_layers=2, n_heads=1, positional="nope"),
}


@pytest.fixture(params=sorted(SMALL_NETS))
def small_net(request):
    torch.manual_seed(0)
    return SMALL_NETS[request.param]()


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit")
    cwd = os.getcwd()
    os.chdir(d)
    from numsym_pl.cli import main

    try:
        main(["fit", "--config", str(ROOT / "configs" / "gru.yaml"), "--trainer.max_epochs", "1",
              "--trainer.limit_train_batches", "2", "--trainer.enable_progress_bar", "false",
              "--data.val_size", "16", "--data.train_size", "64", "--model.net.init_args.hidden_size", "16"])
    finally:
        os.chdir(cwd)
    return next(d.glob("runs/gru/*/checkpoints/last.ckpt"))




@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args, cwd=...)`` runs ``numsym_pl <args>`` in this process and returns its exit code,
    stdout and stderr the way a subprocess would (an uncaught exception: code 1 and its traceback
    on stderr). For tests of error messages, which would otherwise spend ~6 s per case importing
    lightning in a fresh interpreter; ``test_print_config_and_module_entry_point`` and the fit
    tests still go through ``python -m numsym_pl``."""
    from numsym_pl.cli import main

    def run(*args, cwd) -> CliResult:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except Exception:  # what the interpreter would print before exiting 1
            traceback.print_exc()
            code = 1
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def numsym_pl_side_by_side(*runs: tuple[Path, list, dict], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """``python -m numsym_pl <args>`` for each (cwd, args, env), all at once, in fresh interpreters;
    their results in the order given. Output goes to files in each cwd, not pipes, so that none
    waits on a reader while another is awaited; on a timeout every one still running is killed."""
    started = []
    for i, (cwd, args, env) in enumerate(runs):
        cmd = [sys.executable, "-m", "numsym_pl", *map(str, args)]
        out, err = (Path(cwd) / f".numsym_pl{i}.{name}" for name in ("stdout", "stderr"))
        with open(out, "w") as o, open(err, "w") as e:
            started.append((subprocess.Popen(cmd, cwd=cwd, env=env, stdout=o, stderr=e), cmd, out, err))
    try:
        for proc, *_ in started:
            proc.wait(timeout=timeout)
    finally:
        for proc, *_ in started:
            if proc.poll() is None:  # timed out, or another one did
                proc.kill()
    return [subprocess.CompletedProcess(cmd, p.returncode, out.read_text(), err.read_text())
            for p, cmd, out, err in started]
