"""The report's claims section: one row per declared claim and group with its seed-level figure,
calibrating levels, Holm-adjusted p-values and verdict (``numsym_pl.analysis.verdicts``), and a
figure of the intervals against the levels."""

from __future__ import annotations

from pathlib import Path

from numsym_pl.analysis.claims import Claim
from numsym_pl.analysis.summary import TRAINED, markdown_table
from numsym_pl.analysis.verdicts import ALPHA, HIGH, fmt_p, fmt_summary, judge, measured_level

VERDICTS = ("agrees", "disagrees", "undecided", "not discriminating", "not trained", "too few seeds", "not measured")


def _mean(s: dict | None) -> str:
    return "–" if not s or s.get("mean") is None else f"{s['mean']:.3f}"


def _p(row: dict) -> str:
    adjusted = row.get("adjusted")
    return "–" if not adjusted else f"{fmt_p(adjusted['confirm'])} / {fmt_p(adjusted['contradict'])}"


def _seeds(row: dict) -> str:
    return f"{row['n']} of {row['n_cells']}"


def level_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        c: Claim = r["claim"]
        if c.predicts == "tracks_accuracy":
            continue
        if c.predicts == "falls":  # a trend over carried counts: the levels do not enter
            out.append([c.id, r["arch"], r["task"], c.predicts, _seeds(r), fmt_summary(r.get("slope")) + " (slope)",
                        *["–"] * 7, _p(r), f"**{r['verdict']}**"])
            continue
        s, level = r.get("seeds") or {}, (r.get("levels") or {}).get("level") or {}
        out.append([c.id, r["arch"], r["task"], c.predicts, _seeds(r), fmt_summary(r.get("iia"), bounds=(0, 1)),
                    _mean(r.get("effective")), f"{s.get('high', 0)} / {s.get('partial', 0)} / {s.get('low', 0)}"
                    if s else "–", *(_mean((r.get("levels") or {}).get(k)) for k in ("floor", "rival", "null")),
                    "–" if level.get("mean") is None else f"{1 - level['mean']:.2f}", measured_level(r), _p(r),
                    f"**{r['verdict']}**"])
    return out


def dynamics_rows(rows: list[dict]) -> list[list]:
    return [[r["claim"].id, r["arch"], r["task"], f"{len(r['figures'])} of {r['n_cells']}", fmt_summary(r["lag"], 1),
             fmt_summary(r["margin"]), r["no_transition"], _p(r), f"**{r['verdict']}**"]
            for r in rows if r["claim"].predicts == "tracks_accuracy"]


def claims_figure(rows: list[dict], path: Path) -> Path | None:
    """Each tested level claim's seed-level interval of IIA against its highest calibrating level and
    the high threshold, one line per claim and group."""
    shown = [r for r in rows if r["claim"].predicts in ("high", "low") and (r.get("iia") or {}).get("n")]
    if not shown:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(shown) + 1.2))
    for y, r in enumerate(shown):
        s, color = r["iia"], {"agrees": "tab:green", "disagrees": "tab:red"}.get(r["verdict"], "tab:gray")
        lo, hi = s["interval"] or (s["mean"], s["mean"])
        ax.plot([lo, hi], [y, y], color=color, lw=3, solid_capstyle="butt")
        ax.plot([s["mean"]], [y], "o", color=color, ms=4)
        ax.plot([f["iia"] for f in r["figures"]], [y] * len(r["figures"]), "|", color="black", ms=7, alpha=0.6)
        level = r["levels"]["level"]["mean"]
        ax.plot([level, level + r["claim"].margin], [y, y], color="tab:orange", lw=1, marker="|", ms=9)
    ax.axvline(HIGH, color="black", ls=":", lw=1)
    ax.set_yticks(range(len(shown)), [f"{r['claim'].id} {r['arch']} {r['task']} ({r['claim'].predicts})"
                                      for r in shown], fontsize=7)
    ax.set_xlim(-0.02, 1.02)
    ax.invert_yaxis()
    ax.set_xlabel("IIA, all test pairs: mean and 95 % t-interval over seeds (green: agrees, red: disagrees); "
                  "ticks: seeds;\norange: highest calibrating level to level + margin; dotted: high", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def claims_section(results: list[dict], claims: list[Claim] | None, source: Path | None, out_dir: Path) -> str:
    """The claims section of a report (a line saying none are declared when ``claims`` is None)."""
    if not claims:
        return ("## Claims\n\nThis study declares no claims (`configs/claims/<study>.yaml`, or `numsym_pl report "
                "--claims FILE`): every figure below is measured, with no verdict.")
    rows = judge(results, claims)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    tested = sum(r["status"] == "tested" for r in rows)
    margin = sorted({c.margin for c in claims if c.predicts == "low"})
    parts = [
        f"## Claims\n\nThe claims declared in `{source}`, one row per claim and group (architecture x task); only "
        "these rows get a verdict. The unit is a trained seed (trial accuracy >= "
        f"{TRAINED}, the training's stop criterion) or, for learning dynamics, a training run.",
        "Each tested row has two one-sided t-tests over seeds, one that would confirm its prediction (`high`: mean "
        f"IIA > {HIGH}; `low`: mean of IIA - level - margin < 0; `falls`: mean slope of IIA against the carried "
        "count < 0; `tracks_accuracy`: below) and one that would contradict it. All "
        f"{2 * tested} p-values of the {tested} tested rows carry one Holm correction; a row **agrees** when its "
        f"confirming p survives it at {ALPHA}, **disagrees** when its contradicting p does, and is **undecided** "
        "otherwise (p: Holm-adjusted, confirm / contradict). Rows whose intervention cannot discriminate on that "
        "architecture, or with no trained seed, or one seed only, get no test. Of "
        f"{len(rows)} rows: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".",
    ]
    levels = level_rows(rows)
    if levels:
        parts.append(
            "A seed's figure is its IIA on all test pairs (the mean over its DAS seeds), beside its calibrating levels "
            "on the same pairs: the no-op **floor** (the unpatched net), the **rival** program's coincidence (the "
            "share of pairs whose rival labels equal these, what a net following the rival scores), and the fitted "
            "**null** (the same DAS against the program with its variable's values permuted; – where not measured). "
            f"*Distinguishable*: 1 - the highest level. Seeds are `high` at IIA >= {HIGH}, `low` at most the margin "
            f"({', '.join(map(str, margin)) or '–'}) above their highest level, `partial` between. The figure is the "
            "mean ± sd over seeds with a 95 % Student-t interval (shown within [0, 1]); *level* reads that interval "
            "the same way (`uncertain`: it straddles a bound).")
        parts.append(markdown_table(["claim", "arch", "task", "predicts", "trained seeds", "IIA [95 % t]",
                                     "IIA, effective pairs", "seeds high / partial / low", "floor", "rival", "null",
                                     "distinguishable", "level", "p (Holm)", "verdict"], levels))
        figure = claims_figure(rows, out_dir / "figures" / "claims.png")
        if figure:
            parts.append(f"![claims]({figure.relative_to(out_dir)})")
    dynamics = dynamics_rows(rows)
    if dynamics:
        tol = sorted({c.tolerance for c in claims if c.predicts == "tracks_accuracy"})
        parts.append("Learning dynamics, per training run: the accuracy transition (the first validation with "
                     "trial accuracy >= 0.5) and the IIA transition (the first DAS check with IIA >= 0.5); the "
                     "**lag** is their difference in epochs (positive: IIA later), and the **margin** is DAS's IIA "
                     "minus the larger of the full-state swap and the random rotation, averaged over the checks "
                     "from the accuracy transition on. The claim is confirmed when the margin is > 0 and the lag "
                     f"within ± {', '.join(map(str, tol))} epochs (one check interval), each by a one-sided t-test; "
                     "the largest of the three p-values is the row's. Runs with no transition are counted apart.")
        parts.append(markdown_table(["claim", "arch", "task", "runs", "lag, epochs [95 % t]", "margin [95 % t]",
                                     "runs without a transition", "p (Holm)", "verdict"], dynamics))
    parts.append(markdown_table(["claim", "the claim"], [[c.id, c.wording] for c in claims]))
    reasons = [(r["claim"].id, r["arch"], r["task"], r["reason"]) for r in rows if r.get("reason")]
    if reasons:
        parts.append("Not discriminating:\n\n" + "\n".join(f"- `{cid}` on {a} {t}: {why}"
                                                             for cid, a, t, why in reasons))
    return "\n\n".join(parts)
