"""One study's numbers beside another's: ``numsym_pl report DIR --against OTHER_DIR``.

For a full study against its quick version (or two seeds' worth against five), cell group by cell
group: trial accuracy and each alignment's IIA (on effective pairs where measured) as mean ± sd
over seeds with the 95 % interval, in both. Only
(architecture, task, alignment) rows present in both studies are shown; what only one has is
counted below the table.
"""

from __future__ import annotations

from pathlib import Path

from numsym_pl.analysis.summary import (alignment_of, fmt, fmt_interval, grouped, iia_of, interval_of, labels_in,
                                        lead_field, markdown_table, mean_sd, trained_cells)
from numsym_pl.analysis.verdicts import fmt_summary, judge


def _figure(cells: list[dict], label: str) -> tuple[str, str]:
    """(IIA shown, which pairs it is on) of an alignment over a group's trained seeds (all seeds where
    none trained)."""
    read = trained_cells(cells) or cells
    lead = lead_field(read, label)
    stat = mean_sd(iia_of(r, label, lead) for r in read)
    if not stat[2]:
        return "–", "–"
    shown = fmt_interval(stat, interval_of(read, label, lead))
    return shown + (f" ({len(read)} of {len(cells)} seeds)" if len(read) < len(cells) else ""), \
        "effective" if lead == "iia_effective" else "all"


def verdicts_beside(results: list[dict], other: list[dict], claims: list) -> str:
    """The declared claims judged on both studies: every row whose verdict differs, with the
    figure each verdict read."""
    mine, theirs = judge(results, claims), judge(other, claims)
    figure = lambda r: fmt_summary(r.get("iia") or r.get("lag"), bounds=(0, 1) if r.get("iia") else None)  # noqa: E731
    moved = [[a["claim"].id, a["arch"], a["task"], b["verdict"], a["verdict"], figure(b), figure(a)]
             for a, b in zip(mine, theirs) if a["verdict"] != b["verdict"]]
    same = len(mine) - len(moved)
    head = (f"### Verdicts beside the other study's\n\nThe same claims judged on both: {same} of {len(mine)} rows "
            "keep their verdict" + (";" if moved else "."))
    if not moved:
        return head
    return head + " these moved (the figure each verdict read: mean ± sd [95 % t] over trained seeds):\n\n" + \
        markdown_table(["claim", "arch", "task", "verdict (other)", "verdict (this)", "figure (other)",
                        "figure (this)"], moved)


def against_section(results: list[dict], other: list[dict], this_name: str, other_name: str,
                    claims: list | None = None) -> str:
    """The section comparing ``results`` (this study) with ``other`` row by row (and, given the
    ``claims``, their verdicts)."""
    mine, theirs = grouped(results), grouped(other)
    labels = [lab for lab in labels_in(results) if lab in labels_in(other)]
    rows = []
    for key in [k for k in mine if k in theirs]:
        a, b = mine[key], theirs[key]
        acc = [fmt(mean_sd(r["fit"].get("val/acc_trial") for r in cells)) for cells in (a, b)]
        for lab in labels:
            if not any(alignment_of(r, lab) for r in a) or not any(alignment_of(r, lab) for r in b):
                continue
            (iia_a, on_a), (iia_b, _) = _figure(a, lab), _figure(b, lab)
            rows.append([*key, lab, f"{len(a)} / {len(b)}", *acc, on_a, iia_a, iia_b])
    only = len(set(mine) ^ set(theirs))
    text = (f"## Against {other_name}\n\nThis study ({this_name}) beside `{other_name}`, for the cell groups "
            "and alignments both have: mean ± sd over seeds with the 95 % interval (one seed: Wilson over its test "
            "pairs; several: Student's t over the seeds), over the seeds whose net learned the task.")
    if not rows:
        return text + "\n\nNo cell group and alignment in common."
    table = markdown_table(["arch", "task", "alignment", "seeds (this / other)", "trial acc (this)",
                            "trial acc (other)", "pairs", "IIA (this)", "IIA (other)"], rows)
    tail = f"\n\n{only} (arch, task) group(s) are in one study only." if only else ""
    moved = f"\n\n{verdicts_beside(results, other, claims)}" if claims else ""
    return f"{text}\n\n{table}{tail}{moved}"


def study_name(run_dir: Path, settings: dict) -> str:
    return f"{settings.get('name', run_dir.name)}{' --quick' if settings.get('quick') else ''} ({run_dir})"
