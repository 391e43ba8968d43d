"""bench/cell_profile.py --records: a study's split from its finished cells' own records."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import cell_profile  # noqa: E402


def _cell(tmp_path, name, arch, seconds, fit_s, control_s):
    d = tmp_path / "cells" / name
    d.mkdir(parents=True)
    alignment = {"key": "up_down.count/state", "seconds": fit_s, "controls": {"untrained": {"seconds": control_s}}}
    hiding = {"key": "attention_hiding.ctx_distr/attn", "seconds": 1.0, "controls": None}
    (d / "result.json").write_text(json.dumps({"cell": name, "arch": arch, "seconds": seconds,
                                               "alignments": [alignment, hiding]}))


def test_the_split_is_the_median_of_what_each_cell_recorded(tmp_path, capsys):
    _cell(tmp_path, "gru-multi-s0", "gru", 100.0, 40.0, 20.0)
    _cell(tmp_path, "gru-multi-s1", "gru", 300.0, 60.0, 30.0)
    _cell(tmp_path, "gru-multi-s2", "gru", 200.0, 50.0, 90.0)
    _cell(tmp_path, "lstm-multi-s0", "lstm", 10.0, 5.0, 2.0)
    cell_profile.from_records(tmp_path, ["gru", "rope"])
    out = capsys.readouterr().out
    assert "## gru: 3 cells, median 200 s per cell" in out and "lstm" not in out.split("finished cells")[1]
    lines = {line.split("  ")[1].strip(): line.split()[-4:] for line in out.splitlines() if line.startswith("  ")}
    assert lines["up_down.count/state: fit"][-4] == "50.0" and lines["up_down.count/state: fit"][-2] == "25.0"
    assert lines["up_down.count/state: untrained-net control"][-4] == "30.0"
    # the rest per cell: 100-61, 300-91, 200-141 -> median 59
    assert lines["the rest (fit if run then, scoring, analyses)"][-4] == "59.0"
