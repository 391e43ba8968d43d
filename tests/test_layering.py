"""The house's layering, checked on the source: dependencies point one way, command modules are
imported by the CLI alone, files stay small."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "numsym_pl").rglob("*.py"), *(ROOT / "callbacks").glob("*.py")])
COMMANDS = {"numsym_pl.cli", "numsym_pl.das.command", "numsym_pl.das.sweep_command", "numsym_pl.study.command", "numsym_pl.analysis.probe_command"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


IMPORTS = {_module(p): _imports(p) for p in SOURCES}


def test_nothing_but_the_cli_imports_a_command_module():
    offenders = {m: sorted(i & COMMANDS) for m, i in IMPORTS.items() if m not in ("numsym_pl.cli", "numsym_pl.__main__") and i & COMMANDS}
    assert not offenders


@pytest.mark.parametrize("layer, forbidden", [
    ("numsym_pl.tasks", ("numsym_pl.programs", "numsym_pl.data", "numsym_pl.models", "numsym_pl.das", "callbacks")),
    ("numsym_pl.programs", ("numsym_pl.data", "numsym_pl.models", "numsym_pl.das", "callbacks")),
    ("numsym_pl.models", ("numsym_pl.tasks", "numsym_pl.programs", "numsym_pl.data", "numsym_pl.das", "callbacks")),
    ("numsym_pl.das", ("numsym_pl.models.recurrent", "numsym_pl.models.transformer", "numsym_pl.data", "callbacks")),
    ("numsym_pl.lit_module", ("numsym_pl.preflight", "callbacks")),
    ("numsym_pl", ("callbacks",)),
])
def test_dependencies_point_one_way(layer, forbidden):
    bad = {m: sorted(i for i in imports if i.startswith(forbidden))
           for m, imports in IMPORTS.items() if (m == layer or m.startswith(layer + ".")) and not m.startswith("callbacks")}
    assert not {m: v for m, v in bad.items() if v}


def test_no_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*SOURCES, *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long
