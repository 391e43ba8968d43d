"""The report's comparison with the paper and its correlation statistics, on made-up numbers."""

import math

import numpy as np
import pytest

from numsym_pl.analysis.summary import agreement, correlation, paper_expectation


@pytest.mark.parametrize("arch, task, alignment, expected", [
    ("gru", "multi", "up_down.count/state", "high"),
    ("lstm", "single", "up_up.demo_count/state", "low"),
    ("lstm", "same", "up_down.count/state", "low"),
    ("rope", "multi", "up_down.count/resid.1", "low"),
    ("nope", "multi", "attention_hiding.ctx_distr/attn", "high"),
    ("nope", "same", "attention_hiding.ctx_distr/attn", "low"),
    ("gru", "multi", "ctx_distr.balance/state", None),
    ("mlp", "multi", "up_down.count/state", None),
])
def test_paper_expectations_follow_spec_section_5(arch, task, alignment, expected):
    assert paper_expectation(arch, task, alignment) == expected


def test_agreement_levels_and_untrained_nets():
    assert agreement("high", 0.95) == "agrees" and agreement("low", 0.2) == "agrees"
    assert agreement("high", 0.7) == "partly" and agreement("high", 0.3) == "disagrees"
    assert agreement("high", 0.95, acc=0.5) == "not trained" and agreement(None, 0.9) == "no claim"


def test_correlation_and_its_intervals():
    rng = np.random.default_rng(0)
    x = rng.random(30)
    strong = correlation(x, 2 * x + 0.01 * rng.standard_normal(30))
    assert strong["r"] > 0.99 and strong["ci_boot"][0] > 0.95 and strong["ci_fisher"][0] > 0.95
    none = correlation(x, rng.random(30))
    assert none["ci_boot"][0] < 0 < none["ci_boot"][1]
    assert math.isnan(correlation([0.1, 0.2], [0.3, 0.4])["r"])  # too few cells
