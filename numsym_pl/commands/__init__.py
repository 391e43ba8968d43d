"""The ``numsym_pl`` subcommands beyond LightningCLI's (fit / validate / test / predict).

Each is a module here with ``main(argv)``; ``COMMANDS`` declares them once, and the CLI imports a
command's module only when it runs (so ``numsym_pl fit`` never pays for the others' imports).
Library packages (``das``, ``analysis``, ``study``) import no command module.
"""

from __future__ import annotations

import importlib

#: subcommand -> its module under ``numsym_pl.commands``
COMMANDS = {"das": "das", "sweep": "sweep", "probe": "probe", "study": "study", "report": "report", "export": "export",
            "mas": "mas", "publish": "publish"}


def run_command(name: str, argv: list[str]):
    """Run subcommand ``name`` with its own arguments ``argv``."""
    return importlib.import_module(f"numsym_pl.commands.{COMMANDS[name]}").main(argv)
