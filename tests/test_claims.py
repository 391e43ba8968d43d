"""Declared claims and their verdicts: seed-level t-intervals, calibrated levels, Holm, and the
properties that make an intervention non-discriminating."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from numsym_pl.analysis.claims import parse_claims, read_claims
from numsym_pl.analysis.summary import TRAINED, interval_of
from numsym_pl.analysis.verdicts import HIGH, holm, judge, one_sided_p
from numsym_pl.das.interventions.attention_hiding import hiding_attn_mask, hiding_pairs
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import json_path, read_json
from numsym_pl.models.transformer import TransformerLM
from numsym_pl.programs import PROGRAMS
from numsym_pl.tasks import VOCAB, NumericEquivalence
from numsym_pl.trained_at import TrainedAt

ROOT = Path(__file__).resolve().parents[1]


def _record(program, variables, iia, floor=0.09, n=1000, **extra):
    return {"key": f"{program}.{'+'.join(variables)}/state", "program": program, "variables": variables,
            "site": "state", "intervention": "das", "iia": iia, "n": n, "iia_none": floor,
            "iia_effective": iia - 0.01, "n_effective": int(0.9 * n), **extra}


def _cell(arch, task, seed, alignments, acc=1.0, differ=0.7):
    return {"cell": f"{arch}-{task}-s{seed}", "arch": arch, "task": task, "seed": seed, "size": None,
            "fit": {"val/acc_trial": acc}, "alignments": alignments,
            "distinguishability": [{"first": "up_down.count", "second": "up_up.demo_count", "differ": differ,
                                    "n": 1000, "interval": [differ - 0.03, differ + 0.03]}]}


CLAIMS = parse_claims({"margin": 0.1, "claims": [
    {"id": "counts", "wording": "w", "arch": ["gru"], "task": ["multi"], "predicts": "high",
     "alignments": [{"program": "up_down", "variables": ["count"]}], "rival": {"program": "up_up",
                                                                              "variables": ["demo_count"]}},
    {"id": "not_up_up", "wording": "w", "arch": ["gru", "lstm"], "task": ["multi"], "predicts": "low",
     "alignments": [{"program": "up_up", "variables": ["demo_count"]}],
     "rival": {"program": "up_down", "variables": ["count"]},
     "not_discriminating": [{"arch": ["lstm"], "reason": "by construction"}]},
]})


def test_seed_interval_is_student_t_over_seeds():
    values = [0.97, 0.93, 0.99, 0.95, 0.90]
    cells = [_cell("gru", "multi", s, [_record("up_down", ["count"], v)]) for s, v in enumerate(values)]
    lo, hi = interval_of(cells, "up_down.count/state")
    want = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert (lo, hi) == pytest.approx(want)
    # the envelope of the seeds' Wilson intervals would be wider than the spread of five close seeds
    assert lo > 0.89


def test_holm_against_the_step_down_by_hand():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_one_sided_p_matches_scipy_and_handles_no_spread():
    x = [0.1, 0.3, -0.05, 0.2]
    assert one_sided_p(x, "greater") == pytest.approx(stats.ttest_1samp(x, 0, alternative="greater").pvalue)
    assert one_sided_p(x, "less", noise_sd=0.01) == pytest.approx(stats.ttest_1samp(x, 0, alternative="less").pvalue)
    assert one_sided_p([0.2, 0.2], "greater") == 0 and one_sided_p([0.2, 0.2], "less") == 1
    # two seeds that agree by chance are as uncertain as their pairs make them
    assert one_sided_p([0.02, 0.02], "greater", noise_sd=0.02) == pytest.approx(stats.t(1).sf(math.sqrt(2)))
    assert math.isnan(one_sided_p([0.2], "greater"))


def test_verdicts_read_levels_seeds_and_training():
    cells = []
    for s, (count, upup) in enumerate([(0.98, 0.36), (0.97, 0.33), (0.99, 0.35), (0.96, 0.34), (0.98, 0.32)]):
        cells.append(_cell("gru", "multi", s, [_record("up_down", ["count"], count),
                                               _record("up_up", ["demo_count"], upup)]))
    cells.append(_cell("gru", "multi", 9, [_record("up_down", ["count"], 0.1)], acc=TRAINED - 0.001))
    for s, upup in enumerate([0.72, 0.70, 0.75, 0.69, 0.74]):
        cells.append(_cell("lstm", "multi", s, [_record("up_up", ["demo_count"], upup)]))
    rows = {(r["claim"].id, r["arch"]): r for r in judge(cells, CLAIMS)}
    counts = rows["counts", "gru"]
    assert counts["verdict"] == "agrees" and counts["n"] == 5  # the untrained seed is not read
    assert counts["seeds"] == {"high": 5, "partial": 0, "low": 0}
    upup = rows["not_up_up", "gru"]
    assert upup["levels"]["rival"]["mean"] == pytest.approx(0.3)  # 1 - the share on which the labels differ
    assert upup["verdict"] == "agrees"  # within the margin of the rival's level on every seed
    lstm = rows["not_up_up", "lstm"]
    assert lstm["verdict"] == "not discriminating" and lstm["reason"] == "by construction" and "adjusted" not in lstm
    # without the declaration the LSTM row is tested, and contradicted
    plain = parse_claims({"claims": [{**{k: v for k, v in vars(CLAIMS[1]).items() if k not in ("margin", "tolerance")},
                                      "not_discriminating": []}]})
    assert {r["arch"]: r["verdict"] for r in judge(cells, plain)}["lstm"] == "disagrees"


def test_a_high_claim_below_the_threshold_disagrees_and_one_seed_is_not_tested():
    cells = [_cell("gru", "multi", s, [_record("up_down", ["count"], v)]) for s, v in enumerate([0.6, 0.65, 0.62])]
    assert judge(cells, CLAIMS[:1])[0]["verdict"] == "disagrees"
    assert judge(cells[:1], CLAIMS[:1])[0]["verdict"] == "too few seeds"
    assert all(v < HIGH for v in (0.6, 0.65, 0.62))


def test_claims_files_parse_and_bad_ones_fail_by_name(tmp_path):
    for path in sorted((ROOT / "configs" / "claims").glob("*.yaml")):
        assert read_claims(path)
    with pytest.raises(ConfigError, match="predicts"):
        parse_claims({"claims": [{"id": "x", "wording": "w", "arch": "gru", "task": "multi", "predicts": "big",
                                  "alignments": [{"program": "up_down"}]}]})
    bad = tmp_path / "c.yaml"
    bad.write_text("claims: [{id: x}]")
    with pytest.raises(ConfigError, match="missing"):
        read_claims(bad)


def test_trained_is_the_stop_criterion():
    assert TRAINED == TrainedAt().threshold


@torch.no_grad()
def test_nope_attention_hiding_is_deletion_and_rope_is_not():
    """Without positions, hiding tokens from every query but their own in all blocks gives the logits
    of the sequence with those tokens deleted: the score of attention hiding on a NoPE net is its
    task accuracy on shorter trials, whatever its mechanism (the claims file marks it so)."""
    task = NumericEquivalence("multi", p_void=0.2)
    pairs = hiding_pairs(task, PROGRAMS["ctx_distr"], 40, seed=0)
    tokens, hidden = pairs.source, pairs.span
    gaps = {}
    for positional in ("nope", "rope"):
        torch.manual_seed(1)
        net = TransformerLM(VOCAB.size, d_model=32, n_layers=2, n_heads=2, positional=positional).eval()
        hidden_logits = net(tokens, attn_mask=hiding_attn_mask(hidden))
        gap = 0.0
        for b in range(len(tokens)):
            keep = ~hidden[b]
            deleted = net(tokens[b][keep][None])[0]
            gap = max(gap, (hidden_logits[b][keep] - deleted).abs().max().item())
        gaps[positional] = gap
    assert gaps["nope"] < 1e-4
    assert gaps["rope"] > 1e-2


def test_committed_grid_gets_a_claims_table(tmp_path):
    import shutil
    from numsym_pl.analysis.report import write_report
    study = ROOT / "docs" / "findings" / "full" / "paper_main"
    for path in (json_path(study / "results.json"), study / "study.json"):  # results.json.gz once published
        shutil.copy(path, tmp_path / path.name)
    text = write_report(tmp_path, claims=ROOT / "configs" / "claims" / "paper_main.yaml").read_text()
    section = text.split("## Claims", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == sum(len(c.groups()) for c in read_claims(ROOT / "configs" / "claims" / "paper_main.yaml"))
    assert all("not discriminating" in r for r in rows if "| nope |" in r and "transformers_recompute |" in r)
    assert json.loads((tmp_path / "study.json").read_text())["name"] == "paper_main"


def test_against_names_the_verdicts_that_moved():
    import copy
    from numsym_pl.analysis.against import verdicts_beside

    results = read_json(ROOT / "docs" / "findings" / "full" / "paper_main" / "results.json")
    claims = read_claims(ROOT / "configs" / "claims" / "paper_main.yaml")
    n_rows = sum(len(c.groups()) for c in claims)
    assert verdicts_beside(results, results, claims).endswith(f"{n_rows} of {n_rows} rows keep their verdict.")
    other = copy.deepcopy(results)
    for r in other:  # the GRU's Same-Object count aligns on every seed of the other study
        if (r["arch"], r["task"]) == ("gru", "same"):
            for a in r["alignments"]:
                if a["key"] == "up_down.count/state":
                    a["iia"] = 1.0
                    for rep in a.get("replicates") or []:
                        rep["iia"] = 1.0
    text = verdicts_beside(results, other, claims)
    moved = [line for line in text.splitlines() if line.startswith("| same_object_no_up_down |")]
    assert len(moved) == 1 and "| gru | same | disagrees | agrees |" in moved[0]
