import numpy as np
import pytest
import torch

from numsym_pl.analysis.das_table import format_table
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.counterfactual_latents import CounterfactualLatents
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.interventions.swap import SubspaceSwap
from numsym_pl.das.natural import intervened_states, program_states, state_keys
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.pairs.permuted import permuted_values
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.search import fit_rotations
from numsym_pl.das.sweep import run_sweep
from numsym_pl.errors import ConfigError
from numsym_pl.programs import PROGRAMS, TokenKinds
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS

TINY = SearchSettings(n_train=256, n_val=128, n_test=128, max_steps=6, batch_size=32, eval_every=3, progress=False,
                      random_seeds=1, drift=False)
TASK = NumericEquivalence("multi")


@pytest.mark.parametrize("program, variables, permuted", [
    ("up_down", ["count"], False), ("up_down", ["count", "phase"], False), ("up_up", ["demo_count"], False),
    ("ctx_distr", ["balance"], False), ("up_down", ["count"], True)])
def test_the_intervened_state_is_the_one_the_counterfactual_continues_from(program, variables, permuted):
    """Stepping the reference program from the intervened state over the counterfactual's tokens
    after i_t predicts every scored token: it is the state the pair's labels come from (also for
    pairs that write permuted values, the null's)."""
    prog, kinds = PROGRAMS[program], TokenKinds.of(TASK)
    value_map = permuted_values(TASK, prog, variables, seed=5) if permuted else None
    p = make_pairs(TASK, prog, variables, 60, seed=3, subsets="random", value_map=value_map)
    state = intervened_states(prog, variables, p, kinds, value_map)
    if program == "up_down" and variables == ["count"]:
        assert (state["count"] == p.source_value.numpy()).all() != permuted
    count = p.target_quantity.numpy()
    for b in range(len(p)):
        s = {k: np.int64(v[b]) for k, v in state.items()}
        cf, mask = p.cf[b].numpy(), p.loss_mask[b].numpy()
        for t in range(int(p.target_pos[b]), len(cf) - 1):
            if mask[t]:
                assert prog.predict(s, {"count": count[b]}, kinds) == cf[t + 1], (b, t)
            s = prog.step(s, np.int64(cf[t + 1]), kinds)


@pytest.mark.parametrize("target", ["nearest", "mean"])
def test_a_cl_target_is_a_natural_state_of_the_intervened_program_state(target):
    """``mean``: the mean natural state of the program state the pair writes; ``nearest``: the one of
    them nearest to the pair's unpatched state."""
    torch.manual_seed(0)
    net = SMALL_NETS["gru"]().eval()
    alignment = Alignment("up_down", "count", "state", Interchange(4))
    sets = PairSets(net, TASK, alignment, TINY, "cpu")
    cl = CounterfactualLatents.of(net, TASK, alignment, sets, target=target)
    prog, kinds, p = PROGRAMS["up_down"], TokenKinds.of(TASK), sets.pairs["train"]
    natural = torch.cat([sets.src["train"], cl.target]).double()
    keys = np.concatenate([state_keys(prog, program_states(prog, p.source, p.source_pos, kinds)),
                           state_keys(prog, program_states(prog, p.cf, p.target_pos, kinds))])
    wanted = state_keys(prog, intervened_states(prog, alignment.variables, p, kinds))
    assert cl.coverage > 0.8
    for b in range(0, len(p), 17):
        same = torch.as_tensor((keys == wanted[b]).all(1))
        assert bool(cl.found[b]) == bool(same.any())
        if not same.any():
            continue
        members = natural[same]
        if target == "mean":
            torch.testing.assert_close(cl.vectors[b].double(), members.mean(0), atol=1e-5, rtol=1e-5)
        else:
            dist = (members - cl.target[b].double()).norm(dim=1)
            assert (members - cl.vectors[b].double()).abs().amax(1).min() < 1e-6  # one of the group's states
            assert (cl.vectors[b].double() - cl.target[b].double()).norm() <= dist.min() + 1e-5  # the nearest


def test_the_cl_loss_is_zero_on_its_vectors_and_pulls_a_learned_swap_towards_them():
    torch.manual_seed(0)
    vectors = torch.randn(10, 8)
    found = torch.tensor([True] * 8 + [False] * 2)
    cl = CounterfactualLatents(torch.randn(10, 8), vectors, found)
    idx = torch.arange(10)
    full = SubspaceSwap(8, 2, kind="full")
    assert cl.loss(full, idx, vectors).item() == pytest.approx(0.0, abs=1e-6)
    # the pairs without a CL vector add nothing
    assert cl.loss(full, idx, torch.cat([vectors[:8], 100 * torch.randn(2, 8)])).item() == pytest.approx(0.0, abs=1e-6)
    learned = SubspaceSwap(8, 2, seed=1)
    loss = cl.loss(learned, idx, torch.randn(10, 8))
    loss.backward()
    assert loss.item() > 0 and any(p.grad is not None and p.grad.abs().sum() > 0 for p in learned.parameters())


def test_a_fit_with_the_cl_loss_records_it_and_one_without_does_not():
    alignment = Alignment("up_down", "count", "state", Interchange(4))
    torch.manual_seed(0)
    with_cl, _ = run_alignment(SMALL_NETS["gru"](), TASK, alignment, SearchSettings(**{**TINY.__dict__,
                                                                                         "cl_weight": 0.5}))
    torch.manual_seed(0)
    plain, _ = run_alignment(SMALL_NETS["gru"](), TASK, alignment, TINY)
    record = with_cl.as_dict()
    assert record["cl"]["weight"] == 0.5 and record["cl"]["target"] == "nearest"
    assert 0.8 < record["cl"]["coverage"] <= 1.0
    row = next(line for line in format_table(with_cl.record(alignment)).splitlines()
               if line.startswith("counterfactual-latent loss"))
    assert row.split()[-3:-1] == ["0.5", "(nearest),"]
    assert all(row["loss_cl"] > 0 for row in record["history"])
    assert plain.as_dict()["cl"] is None and all("loss_cl" not in row for row in plain.as_dict()["history"])
    # the loss changed the fit: the featurizers differ
    assert [r["loss"] for r in record["history"]] != [r["loss"] for r in plain.as_dict()["history"]]


def test_a_sweep_fits_with_the_cl_loss_too():
    torch.manual_seed(0)
    records = run_sweep(SMALL_NETS["gru"](), TASK, "up_down", "count", ["state"], sizes=[2],
                        settings=SearchSettings(**{**TINY.__dict__, "cl_weight": 0.5}))
    assert records[0]["cl"]["weight"] == 0.5 and "loss_cl" in records[0]["history"][0]


def test_bad_cl_settings_are_named():
    with pytest.raises(ConfigError, match="^settings.cl_weight: must be >= 0"):
        SearchSettings(cl_weight=-0.1)
    with pytest.raises(ConfigError, match="^settings.cl_target: 'nearest' or 'mean'"):
        SearchSettings(cl_target="median")
    with pytest.raises(ConfigError, match="^settings.cl_weight: .* needs positions: 1"):
        run_alignment(SMALL_NETS["gru"](), TASK, Alignment("up_down", "count", "state", Interchange(4, positions=2)),
                      SearchSettings(**{**TINY.__dict__, "cl_weight": 0.5}))
    net = SMALL_NETS["gru"]().eval().requires_grad_(False)
    alignment = Alignment("up_down", "count", "state", Interchange(4))
    sets = PairSets(net, TASK, alignment, TINY, "cpu")
    with pytest.raises(ValueError, match="needs the training pairs' CL vectors"):
        fit_rotations(net, [SubspaceSwap(16, 4)], "state", sets, SearchSettings(**{**TINY.__dict__, "cl_weight": 1.0}))
