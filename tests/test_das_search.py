import json
from pathlib import Path

import pytest
import torch

from numsym_pl.das.interventions import Interchange
from numsym_pl.das import IIA, Alignment, SearchSettings, run_alignment
from numsym_pl.das.iia import exact_rows
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS

ROOT = Path(__file__).resolve().parents[1]
TINY = SearchSettings(n_train=256, n_val=128, n_test=128, max_steps=6, batch_size=32, eval_every=3, progress=False)


def test_iia_metric_is_whole_sequence_and_grouped():
    m = IIA(n_groups=4)
    cf = torch.tensor([[1, 2, 3], [1, 2, 3]])
    mask = torch.tensor([[True, True], [False, True]])
    logits = torch.nn.functional.one_hot(torch.tensor([[2, 0], [0, 3]]), 5).float()  # row 0 wrong at t=1
    m.update(exact_rows(logits, cf, mask), torch.tensor([1, 2]))
    assert m.compute().item() == 0.5 and m.per_group() == {1: 0.0, 2: 1.0}


@pytest.mark.parametrize("arch, site", [("gru", "state"), ("lstm", "state"), ("rope", "resid.1"), ("nope", "resid.2")])
def test_run_alignment_reports_iia_and_baselines(arch, site):
    torch.manual_seed(0)
    net = SMALL_NETS[arch]()
    result, swap = run_alignment(net, NumericEquivalence("multi"), Alignment("up_down", "count", site, Interchange(4)),
                                 TINY)
    d = result.as_dict()
    for key in ("iia", "iia_identity", "iia_full_swap", "iia_random", "iia_val"):
        assert 0.0 <= d[key] <= 1.0
    assert d["steps"] == 6 and len(d["history"]) == 2 and d["per_count"]
    assert all(p.requires_grad for p in net.parameters())  # the caller's net is not frozen by DAS
    assert torch.allclose(swap.weight @ swap.weight.T, torch.eye(net.site_width(site)), atol=1e-4)


@pytest.mark.parametrize("arch, site", [("gru", "state"), ("rope", "resid.1")])
def test_no_grad_passes_score_the_same_in_any_chunking(arch, site, monkeypatch):
    """DAS's source states, clean caches, checks and scoring run in chunks of about EVAL_ROWS_CPU
    rows on the CPU (the random-rotation baselines batched together share one); chunks of 7 rows
    (uneven, one pair per swap) and of 1,000 (one chunk) give the same result to every digit."""
    from numsym_pl.das import settings as search

    assert (search.eval_batch("cpu") == search.EVAL_ROWS_CPU
            and search.eval_batch("cpu", swaps=5) == search.EVAL_ROWS_CPU // 5)
    assert search.eval_batch(torch.device("cuda")) == 1000
    results = []
    for rows in (1000, 7):
        monkeypatch.setattr(search, "EVAL_ROWS_CPU", rows)
        torch.manual_seed(0)
        result, _ = run_alignment(SMALL_NETS[arch](), NumericEquivalence("multi"),
                                  Alignment("up_down", "count", site, Interchange(4)), TINY)
        results.append({k: v for k, v in result.as_dict().items() if k != "seconds"})
    # the learned rotation moves in its last float bits with the chunking of the training states
    # (the rounding of a GEMM depends on its size); every score is unchanged, and the drift of the
    # states it patches, a distance measured in double precision, moves in its eighth digit
    drifts = [r.pop("drift") for r in results]
    assert results[0] == results[1]
    for swap in ("das", "full", "random"):
        assert drifts[0][swap] == pytest.approx(drifts[1][swap], rel=1e-6)


def test_alignment_rejects_unknown_variables():
    with pytest.raises(ValueError, match="^variables:"):
        Alignment("up_up", "count")
    assert Alignment("up_down", "count+phase").variables == ("count", "phase")


SMALL = ["--settings.n_train", "128", "--settings.n_val", "64", "--settings.n_test", "64",
         "--settings.max_steps", "3", "--settings.eval_every", "3", "--settings.progress", "false"]


def test_das_command_writes_result_json_with_intervals_and_controls(tiny_ckpt, tmp_path, cli):
    res = cli("das", "--ckpt_path", tiny_ckpt, "--program", "up_down", "--variables", "count", "--site", "state",
              "--intervention.subspace", "4", "--controls", *SMALL, "--settings.random_seeds", "3",
              "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "das_result.json").read_text())
    for key in ("program", "variables", "site", "subspace", "iia", "iia_identity", "iia_full_swap", "steps", "seconds",
                "iia_effective", "iia_none", "intervals", "discriminating"):
        assert key in data
    lo, hi = data["intervals"]["iia"]
    assert data["variables"] == ["count"] and lo <= data["iia"] <= hi
    assert data["device"] == "cpu"  # --device auto on a machine without CUDA
    random = data["controls"]["random_subspace"]
    assert len(random["values"]) == 3 and random["mean"] == pytest.approx(data["iia_random"])
    untrained = data["controls"]["untrained"]
    assert 0 <= untrained["iia"] <= 1 and untrained["n"] == data["n"] and untrained["intervals"]["iia"]
    for line in ("IIA, all held-out pairs", "IIA on effective pairs", "random subspaces (3 seeds)",
                 "untrained net: IIA, all pairs"):
        assert line in res.stdout, line
    assert f"[{lo:.3f}, {hi:.3f}]" in res.stdout


def test_das_command_compares_competing_hypotheses_and_prints_cause_and_isolation(tiny_ckpt, tmp_path, cli):
    res = cli("das", "--ckpt_path", tiny_ckpt, "--program", "up_down", "--variables", "count+phase", "--site", "state",
              "--intervention.subspace", "2", *SMALL, "--compare", "up_up.demo_count,ctx_distr", "--out", str(tmp_path),
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "das_result.json").read_text())
    assert [(d["first"], d["second"]) for d in data["distinguishability"]] == [
        ("up_down.count+phase", "up_up.demo_count"), ("up_down.count+phase", "ctx_distr.balance")]
    assert all(0 < d["differ"] <= 1 and d["interval"][0] <= d["differ"] <= d["interval"][1]
               for d in data["distinguishability"])
    assert set(data["cause_isolation"]) == {"all", "count", "phase"}
    for line in ("distinguishable from up_up.demo_count: labels differ on", "cause, all variables",
                 "isolation, count alone"):
        assert line in res.stdout, line
    bad = cli("das", "--ckpt_path", tiny_ckpt, *SMALL, "--compare", "two_counters.count_a", cwd=tmp_path)
    assert bad.returncode != 0 and "program: 'two_counters' reads" in bad.stderr and "Traceback" not in bad.stderr


def test_das_command_from_a_config_file(tiny_ckpt, tmp_path, cli):
    cfg = tmp_path / "das.yaml"
    cfg.write_text(f"ckpt_path: {tiny_ckpt}\nprogram: up_up\nvariables: [demo_count]\nsite: state\n"
                   "intervention: {class_path: Interchange, init_args: {subspace: 2}}\n"
                   "settings: {n_train: 64, n_val: 32, n_test: 32, max_steps: 2, eval_every: 2, progress: false}\n")
    res = cli("das", "--config", cfg, "--out", tmp_path, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "das_result.json").read_text())["program"] == "up_up"


@pytest.mark.parametrize("args, needle", [
    (["--site", "resid.1"], "site:"),
    (["--variables", "demo_count"], "variables:"),
    (["--intervention.subspace", "64"], "subspace:"),
    (["--program", "down_up"], "program:"),
])
def test_das_command_bad_input_is_named(tiny_ckpt, tmp_path, args, needle, cli):
    res = cli("das", "--ckpt_path", tiny_ckpt, *SMALL, *args, cwd=tmp_path)
    assert res.returncode != 0 and needle in res.stderr and "Traceback" not in res.stderr


def test_das_command_truncated_checkpoint(tiny_ckpt, tmp_path, cli):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(tiny_ckpt.read_bytes()[:1000])
    res = cli("das", "--ckpt_path", bad, *SMALL, cwd=tmp_path)
    assert res.returncode != 0 and "bad.ckpt" in res.stderr and "Traceback" not in res.stderr


def test_context_interventions_go_through_run_alignment():
    net = SMALL_NETS["rope"]()
    task = NumericEquivalence("multi", p_void=0.2)
    for kind, site in [("attention_hiding", "resid.1"), ("context_substitution", "resid.2")]:
        a = Alignment("ctx_distr", None, site, intervention=kind)
        result, swap = run_alignment(net, task, a, TINY)
        # nothing is fitted: no steps, no validation IIA, no subspace (not a DAS-shaped result with zeros)
        assert swap is None and result.fit is None and result.steps is None and result.iia_val is None
        assert 0 <= result.iia <= 1 and result.as_dict()["subspace"] is None and result.baselines == {}
        assert a.key.startswith(kind) and a.variables == ("balance",)


@pytest.mark.parametrize("args, needle", [
    (["--intervention", "context_substitution", "--program", "ctx_distr"], "p_void:"),
    (["--intervention", "attention_hiding", "--program", "ctx_distr"], "intervention:"),
    (["--intervention", "attention_hiding", "--program", "up_down"], "program:"),
])
def test_das_command_context_intervention_errors_are_named(tiny_ckpt, tmp_path, args, needle, cli):
    res = cli("das", "--ckpt_path", tiny_ckpt, *SMALL, *args, cwd=tmp_path)
    assert res.returncode != 0 and needle in res.stderr and "Traceback" not in res.stderr


def test_checkpoint_records_the_task_and_an_old_flat_one_still_loads(tiny_ckpt, tmp_path):
    """``fit`` stores the task as class_path + init_args; a checkpoint from before tasks were
    objects (numeric-equivalence fields flat in the data module's hyper-parameters) is converted."""
    from numsym_pl.checkpoints import load_checkpoint

    ckpt = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    dm = ckpt["datamodule_hyper_parameters"]
    assert dm["task"]["class_path"].endswith("NumericEquivalence") and dm["task"]["init_args"]["variant"] == "multi"
    _, task = load_checkpoint(tiny_ckpt)
    old = {k: v for k, v in dm.items() if k != "task"}
    old.update(variant="same", min_count=1, max_count=12, heldout_counts=[5], ood_counts=[13, 14], p_void=0.1)
    ckpt["datamodule_hyper_parameters"] = old
    torch.save(ckpt, tmp_path / "old.ckpt")
    _, converted = load_checkpoint(tmp_path / "old.ckpt")
    assert converted == NumericEquivalence("same", 1, 12, (5,), (13, 14), 0.1) and task == NumericEquivalence()
    del old["variant"]
    torch.save(ckpt, tmp_path / "none.ckpt")
    with pytest.raises(Exception, match="records no task"):
        load_checkpoint(tmp_path / "none.ckpt")


@pytest.mark.parametrize("device, needle", [("tpu:0", "is not a device"), ("cuda", "no CUDA device")])
def test_das_command_device_errors_are_named(tiny_ckpt, tmp_path, cli, device, needle):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    res = cli("das", "--ckpt_path", tiny_ckpt, *SMALL, "--device", device, cwd=tmp_path)
    assert res.returncode != 0 and "device:" in res.stderr and needle in res.stderr and "Traceback" not in res.stderr


class _ScriptedValidation:
    """A fit's pair sets whose validation IIA follows a script (a fit that gets worse after its second
    check), recording the featurizer's state at every check."""

    def __init__(self, sets, script):
        self.sets, self.script, self.states = sets, list(script), []
        self.pairs, self.src, self.cache = sets.pairs, sets.src, sets.cache

    def correct_many(self, *args, **kwargs):
        return self.sets.correct_many(*args, **kwargs)

    def scores_many(self, net, swaps, site, name, n=None, precision="32"):
        self.states.append({k: v.clone() for k, v in swaps[0].state_dict().items()})
        iia = self.script[len(self.states) - 1]
        correct = torch.arange(1000)[None].repeat(len(swaps), 1) < round(iia * 1000)
        return correct, torch.full((len(swaps),), 1.0 - iia)


@pytest.mark.parametrize("keep", ["best", "last"])
def test_the_fit_returns_the_featurizer_of_its_best_check(keep):
    """Validation IIA 0.5, 0.9, 0.9, 0.7, 0.6 over five checks: ``best`` keeps the second check's
    featurizer (ties go to the earlier), ``last`` the fifth's; the record says where and why it stopped."""
    from dataclasses import replace

    from numsym_pl.das.interventions.interchange import new_swap
    from numsym_pl.das.pairs.sets import PairSets
    from numsym_pl.das.search import fit_rotation

    torch.manual_seed(0)
    net, a = SMALL_NETS["gru"]().eval().requires_grad_(False), Alignment("up_down", "count", "state", Interchange(4))
    settings = replace(TINY, max_steps=15, eval_every=3, patience=100, keep=keep)
    sets = _ScriptedValidation(PairSets(net, NumericEquivalence("multi"), a, settings, "cpu"),
                               [0.5, 0.9, 0.9, 0.7, 0.6])
    swap = new_swap(net, a, settings, sets)
    fitted = fit_rotation(net, swap, "state", sets, settings)
    assert ([r["iia_val"] for r in fitted.history] == pytest.approx([0.5, 0.9, 0.9, 0.7, 0.6])
            and fitted.stopped == "budget")
    kept = 1 if keep == "best" else 4
    assert fitted.best_step == 3 * (kept + 1) and fitted.steps == 15
    assert not all(torch.equal(v, sets.states[4][k]) for k, v in sets.states[1].items())  # the fit moved on
    for k, v in swap.state_dict().items():
        assert torch.equal(v, sets.states[kept][k]), k


def test_a_plateau_of_the_validation_loss_stops_the_fit_and_says_so():
    from dataclasses import replace

    from numsym_pl.das.interventions.interchange import new_swap
    from numsym_pl.das.pairs.sets import PairSets
    from numsym_pl.das.search import fit_rotation

    torch.manual_seed(0)
    net, a = SMALL_NETS["gru"]().eval().requires_grad_(False), Alignment("up_down", "count", "state", Interchange(4))
    settings = replace(TINY, max_steps=60, eval_every=3, patience=2, plateau_delta=0.01)
    # the loss (1 - IIA) improves by 0.1 twice, then by less than 1 % of itself: stale at checks 4 and 5
    sets = _ScriptedValidation(PairSets(net, NumericEquivalence("multi"), a, settings, "cpu"),
                               [0.5, 0.6, 0.7, 0.701, 0.702, 0.8, 0.9])
    fitted = fit_rotation(net, new_swap(net, a, settings, sets), "state", sets, settings)
    assert fitted.stopped == "plateau" and fitted.steps == 15 and fitted.best_step == 15


def test_the_schedule_warms_up_then_decays_to_zero():
    s = SearchSettings(lr=1e-2, warmup_steps=9, max_steps=109)
    factors = [s.lr_factor(k) for k in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0) and factors[109] == pytest.approx(0.0)
    assert (all(a <= b for a, b in zip(factors[:10], factors[1:10]))
            and all(a >= b for a, b in zip(factors[9:], factors[10:])))
    assert SearchSettings(schedule="constant", warmup_steps=0).lr_factor(500) == 1.0


def test_das_seeds_each_fit_their_own_pairs_and_start_and_summarize_with_a_t_interval():
    from dataclasses import replace

    from scipy import stats

    torch.manual_seed(0)
    net, task, a = (SMALL_NETS["gru"](), NumericEquivalence("multi"),
                    Alignment("up_down", "count", "state", Interchange(4)))
    result, _ = run_alignment(net, task, a, replace(TINY, seeds=3))
    seeds = [r["seed"] for r in result.replicates]
    assert seeds[0] == TINY.seed and len(set(seeds)) == 3
    assert result.replicates[0]["iia"] == result.iia and result.replicates[0]["history"] == result.fit["history"]
    alone, _ = run_alignment(net, task, a, replace(TINY, seed=seeds[2]))  # the third seed fitted alone: its replicate
    assert alone.iia == result.replicates[2]["iia"] and alone.fit["history"] == result.replicates[2]["history"]
    assert result.replicates[1]["history"] != result.replicates[0]["history"]  # its own pairs, start and batches
    values = [r["iia"] for r in result.replicates]
    over = result.over_seeds
    half = stats.t.ppf(0.975, 2) * torch.tensor(values).std().item() / 3 ** 0.5
    assert over["n"] == 3 and over["mean"] == pytest.approx(sum(values) / 3)
    assert over["interval"] == pytest.approx([over["mean"] - half, over["mean"] + half], abs=1e-6)
    record = result.as_dict()
    assert record["replicates"] == result.replicates and record["over_seeds"] == over
