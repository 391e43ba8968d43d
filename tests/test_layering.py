"""The house's layering, checked on the source: dependencies point one way, command modules are
imported by the CLI alone, files stay small."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "numsym_pl").rglob("*.py"), *(ROOT / "callbacks").glob("*.py")])


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
COMMANDS = {m for m in (_module(p) for p in SOURCES) if m.startswith("numsym_pl.commands.")} | {"numsym_pl.cli"}


def test_the_commands_have_their_own_room():
    assert {"numsym_pl.commands.das", "numsym_pl.commands.sweep", "numsym_pl.commands.probe",
            "numsym_pl.commands.study", "numsym_pl.commands.report"} <= COMMANDS
    # no command module outside numsym_pl/commands (a module with a `main(argv)` is a command)
    strays = [m for m, p in zip(map(_module, SOURCES), SOURCES) if m not in COMMANDS and m != "numsym_pl.commands"
              and "def main(" in p.read_text() and m.startswith("numsym_pl.")]
    assert not strays


def test_nothing_but_the_cli_imports_a_command_module():
    offenders = {m: sorted(i & (COMMANDS | {"numsym_pl.commands"})) for m, i in IMPORTS.items()
                 if m not in ("numsym_pl.cli", "numsym_pl.__main__") and not m.startswith("numsym_pl.commands")
                 and i & (COMMANDS | {"numsym_pl.commands"})}
    assert not offenders


@pytest.mark.parametrize("layer, forbidden", [
    ("numsym_pl.tasks", ("numsym_pl.programs", "numsym_pl.data", "numsym_pl.models", "numsym_pl.das", "callbacks")),
    ("numsym_pl.programs", ("numsym_pl.data", "numsym_pl.models", "numsym_pl.das", "callbacks")),
    ("numsym_pl.models", ("numsym_pl.tasks", "numsym_pl.programs", "numsym_pl.data", "numsym_pl.das", "callbacks")),
    ("numsym_pl.das", ("numsym_pl.models.recurrent", "numsym_pl.models.transformer", "numsym_pl.data",
                       "numsym_pl.analysis", "numsym_pl.study", "numsym_pl.commands", "numsym_pl.lit_module",
                       "numsym_pl.tasks.numeric_equivalence", "numsym_pl.tasks.two_type_counting",
                       "numsym_pl.tasks.arithmetic", "numsym_pl.tasks.comparison", "callbacks")),
    ("numsym_pl.tasks.layout", ("numsym_pl.tasks.numeric_equivalence", "numsym_pl.tasks.two_type_counting",
                                "numsym_pl.tasks.arithmetic", "numsym_pl.tasks.comparison")),
    ("numsym_pl.analysis", ("numsym_pl.study", "numsym_pl.commands", "callbacks")),
    ("numsym_pl.study", ("numsym_pl.commands", "callbacks")),
    ("numsym_pl.lit_module", ("numsym_pl.preflight", "callbacks")),
    ("numsym_pl", ("callbacks",)),
])
def test_dependencies_point_one_way(layer, forbidden):
    bad = {m: sorted(i for i in imports if i.startswith(forbidden))
           for m, imports in IMPORTS.items()
           if (m == layer or m.startswith(layer + ".")) and not m.startswith("callbacks")}
    assert not {m: v for m, v in bad.items() if v}


def test_no_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n
            for p in [*SOURCES, *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")]
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long
