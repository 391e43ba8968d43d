import json

import numpy as np
import torch

from numsym_pl.analysis.probe import linear_decodability
from numsym_pl.programs import TokenKinds, get_program
from numsym_pl.tasks import NumericEquivalence


class CountingNet(torch.nn.Module):
    """States that hold the Up-Down count and phase linearly (plus noise), or nothing at all."""

    def __init__(self, task, informative=True):
        super().__init__()
        self.task, self.informative = task, informative
        self.w = torch.nn.Parameter(torch.zeros(1))

    def states(self, tokens, site):
        state, _ = get_program("up_down").trace(tokens.numpy(), TokenKinds.of(self.task),
                                                {"count": np.zeros(len(tokens), int)})
        gen = torch.Generator().manual_seed(0)
        noise = torch.randn(*tokens.shape, 6, generator=gen) * 0.01
        if not self.informative:
            return noise
        signal = torch.stack([torch.as_tensor(state["count"]), torch.as_tensor(state["phase"])], -1).float()
        return torch.cat([signal, noise], -1)


def test_decodability_finds_what_is_there_and_only_that():
    task = NumericEquivalence("same")
    good = linear_decodability(CountingNet(task), task, "state", n_trials=200)
    bad = linear_decodability(CountingNet(task, informative=False), task, "state", n_trials=200)
    assert good["count_r2"] > 0.99 and good["count_exact_acc"] > 0.99 and good["phase_acc"] > 0.99
    assert bad["count_r2"] < 0.2 and bad["phase_acc"] < 0.8


def test_probe_command_writes_json_and_figures(tiny_ckpt, tmp_path, cli):
    res = cli("probe", "--ckpt_path", tiny_ckpt, "--n_trials", "60", "--out", tmp_path, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "probe.json").read_text())
    assert data["sites"][0]["site"] == "state" and (tmp_path / "figures" / "pca_state.png").stat().st_size > 5000


def test_probe_reads_any_programs_variables_and_refuses_a_task_it_does_not_fit():
    import pytest

    from numsym_pl.errors import ConfigError
    from tests.plugins.count_plus_one import CountPlusOne

    task = NumericEquivalence("multi")
    out = linear_decodability(CountingNet(task), task, "state", n_trials=100, program="up_up")
    assert {"demo_count_r2", "resp_count_r2", "phase_acc"} <= set(out) and out["program"] == "up_up"
    with pytest.raises(ConfigError, match="reads"):
        no_trigger = type("NoTrigger", (CountPlusOne,), {"token_roles": {"pad": 0, "eos": 2}})()
        linear_decodability(CountingNet(task), no_trigger, "state", n_trials=10)
