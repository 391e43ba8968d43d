"""The README's two commands are exactly what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands_verbatim():
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    setup, tests = blocks[0].strip(), blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert setup in ci and tests in ci
    assert "pip install torch==2.13.0" in setup and "pytest" in tests


def test_torch_pin_admits_the_local_build_only():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.4,<=2.13.0"' in text
