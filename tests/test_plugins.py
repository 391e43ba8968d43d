"""A task family, a program and an architecture defined outside the package (tests/plugins/, one
file each) go through fit with the DAS callback, ``das`` with baselines, and a one-cell study
with its report: nothing in numsym_pl names them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numsym_pl.das.pairs import make_pairs
from numsym_pl.errors import ConfigError
from numsym_pl.programs import TokenKinds, get_program, reference_trace
from numsym_pl.tasks import NumericEquivalence
from tests.plugins.count_plus_one import CountPlusOne

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "tests.plugins.plus_one_program.UpDownPlusOne"


def _cli(*args, cwd, timeout=400):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="offline", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "numsym_pl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_plugin_program_traces_like_its_reference_and_predicts_every_answer():
    task, program = CountPlusOne(), get_program(PROGRAM)
    trials, kinds = task.sample("train", 300, np.random.default_rng(0)), TokenKinds.of(task)
    state, pred = program.trace(trials.tokens, kinds, trials.quantities)
    for b in range(0, 300, 7):
        ref_states, ref_pred = reference_trace(program, trials.tokens[b], kinds, {"count": int(trials.quantities["count"][b])})
        assert state["count"][b].tolist() == [s["count"] for s in ref_states] and pred[b].tolist() == ref_pred
    assert (pred[:, :-1][trials.scored] == trials.tokens[:, 1:][trials.scored]).all()
    # a count interchange: the counterfactual answers source-count + 1 (at T) minus what was read
    pairs = make_pairs(task, program, ["count"], 200, seed=1)
    assert pairs.loss_mask.any(1).all()
    with pytest.raises(ConfigError, match="reads"):
        get_program("up_down").check_task(type("NoTrigger", (CountPlusOne,), {"token_roles": {"pad": 0}})())
    assert get_program("up_down").check_task(NumericEquivalence()) is None


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("plugins")
    res = _cli("fit", "--config", str(ROOT / "tests/plugins/plus_one.yaml"), cwd=d)
    assert res.returncode == 0, res.stderr[-3000:]
    return d, res


def test_fit_with_the_das_callback(plugin_run):
    d, res = plugin_run
    assert "[DAS] epoch 14 up_down_plus_one.count/h" in res.stderr + res.stdout
    metrics = (d / "runs/plus_one/version_0/metrics.csv").read_text()
    assert "das/up_down_plus_one.count/h/iia" in metrics and "val/acc_trial_ood" in metrics


def test_das_with_baselines_on_the_plugin_checkpoint(plugin_run, cli):
    d, _ = plugin_run
    ckpt = d / "runs/plus_one/version_0/checkpoints/last.ckpt"
    res = cli("das", "--ckpt_path", str(ckpt), "--program", PROGRAM, "--site", "h", "--subspace", "4",
              "--settings.n_train", "256", "--settings.n_val", "64", "--settings.n_test", "64",
              "--settings.max_steps", "10", "--settings.progress", "false", "--out", str(d / "das"), cwd=d)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((d / "das" / "das_result.json").read_text())
    assert out["program"] == "up_down_plus_one" and out["task_family"] == "CountPlusOne"
    assert all(out[k] is not None for k in ("iia", "iia_identity", "iia_full_swap", "iia_random"))


def test_one_cell_study_and_report(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(f"""
name: plugins
out_dir: {tmp_path / 'out'}
architectures:
  tanh:
    config: {ROOT / 'tests/plugins/plus_one.yaml'}
    alignments: [{{program: {PROGRAM}, variables: [count], site: h, subspace: 4}}]
    fit_args: [--trainer.max_epochs, "10"]
das: {{n_train: 256, n_val: 64, n_test: 64, max_steps: 10, batch_size: 32, progress: false}}
max_parallel: 1
""")
    res = _cli("study", "--config", str(study), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    res = _cli("report", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "up_down_plus_one.count/h" in report and "tanh" in report


def test_a_new_site_on_an_existing_architecture_is_one_hook_call():
    """A subclass that adds a hook point (the final LayerNorm's output) gets states, patched runs
    and a DAS fit through the base class's hook path; the residual sites keep their fast paths."""
    import torch

    from numsym_pl.das import Alignment, SearchSettings, run_alignment
    from numsym_pl.models import Site, TransformerLM

    class WithFinalSite(TransformerLM):
        @property
        def sites(self):
            return {**super().sites, "final": Site(self.d_model, "output of the final LayerNorm")}

        def forward(self, tokens, out_mask=None):
            x = self._run(self.hook("resid.0", self.embed(tokens)), 0, len(self.blocks), None, None)
            x = self.hook("final", self.ln_f(x))  # [B, L, d]
            return self.head(x if out_mask is None else x[out_mask])

    torch.manual_seed(0)
    net, task = WithFinalSite(NumericEquivalence().vocab.size, d_model=16), NumericEquivalence(max_count=6, heldout_counts=(2,),
                                                                                               ood_counts=(7,))
    tokens = torch.as_tensor(task.sample("train", 4, np.random.default_rng(0)).tokens)
    assert net.states(tokens, "final").shape == (*tokens.shape, 16)
    torch.testing.assert_close(net.states(tokens, "resid.1"), net.states_by_hooks(tokens, "resid.1"))
    result, _ = run_alignment(net, task, Alignment("up_down", "count", "final", 4),
                              SearchSettings(n_train=64, n_val=32, n_test=32, max_steps=2, batch_size=16, progress=False))
    assert result.alignment["site"] == "final" and result.iia_identity is not None


def test_a_featurizer_in_one_file_goes_through_das_and_rotation_files(tmp_path):
    import torch

    from numsym_pl.das import Alignment, SearchSettings, SubspaceSwap, run_alignment
    from numsym_pl.das.results import load_rotation, save_result
    from tests.conftest import SMALL_NETS

    path = "tests.plugins.scaled_rotation.ScaledRotation"
    swap = SubspaceSwap(16, 4, featurizer=path)
    with torch.no_grad():
        swap.rotation.log_scale.normal_()
    h, s = torch.randn(5, 16), torch.randn(5, 16)
    torch.testing.assert_close(swap.rotation.decode(swap.rotation.encode(h)), h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(swap(h, h), h, atol=1e-5, rtol=1e-5)  # swapping a state with itself
    z = swap.rotation.encode(swap(h, s))  # the swapped block is the source's, the rest the target's
    torch.testing.assert_close(z[:, :4], swap.rotation.encode(s)[:, :4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(z[:, 4:], swap.rotation.encode(h)[:, 4:], atol=1e-5, rtol=1e-5)
    a = Alignment("up_down", "count", "state", 4, featurizer=path)
    assert a.key == "up_down.count/state~scaled_rotation" and a.identity["featurizer"] == "scaled_rotation"
    result, learned = run_alignment(SMALL_NETS["gru"](), NumericEquivalence(max_count=6, heldout_counts=(2,), ood_counts=(7,)), a,
                                    SearchSettings(n_train=64, n_val=32, n_test=32, max_steps=3, batch_size=16, progress=False))
    assert result.alignment["featurizer"] == "scaled_rotation" and result.iia_random is not None
    save_result({"key": a.key}, tmp_path, learned)
    # the import path, so that a fresh process that never imported the plugin can rebuild it
    assert torch.load(tmp_path / "rotation.pt", weights_only=True)["featurizer"] == path
    again = load_rotation(tmp_path / "rotation.pt")
    torch.testing.assert_close(again(h, s), learned(h, s))
    with pytest.raises(ConfigError, match="featurizer"):
        Alignment("up_down", "count", "state", 4, featurizer="no_such_map")
