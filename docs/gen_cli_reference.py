"""The CLI reference page, written from ``numsym_pl <command> --help`` itself.

An MkDocs hook (``hooks:`` in mkdocs.yml): every build adds ``reference/cli.md`` to the site,
so the page always shows the options of the installed code. Run it as a script to see the page:

    python docs/gen_cli_reference.py > /tmp/cli.md
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

PAGE = "reference/cli.md"

#: (command, what it is for); each gets its ``--help`` output
COMMANDS = [
    ("fit", "train a net (LightningCLI; `validate`, `test` and `predict` take the same options)"),
    ("das", "fit one alignment on a trained checkpoint and report its IIA, floor, baselines and controls"),
    ("sweep", "align one variable at many sites, subspace sizes and featurizers at once"),
    ("mas", "model alignment search: one variable aligned across two nets (or every pair of several), with CKA "
            "and RSA"),
    ("probe", "linear decodability of a program's variables at every site, and a PCA figure per site"),
    ("study", "run a grid of fit + DAS cells and collect the results"),
    ("report", "write a study's report.md and figures"),
    ("export", "write a trained net as safetensors + config.json + a model card (`numsym_pl.load` reads it back)"),
]

INTRO = """# CLI reference

Every command is `numsym_pl <command> [options]`; options can also come from YAML files
(`--config FILE`, repeatable for `fit`), and `--print_config` shows the merged configuration
without running anything. This page is generated from each command's `--help` when the site is
built (`docs/gen_cli_reference.py`).

| command | what it does |
|---|---|
"""


def help_text(command: str) -> str:
    """``numsym_pl <command> --help``, as a user's 100-column terminal shows it (run in this process:
    one import of torch and Lightning for every command)."""
    from numsym_pl.cli import main

    out, columns, argv = io.StringIO(), os.environ.get("COLUMNS"), sys.argv
    # argparse names the program after argv[0]
    os.environ["COLUMNS"], sys.argv = "100", ["numsym_pl", command, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            main([command, "--help"])
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise RuntimeError(f"numsym_pl {command} --help exited {stop.code}") from stop
    finally:
        sys.argv = argv
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().rstrip()


def render() -> str:
    """The whole page as Markdown."""
    helps = {command: help_text(command) for command, _ in COMMANDS}
    parts = [INTRO + "\n".join(f"| [`{c}`](#{c}) | {what} |" for c, what in COMMANDS) + "\n"]
    for command, what in COMMANDS:
        text = helps[command]
        body = f"```text\n{text}\n```"
        if command == "fit":  # every Trainer option: long, so folded
            body = ('??? note "`numsym_pl fit --help` (every Trainer, model, data and callback option)"\n\n'
                    + "\n".join("    " + line if line else "" for line in body.splitlines()))
        parts.append(f"## `{command}` {{#{command}}}\n\n{what[0].upper() + what[1:]}.\n\n{body}\n")
    return "\n".join(parts)


def on_files(files, config):
    """MkDocs hook: add the generated page to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files


if __name__ == "__main__":
    print(render())
