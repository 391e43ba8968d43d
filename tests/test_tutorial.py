"""The tutorial (docs/tutorials/tutorial.py, jupytext percent format) runs end to end with its
tiny budgets, as a script, and is a notebook the docs site can render."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorials" / "tutorial.py"


def test_the_tutorial_runs_with_tiny_budgets(tmp_path):
    # one thread: these small nets run as fast on one, and a shared machine's other work cannot
    # slow a spinning second thread down
    env = {**os.environ, "NUMSYM_TUTORIAL_QUICK": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    res = subprocess.run([sys.executable, str(TUTORIAL)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=False, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for line in ("up_down.count at state", "untrained net", "up_up.demo_count at state", "floor (no swap)"):
        assert line in res.stdout, res.stdout[-3000:]
    assert not list(tmp_path.iterdir()), "the tutorial writes no files"


def test_the_tutorial_is_a_percent_format_notebook():
    text = TUTORIAL.read_text()
    assert text.startswith("# %% [markdown]")
    cells = text.split("\n# %%")
    assert (sum(c.startswith(" [markdown]") for c in cells) >= 5
            and sum(not c.startswith(" [markdown]") for c in cells) >= 5)
    jupytext = pytest.importorskip("jupytext")  # in the docs extra
    nb = jupytext.reads(text, fmt="py:percent")
    kinds = {c.cell_type for c in nb.cells}
    assert kinds == {"markdown", "code"} and nb.cells[0].cell_type == "markdown"
    assert 'QUICK = os.environ.get("NUMSYM_TUTORIAL_QUICK") == "1"' in text
