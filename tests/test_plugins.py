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

from numsym_pl.das.interventions import Interchange
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.errors import ConfigError
from numsym_pl.programs import TokenKinds, get_program, reference_trace
from numsym_pl.tasks import NumericEquivalence
from tests.plugins.count_plus_one import CountPlusOne

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = "tests.plugins.plus_one_program.UpDownPlusOne"
FEATURIZER = "tests.plugins.scaled_rotation.ScaledRotation"
INTERVENTION = "tests.plugins.top_components.TopComponents"
TOY_TASK = dict(max_count=6, heldout_counts=(3,), ood_counts=(7,))


def _cli(*args, cwd, timeout=400):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="offline", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "numsym_pl", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_plugin_program_traces_like_its_reference_and_predicts_every_answer():
    task, program = CountPlusOne(), get_program(PROGRAM)
    trials, kinds = task.sample("train", 300, np.random.default_rng(0)), TokenKinds.of(task)
    state, pred = program.trace(trials.tokens, kinds, trials.quantities)
    for b in range(0, 300, 7):
        ref_states, ref_pred = reference_trace(program, trials.tokens[b], kinds,
                                               {"count": int(trials.quantities["count"][b])})
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
    res = cli("das", "--ckpt_path", str(ckpt), "--program", PROGRAM, "--site", "h", "--intervention.subspace", "4",
              "--settings.n_train", "256", "--settings.n_val", "64", "--settings.n_test", "64",
              "--settings.max_steps", "10", "--settings.progress", "false", "--out", str(d / "das"), cwd=d)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads((d / "das" / "das_result.json").read_text())
    assert out["program"] == "up_down_plus_one" and out["task_family"] == "CountPlusOne"
    assert all(out[k] is not None for k in ("iia", "iia_identity", "iia_full_swap", "iia_random"))


def test_one_cell_study_and_report(tmp_path):
    """A plugin program and a plugin featurizer, given by class path, through a study cell (a fit in a
    subprocess, DAS in the cell's process): the cell's record equals the same fit in this process,
    and the DAS callback's rows reach the cell's result."""
    import torch

    from numsym_pl.checkpoints import load_checkpoint
    from numsym_pl.das import Alignment, SearchSettings
    from numsym_pl.das.posthoc import align

    study = tmp_path / "study.yaml"
    study.write_text(f"""
name: plugins
out_dir: {tmp_path / 'out'}
architectures:
  tanh:
    config: {ROOT / 'tests/plugins/plus_one.yaml'}
    alignments: [{{program: {PROGRAM}, variables: [count], site: h,
                   intervention: {{class_path: Interchange, init_args: {{subspace: 4, featurizer: {FEATURIZER}}}}}}}]
    fit_args: [--trainer.max_epochs, "10"]
das: {{n_train: 256, n_val: 64, n_test: 64, max_steps: 10, batch_size: 32, progress: false}}
max_parallel: 2
""")
    res = _cli("study", "--config", str(study), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    res = _cli("report", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    report = (tmp_path / "out" / "report.md").read_text()
    key = "up_down_plus_one.count/h~scaled_rotation"
    assert key in report and "tanh" in report
    (cell,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["epoch"], r["key"]) for r in cell["dynamics"]["das"]] == [(9, "up_down_plus_one.count/h")]
    (record,) = cell["alignments"]
    assert record["key"] == key and record["config"]["program"] == PROGRAM
    assert record["config"]["intervention"]["init_args"]["featurizer"] == FEATURIZER
    lm, task = load_checkpoint(cell["ckpt_path"], torch.device("cpu"))
    settings = SearchSettings(**record["settings"])  # the cell's own DAS seed among them
    assert settings.seed != 0 and (settings.n_train, settings.max_steps) == (256, 10)
    here, _ = align(lm.net, task, Alignment(**record["config"]), settings)  # on one CPU thread, as in the cell
    for field in ("iia", "iia_none", "iia_identity", "iia_full_swap", "iia_random", "history", "per_count"):
        assert json.loads(json.dumps(here[field])) == record[field], field
    # a study cell fits the permuted-value null by default, as the das command does
    null, again = record["controls"]["null"], json.loads(json.dumps(here["controls"]["null"]))
    assert {k: v for k, v in null.items() if k != "seconds"} == {k: v for k, v in again.items() if k != "seconds"}
    assert "iia_null" in (tmp_path / "out" / "results.csv").read_text().splitlines()[0]


def test_plugin_program_and_featurizer_fit_alike_in_the_background_worker(tmp_path):
    """A spawned worker has imported neither plugin: the alignment reaches it as class paths, and its
    rows equal the same fits in the training process."""
    import lightning.pytorch as pl

    from callbacks.das import DASCallback
    from numsym_pl.das import SearchSettings
    from numsym_pl.data import TrialDataModule
    from numsym_pl.lit_module import NextTokenLM
    from numsym_pl.threads import cpu_threads
    from tests.plugins.tanh_rnn import TanhRNNLM

    settings = SearchSettings(n_train=128, n_val=32, n_test=32, max_steps=4, batch_size=32, eval_every=2,
                              progress=False)

    def fit(background):
        cb = DASCallback([{"program": PROGRAM, "variables": ["count"], "site": "h",
                           "intervention": {"class_path": "Interchange",
                                            "init_args": {"subspace": 4, "featurizer": FEATURIZER}}}],
                         every_n_epochs=1, settings=settings, background=background, figure=False)
        pl.seed_everything(0)
        task = CountPlusOne(**TOY_TASK)
        lm = NextTokenLM(TanhRNNLM(task.vocab.size, hidden_size=16), lr=1e-2, warmup_steps=1)
        trainer = pl.Trainer(max_epochs=2, logger=False, callbacks=[cb], enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False,
                             default_root_dir=tmp_path / str(background), deterministic=True)
        with cpu_threads(2):  # a worker only beside a trainer with a thread to spare
            trainer.fit(lm, TrialDataModule(task=task, train_size=128, val_size=32, batch_size=32))
        return cb.history

    away, here = fit(True), fit(False)
    assert [r["epoch"] for r in away] == [0, 1] and away[0]["key"] == "up_down_plus_one.count/h~scaled_rotation"
    numbers = ("iia", "iia_none", "iia_identity", "iia_full_swap", "iia_random", "steps")
    assert [{k: r[k] for k in numbers} for r in away] == [{k: r[k] for k in numbers} for r in here]


def test_an_intervention_in_one_file_runs_from_a_yaml_value(tmp_path, cli, tiny_ckpt):
    """tests/plugins/top_components.py, named by class path: through ``run_alignment`` and ``numsym_pl das``."""
    from numsym_pl.das import Alignment, SearchSettings, run_alignment
    from tests.conftest import SMALL_NETS

    a = Alignment("up_down", "count", "state", {"class_path": INTERVENTION, "init_args": {"subspace": 4}})
    assert a.key == "top_components.up_down.count/state" and a.config()["intervention"]["class_path"] == INTERVENTION
    settings = SearchSettings(n_train=64, n_val=32, n_test=64, max_steps=3, batch_size=16, progress=False)
    result, learned = run_alignment(SMALL_NETS["gru"](), NumericEquivalence(**TOY_TASK), a, settings)
    assert learned is None and result.alignment["intervention"] == "top_components" and result.steps == 0
    # a swap of the whole state's principal axes is the full-state swap: the same pairs, the same score
    whole = Alignment("up_down", "count", "state", {"class_path": INTERVENTION, "init_args": {"subspace": 16}})
    full, _ = run_alignment(SMALL_NETS["gru"](), NumericEquivalence(**TOY_TASK), whole, settings)
    assert abs(full.iia - full.iia_full_swap) <= 1 / 64
    res = cli("das", "--ckpt_path", tiny_ckpt, "--intervention", INTERVENTION, "--intervention.subspace", "2",
              "--settings.n_train", "64", "--settings.n_val", "32", "--settings.n_test", "32",
              "--settings.progress", "false", "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((tmp_path / "das_result.json").read_text())["key"] == "top_components.up_down.count/state"


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
    net, task = (WithFinalSite(NumericEquivalence().vocab.size, d_model=16),
                 NumericEquivalence(max_count=6, heldout_counts=(2,), ood_counts=(7,)))
    tokens = torch.as_tensor(task.sample("train", 4, np.random.default_rng(0)).tokens)
    assert net.states(tokens, "final").shape == (*tokens.shape, 16)
    torch.testing.assert_close(net.states(tokens, "resid.1"), net.states_by_hooks(tokens, "resid.1"))
    result, _ = run_alignment(net, task, Alignment("up_down", "count", "final", Interchange(4)),
                              SearchSettings(n_train=64, n_val=32, n_test=32, max_steps=2, batch_size=16,
                                             progress=False))
    assert result.alignment["site"] == "final" and result.iia_identity is not None


def test_a_featurizer_in_one_file_goes_through_das_and_rotation_files(tmp_path):
    import torch

    from numsym_pl.das import Alignment, SearchSettings, SubspaceSwap, run_alignment
    from numsym_pl.das.posthoc import load_rotation, save_result
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
    a = Alignment("up_down", "count", "state", Interchange(4, featurizer=path))
    assert a.key == "up_down.count/state~scaled_rotation" and a.identity["featurizer"] == "scaled_rotation"
    result, learned = run_alignment(SMALL_NETS["gru"](),
                                    NumericEquivalence(max_count=6, heldout_counts=(2,), ood_counts=(7,)), a,
                                    SearchSettings(n_train=64, n_val=32, n_test=32, max_steps=3, batch_size=16,
                                                   progress=False))
    assert result.alignment["featurizer"] == "scaled_rotation" and result.iia_random is not None
    save_result({"key": a.key}, tmp_path, learned)
    # the import path, so that a fresh process that never imported the plugin can rebuild it
    assert torch.load(tmp_path / "rotation.pt", weights_only=True)["featurizer"] == path
    again = load_rotation(tmp_path / "rotation.pt")
    torch.testing.assert_close(again(h, s), learned(h, s))
    with pytest.raises(ConfigError, match="featurizer"):
        Alignment("up_down", "count", "state", Interchange(4, featurizer="no_such_map"))
