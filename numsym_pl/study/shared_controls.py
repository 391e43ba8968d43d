"""Untrained-net controls shared by the cells of one architecture, task and size.

The control of an alignment (``numsym_pl.das.controls``) fits it on a fresh net seeded from the DAS
seed, on pairs drawn from the DAS seed: nothing in it depends on the cell's training seed, so the
five seeds of a ``paper_main`` row computed the same number five times (identical to the last
digit), 30-45 % of a cell's time. A study computes each one once, the first cell that needs it, and
the others take it:

    <out_dir>/controls/<arch>-<task>[-d<size>]/<alignment key>.json

A cell first fits all its alignments, then takes its controls: one already computed (in that file,
or in a finished sibling cell's result, e.g. one taken by ``--resume_from``) is read; one that no
other cell is computing is computed under a lock; while every remaining one is being computed by a
sibling, the cell waits for the first of them. Two cells of a row running side by side thus split
the row's controls between them. A stored control is used only if it was made for the same net,
task, alignment, DAS settings and device; it records the cell that computed it (``computed_in``).
"""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

from numsym_pl.das.alignment import Alignment
from numsym_pl.das.settings import SearchSettings
from numsym_pl.jsonfile import as_json, write_json
from numsym_pl.study.spec import Cell

IGNORED_SETTINGS = ("progress", "controls")  # neither changes a control's numbers


def provenance(net_config: dict, task_config: dict, alignment: Alignment, settings: SearchSettings,
               device: str) -> dict:
    """What a control was made for: a stored one stands in only where all of it is the same."""
    kept = {k: v for k, v in asdict(settings).items() if k not in IGNORED_SETTINGS}
    return as_json({"net": net_config, "task": task_config, "alignment": alignment.identity, "settings": kept,
                    "device": device})


def _group(cell: Cell) -> str:
    return f"{cell.arch}-{cell.task}" + ("" if cell.size is None else f"-d{cell.size}")


def control_path(cell: Cell, alignment: Alignment) -> Path:
    return cell.dir.parent.parent / "controls" / _group(cell) / (alignment.key.replace("/", "@") + ".json")


def _stored(path: Path, made_for: dict) -> dict | None:
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    return stored["control"] if stored.get("made_for") == made_for else None


def _from_siblings(cell: Cell, alignment: Alignment, made_for: dict) -> dict | None:
    """The control in a finished cell of the same architecture, task and size, if made for the same."""
    for result_path in sorted(cell.dir.parent.glob("*/result.json")):
        r = json.loads(result_path.read_text())
        if (r.get("arch"), r.get("task"), r.get("size")) != (cell.arch, cell.task, cell.size) or r["cell"] == cell.id:
            continue
        for a in r.get("alignments", []):
            untrained = (a.get("controls") or {}).get("untrained")
            settings = {k: v for k, v in (a.get("settings") or {}).items() if k not in IGNORED_SETTINGS}
            # a cell fits from its own DAS seed; its control, from the study's (which the control records)
            settings["seed"] = (untrained or {}).get("seed", settings.get("seed"))
            if (untrained and a.get("key") == alignment.key and as_json(a.get("alignment")) == made_for["alignment"]
                    and as_json(settings) == made_for["settings"] and r.get("task_config") == made_for["task"]
                    and a.get("device", "cpu") == made_for["device"]):
                return {**untrained, "computed_in": untrained.get("computed_in", r["cell"])}
    return None


@contextmanager
def _lock(path: Path, wait: bool) -> Iterator[bool]:
    """Hold ``path``'s lock file; with ``wait=False`` yield False at once if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def take_controls(cell: Cell, wanted: list[tuple[Alignment, dict]], compute: Callable[[Alignment], dict],
                  done: Callable[[Alignment, dict], None]) -> None:
    """Give ``done(alignment, control)`` the control of every ``(alignment, made_for)`` in ``wanted``:
    read where stored, computed by ``compute(alignment)`` where no sibling cell is computing it,
    waited for where every remaining one is being computed (see the module's docstring)."""
    pending = list(wanted)
    while pending:
        progressed = False
        for item in list(pending):
            alignment, made_for = item
            path = control_path(cell, alignment)
            control = _stored(path, made_for) or _from_siblings(cell, alignment, made_for)
            if control is None:
                with _lock(path, wait=False) as mine:
                    if mine:  # nobody else is computing it; a sibling may have finished it just now
                        control = _stored(path, made_for)
                        if control is None:
                            control = {**compute(alignment), "computed_in": cell.id}
                            write_json(path, {"made_for": made_for, "control": control})
            if control is not None:
                done(alignment, control)
                pending.remove(item)
                progressed = True
        if pending and not progressed:  # siblings are computing all that is left: wait for the first
            with _lock(control_path(cell, pending[0][0]), wait=True):
                pass  # released: stored now (or its cell died, and the next pass computes it here)
