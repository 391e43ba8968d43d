"""Cause / isolation per pair, and the report's verdict on competing programs, on golden inputs."""

import math

import pytest
import torch

from numsym_pl.analysis.competing import cell_verdict, competing_section
from numsym_pl.das.interventions.cause import cause_isolation_rows, summarize


def test_cause_and_isolation_rows_by_hand():
    ok = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=torch.bool)
    scored = torch.tensor([[1, 1, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0]], dtype=torch.bool)
    changed = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.bool)
    cause, isolation = cause_isolation_rows(ok, scored, changed)
    # row 0: changed target right, kept targets (1, 2) not all right; row 1: a changed target wrong, kept right;
    # row 2: nothing changed (no cause), kept right; row 3: everything scored changed (no isolation)
    assert cause[:2].tolist() == [1.0, 0.0] and math.isnan(cause[2]) and cause[3] == 1.0
    assert isolation[:3].tolist() == [0.0, 1.0, 1.0] and math.isnan(isolation[3])
    s = summarize(cause, isolation)
    assert (s["n_cause"], s["n_isolation"]) == (3, 3)
    assert s["cause"] == pytest.approx(2 / 3) and s["isolation"] == pytest.approx(2 / 3)
    assert s["cause_ci"][0] < 2 / 3 < s["cause_ci"][1]


def _alignment(program, variables, value, lo, hi):
    return {"program": program, "variables": variables, "site": "state", "intervention": "das", "iia": value,
            "iia_effective": value, "intervals": {"iia_effective": [lo, hi], "iia": [lo, hi]}, "iia_none": 0.05,
            "iia_identity": 0.1, "iia_random": 0.1, "iia_full_swap": 0.5, "cause_isolation": None, "iia_alone": None}


def _cell(alignments, differ=0.9, acc=1.0):
    names = [f"{a['program']}.{'+'.join(a['variables'])}" for a in alignments]
    return {"cell": "gru-x-s0", "task_family": "two_type_counting", "fit": {"val/acc_trial": acc},
            "alignments": alignments,
            "distinguishability": [{"first": names[0], "second": names[1], "differ": differ, "n": 1000,
                                    "interval": [differ - 0.02, differ + 0.02], "distinguishable": differ >= 0.2}]}


def test_verdicts_rank_say_not_distinguishable_none_aligns_or_not_trained():
    a = _alignment("two_counters", ["count_a"], 0.95, 0.93, 0.97)
    b = _alignment("total_and_first", ["count_a"], 0.40, 0.36, 0.44)
    assert cell_verdict(_cell([a, b])) == ("**two_counters** ranks first: two_counters.count_a 0.950 (high) vs "
                                           "total_and_first.count_a 0.400 (low)")
    assert cell_verdict(_cell([a, b], differ=0.1)).startswith("not distinguishable: no alignment of two_counters and "
                                                              "total_and_first")
    # joint swaps that agree everywhere decide nothing: the head-to-head falls to a distinguishable pair
    joint_a = _alignment("two_counters", ["count_a", "count_b"], 0.97, 0.96, 0.98)
    joint_b = _alignment("total_and_first", ["total", "count_a"], 0.96, 0.95, 0.97)
    cell = _cell([joint_a, joint_b, a, b], differ=0.0)
    cell["distinguishability"] += [{"first": "two_counters.count_a+count_b", "second": "total_and_first.count_a",
                                    "differ": 0.9, "distinguishable": True}]
    assert cell_verdict(cell) == ("**two_counters** ranks first: two_counters.count_a+count_b 0.970 (high) vs "
                                  "total_and_first.count_a 0.400 (low)")
    close = _alignment("total_and_first", ["count_a"], 0.94, 0.92, 0.96)
    assert cell_verdict(_cell([a, close])).startswith("within noise: two_counters.count_a 0.950 (high) vs")
    low = [_alignment("two_counters", ["count_a"], 0.2, 0.17, 0.23),
           _alignment("total_and_first", ["count_a"], 0.1, 0.08, 0.12)]
    assert cell_verdict(_cell(low)).startswith("none aligns (best two_counters.count_a")
    assert cell_verdict(_cell([a, b], acc=0.5)) == "not trained"
    text = competing_section([_cell([a, b])])
    assert "## Competing programs" in text and ("| gru-x-s0 | two_counters.count_a | total_and_first.count_a | 0.900"
                                                in text)
