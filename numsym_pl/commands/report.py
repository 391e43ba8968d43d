"""``numsym_pl report``: ``report.md`` (tables and PNG figures) for a study's ``out_dir``.

    numsym_pl report runs/studies/paper_main [--against runs/studies/paper_main_quick] [--claims FILE]
"""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ArgumentParser

from numsym_pl.analysis.report import write_report


def main(argv: list[str] | None = None) -> Path:
    parser = ArgumentParser(prog="numsym_pl report", description="Write report.md (tables + PNG figures) for a study.")
    parser.add_argument("run_dir", type=str, help="A study's out_dir (holds results.json).")
    parser.add_argument("--against", type=str, default=None,
                        help="Another study's out_dir (e.g. the quick run of the same study): a section sets its "
                             "numbers beside this one's, row by row.")
    parser.add_argument("--claims", type=str, default=None,
                        help="The claims file to judge (default: the study's `claims`, else "
                             "configs/claims/<study name>.yaml where it exists).")
    cfg = parser.parse_args(argv)
    path = write_report(cfg.run_dir, cfg.against, cfg.claims)
    print(f"wrote {path}")
    return path

