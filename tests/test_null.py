"""The fitted null of a DAS alignment: the same fit against the program with the intervened
variables' values permuted by a fixed derangement (``das/controls.py``, ``pairs/permuted.py``)."""

import json

import numpy as np
import pytest
import torch

from numsym_pl.das import Alignment, SearchSettings
from numsym_pl.das.controls import has_null
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.pairs.counterfactual import make_pairs
from numsym_pl.das.pairs.permuted import apply_map, derangement, map_record, permuted_values
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.posthoc import align
from numsym_pl.das.record import flat_record
from numsym_pl.programs import PROGRAMS, TokenKinds
from numsym_pl.study.results import CSV_COLUMNS
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS

TASK = NumericEquivalence("multi")
TINY = dict(n_train=128, n_val=48, n_test=64, max_steps=4, eval_every=2, batch_size=32, progress=False,
            random_seeds=2)


def _responses_after(pairs) -> tuple[np.ndarray, np.ndarray]:
    """(which pairs intervene in the response phase, how many R's their continuation emits)."""
    kinds = TokenKinds.of(TASK)
    cf, i_t = pairs.cf.cpu().numpy(), pairs.target_pos.cpu().numpy()
    t = np.arange(cf.shape[1])[None]
    in_response = ((cf == kinds.trigger) & (t <= i_t[:, None])).any(1)
    return in_response, ((cf == kinds.resp) & (t > i_t[:, None])).sum(1)


def test_the_map_is_a_seeded_derangement_of_the_value_range():
    for k in (2, 3, 30):
        perm = derangement(k, np.random.default_rng(k))
        assert sorted(perm) == list(range(k)) and (perm != np.arange(k)).all()
    maps = permuted_values(TASK, PROGRAMS["up_down"], ["count", "phase"], seed=3)
    values, images = maps["count"]
    assert values[0] == 0 and values[-1] >= 20 and sorted(images) == list(values) and (images != values).all()
    assert maps["phase"].tolist() == [[0, 1], [1, 0]]
    again = permuted_values(TASK, PROGRAMS["up_down"], ["count", "phase"], seed=3)
    assert all(np.array_equal(maps[v], again[v]) for v in maps)
    assert not np.array_equal(permuted_values(TASK, PROGRAMS["up_down"], ["count"], seed=4)["count"], maps["count"])
    assert apply_map(np.array([values[0], values[-1] + 5, -1]), maps["count"]).tolist() == \
        [images[0], values[-1] + 5, -1]  # outside the range: itself
    assert map_record(maps)["phase"] == {"values": [0, 1], "images": [1, 0]}


def test_permuted_pairs_carry_the_image_of_the_source_value():
    prog = PROGRAMS["up_down"]
    table = permuted_values(TASK, prog, ["count"], seed=1)["count"]
    plain = make_pairs(TASK, prog, ["count"], 500, seed=2)
    permuted = make_pairs(TASK, prog, ["count"], 500, seed=2, value_map={"count": table})
    for f in ("source", "source_pos", "target_pos", "source_value"):  # the same draws
        assert torch.equal(getattr(plain, f), getattr(permuted, f)), f
    value = plain.source_value.numpy()
    response, n_plain = _responses_after(plain)
    _, n_permuted = _responses_after(permuted)
    # in the response phase Up-Down answers with as many R's as the count written into it
    assert (n_plain[response] == value[response]).all()
    assert (n_permuted[response] == apply_map(value, table)[response]).all()
    # the labels differ wherever the written value does, which is every pair of a derangement
    L = max(plain.cf.shape[1], permuted.cf.shape[1])
    pad = lambda x: torch.nn.functional.pad(x, (0, L - x.shape[1]))
    differs = (pad(plain.cf) != pad(permuted.cf)).any(1).numpy()
    assert differs[response].all() and differs.mean() > 0.5


def test_one_map_for_the_train_validation_and_test_pairs():
    alignment = Alignment("up_down", "count", "state", Interchange(4))
    table = permuted_values(TASK, PROGRAMS["up_down"], ["count"], seed=5)["count"]
    sets = PairSets.make(TASK, alignment, SearchSettings(**TINY), "cpu", value_map={"count": table})
    for name, pairs in sets.items():
        response, n_resp = _responses_after(pairs)
        assert response.any(), name
        expected = apply_map(pairs.source_value.numpy(), table)
        assert (n_resp[response] == expected[response]).all(), name


def test_the_null_runs_by_default_post_hoc_and_is_recorded():
    torch.manual_seed(0)
    net, alignment = SMALL_NETS["gru"](), Alignment("up_down", "count", "state", Interchange(4))
    assert SearchSettings().null and has_null(alignment)
    record, _ = align(net, TASK, alignment, SearchSettings(**TINY))
    null = record["controls"]["null"]
    assert 0 <= null["iia"] <= 1 and null["n"] == 64 and null["steps"] >= 1 and null["intervals"]["iia"]
    values, images = null["map"]["count"]["values"], null["map"]["count"]["images"]
    assert sorted(images) == values and all(a != b for a, b in zip(values, images))
    flat = flat_record(json.loads(json.dumps(record)))
    assert flat["iia_null"] == null["iia"] and flat["iia_null_effective"] == null["iia_effective"]
    assert flat["iia_null_lo"] <= null["iia"] <= flat["iia_null_hi"]
    assert {"iia_null", "iia_null_effective"} <= set(CSV_COLUMNS)
    skipped, _ = align(net, TASK, alignment, SearchSettings(**TINY, null=False))
    assert "null" not in (skipped["controls"] or {})
    rest = lambda r: {k: v for k, v in r.items() if k not in ("controls", "seconds", "settings")}
    assert rest(skipped) == rest(record)  # the null changes nothing else
    assert flat_record(skipped)["iia_null"] is None


def test_the_context_interventions_have_no_null():
    assert not has_null(Alignment("ctx_distr", intervention="attention_hiding"))
    assert not has_null(Alignment("ctx_distr", intervention="context_substitution"))


def test_the_das_command_prints_the_null_beside_iia(tiny_ckpt, tmp_path, cli):
    res = cli("das", "--ckpt_path", tiny_ckpt, "--program", "up_down", "--variables", "count", "--site", "state",
              "--intervention.subspace", "4", *[x for k, v in TINY.items() for x in (f"--settings.{k}", str(v))],
              "--out", tmp_path, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((tmp_path / "das_result.json").read_text())
    assert data["settings"]["null"] is True and data["controls"]["null"]["map"]["count"]
    lines = res.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("IIA, all held-out pairs"))
    assert lines[at + 1].startswith("null (values permuted)") or lines[at + 2].startswith("null (values permuted)")


def test_a_variable_with_one_value_has_no_permutation():
    from numsym_pl.errors import ConfigError

    one = NumericEquivalence("single", min_count=1, max_count=1, heldout_counts=(), ood_counts=())
    maps = permuted_values(one, PROGRAMS["up_down"], ["count", "phase"], seed=0)  # count 0 and 1, phase 0 and 1
    assert all(t.tolist() == [[0, 1], [1, 0]] for t in maps.values())
    with pytest.raises(ConfigError, match="takes one value"):  # one demo token: demo_count is 1 wherever it is read
        permuted_values(one, PROGRAMS["up_up"], ["demo_count"], seed=0)
