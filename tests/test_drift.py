import json

import pytest
import torch

from numsym_pl.analysis.das_table import format_table
from numsym_pl.analysis.drift import drift_section
from numsym_pl.das import Alignment, SearchSettings, run_alignment
from numsym_pl.das.drift import MEASURES, SWAPS, drift, emd, knn_distance
from numsym_pl.das.interventions import Interchange
from numsym_pl.das.natural import target_states
from numsym_pl.das.pairs.sets import PairSets
from numsym_pl.das.record import DRIFT_FIELDS, flat_record
from numsym_pl.study.results import CSV_COLUMNS, csv_rows
from numsym_pl.tasks import NumericEquivalence
from tests.conftest import SMALL_NETS

TINY = SearchSettings(n_train=256, n_val=128, n_test=400, max_steps=6, batch_size=32, eval_every=3, progress=False,
                      random_seeds=1)
BASIS = torch.randn(4, 12, generator=torch.Generator().manual_seed(99))


def _sheet(n: int, seed: int) -> torch.Tensor:
    """Natural states: a curved 2-d sheet in 12 dimensions, with a little noise."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 2, generator=g) * 3
    features = torch.stack([u[:, 0], u[:, 1], torch.sin(2 * u[:, 0]), torch.cos(2 * u[:, 1])], 1)
    return features @ BASIS + 0.01 * torch.randn(n, 12, generator=g)


def test_states_off_the_natural_cloud_drift_and_other_natural_states_do_not():
    natural = _sheet(800, 0)
    d = drift(natural, {"other": _sheet(800, 1), "scaled": 5 * natural, "same": natural.clone()})
    for m in MEASURES:
        assert 0.8 < d["other"][m] < 1.25, (m, d["other"])  # fresh natural states: as natural as natural ones
        assert d["scaled"][m] > 3, (m, d["scaled"])
    assert d["n_reference"] == d["n_held_out"] == 400 and d["natural"]["knn"] > 0
    # a held-out state is never compared with itself: the unpatched states are exactly as natural as natural
    assert all(d["same"][m] == pytest.approx(1.0) for m in MEASURES)


def test_the_measures_by_hand():
    a, b = torch.tensor([[0.0, 0.0], [10.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 3.0], [10.0, 2.0]])
    assert knn_distance(a, b, 2).tolist() == pytest.approx([2.0, (2 + 101 ** 0.5) / 2])
    assert emd(a[:1], b[:1]) == pytest.approx(1.0)
    assert emd(a, torch.tensor([[10.0, 1.0], [0.0, 1.0]])) == pytest.approx(1.0)  # matched, not paired in order


@pytest.mark.parametrize("arch, site", [("gru", "state"), ("rope", "resid.1")])
def test_natural_states_are_the_targets_own_states_at_i_t(arch, site):
    torch.manual_seed(0)
    net = SMALL_NETS[arch]().eval()
    sets = PairSets(net, NumericEquivalence("multi"), Alignment("up_down", "count", site, Interchange(4)), TINY, "cpu")
    p = sets.pairs["test"]
    with torch.no_grad():
        whole = net.states(p.cf, site)[torch.arange(len(p)), p.target_pos]
    torch.testing.assert_close(target_states(net, p, site, batch_size=7), whole)


def test_on_a_net_the_full_swap_is_natural_and_a_scaled_patch_is_not():
    torch.manual_seed(0)
    net = SMALL_NETS["gru"]().eval()
    sets = PairSets(net, NumericEquivalence("multi"), Alignment("up_down", "count", "state", Interchange(4)), TINY,
                    "cpu")
    natural = target_states(net, sets.pairs["train"][:400], "state")
    d = drift(natural, {"full": sets.src["train"][:400], "scaled": 5 * natural})
    for m in MEASURES:
        assert 0.7 < d["full"][m] < 1.4, (m, d["full"])
        assert d["scaled"][m] > 2.5, (m, d["scaled"])


def test_every_interchange_result_carries_its_drift_into_the_record_and_the_csv():
    torch.manual_seed(0)
    alignment = Alignment("up_down", "count", "state", Interchange(4))
    result, _ = run_alignment(SMALL_NETS["gru"](), NumericEquivalence("multi"), alignment, TINY)
    record = result.record(alignment)
    assert set(SWAPS) <= set(record["drift"]) and all(record["drift"][s][m] > 0 for s in SWAPS for m in MEASURES)
    flat = flat_record(json.loads(json.dumps(record)))
    assert flat["drift_knn"] == record["drift"]["das"]["knn"]
    assert flat["drift_emd_full_swap"] == record["drift"]["full"]["emd"]
    assert flat["drift_mahalanobis_random"] == record["drift"]["random"]["mahalanobis"]
    assert set(DRIFT_FIELDS.values()) <= set(CSV_COLUMNS)
    cell = {"cell": "c", "arch": "gru", "task": "multi", "seed": 0, "size": 16, "fit": {}, "alignments": [record]}
    assert csv_rows(cell)[0]["drift_knn_random"] == record["drift"]["random"]["knn"]
    assert all(f in result.row(0, 0, alignment) for f in DRIFT_FIELDS.values())
    assert "drift, learned swap" in format_table({**record, "steps": 6})
    off, _ = run_alignment(SMALL_NETS["gru"](), NumericEquivalence("multi"), alignment,
                           SearchSettings(**{**TINY.__dict__, "drift": False}))
    assert off.drift is None and flat_record(off.record(alignment))["drift_knn"] is None


def test_das_command_writes_the_drift(tiny_ckpt, tmp_path, cli):
    res = cli("das", "--ckpt_path", tiny_ckpt, "--program", "up_down", "--variables", "count", "--site", "state",
              "--intervention.subspace", "4", "--settings.n_train", "128", "--settings.n_val", "64",
              "--settings.n_test", "128", "--settings.max_steps", "3", "--settings.eval_every", "3",
              "--settings.progress", "false", "--settings.random_seeds", "1", "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "das_result.json").read_text())
    assert set(SWAPS) <= set(data["drift"]) and data["drift"]["full"]["knn"] > 0
    assert "drift, full-state swap" in res.stdout


def test_the_report_section_tables_and_draws_the_drift(tmp_path):
    drift_of = lambda learned: {"das": {"knn": learned, "mahalanobis": learned, "emd": learned},
                                "full": {"knn": 1.0, "mahalanobis": 1.0, "emd": 0.9},
                                "random": {"knn": 4.0, "mahalanobis": 5.0, "emd": 3.0}}
    cell = lambda seed, learned, cl=None: {"cell": f"c{seed}", "arch": "gru", "task": "multi", "seed": seed,
                                           "alignments": [{"key": "up_down.count/state", "drift": drift_of(learned),
                                                           "cl": cl}]}
    results = [cell(0, 6.0), cell(1, 8.0), cell(0, 2.0, {"weight": 0.1, "coverage": 0.9}), {"cell": "x", "error": "e"}]
    section = drift_section(results, tmp_path)
    assert section.startswith("## Drift of patched states")
    assert "7.00 ± 1.41" in section and "| 0.1 |" in section  # mean ± sd over seeds; the CL fit in a row of its own
    assert (tmp_path / "figures" / "drift.png").stat().st_size > 0
    assert drift_section([{"cell": "c", "arch": "gru", "task": "multi", "seed": 0, "alignments": [{"key": "k"}]}],
                         tmp_path) is None
