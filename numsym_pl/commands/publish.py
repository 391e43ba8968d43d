"""``numsym_pl publish``: a study as a record others can re-derive (settings, results, report and
every cell's trained net), e.g. into the repository's findings.

    numsym_pl publish runs/studies/paper_main docs/findings/full/paper_main [--dtype float16]

Then ``numsym_pl das --ckpt_path docs/findings/full/paper_main/nets/gru-multi-s0 ...`` fits any
alignment on a published net without training (``numsym_pl.study.publish``).
"""

from __future__ import annotations

from pathlib import Path

from jsonargparse import ArgumentParser

from numsym_pl.analysis.report import write_report
from numsym_pl.study.publish import DTYPES, publish


def main(argv: list[str] | None = None) -> Path:
    parser = ArgumentParser(prog="numsym_pl publish",
                            description="Copy a study's results and trained nets into DEST and write its report there.")
    parser.add_argument("run_dir", type=str, help="A study's out_dir (holds results.json and cells/).")
    parser.add_argument("dest", type=str, help="Where the record goes (created if needed).")
    parser.add_argument("--dtype", type=str, default="float16", choices=sorted(DTYPES),
                        help="How the nets' weights are stored (a net loads them into float32 parameters).")
    parser.add_argument("--claims", type=str, default=None, help="The claims file the report judges (as for report).")
    cfg = parser.parse_args(argv)
    cells = publish(cfg.run_dir, cfg.dest, cfg.dtype)
    path = write_report(cfg.dest, claims=cfg.claims)
    print(f"published {len(cells)} nets into {Path(cfg.dest) / 'nets'}; wrote {path}")
    return path
