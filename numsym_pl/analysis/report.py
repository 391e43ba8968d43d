"""``numsym_pl report RUN_DIR [--against OTHER_DIR]``: a study's ``results.json`` -> ``report.md`` with tables and
PNG figures.

Every number in the report is read from the cells' results; the paragraphs only describe them.
Sections whose data the study did not produce say which study config does.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from numsym_pl.analysis import study_figures as figs
from numsym_pl.analysis.figures import image_link
from numsym_pl.analysis.against import against_section, study_name
from numsym_pl.analysis.competing import competing_section
from numsym_pl.analysis.drift import drift_section
from numsym_pl.analysis.mas_section import load_mas, mas_section
from numsym_pl.analysis.fits import fits_section
from numsym_pl.analysis.claims import claims_file, read_claims
from numsym_pl.analysis.claims_section import claims_section
from numsym_pl.analysis.reviewers_section import reviewers_section
from numsym_pl.analysis.seed_share import seed_share_section
from numsym_pl.analysis.summary import (TRAINED, alignment_of, discriminates, dynamics_points, fmt,
                                        fmt_interval, grouped, iia_of, interval_of, labels_in, lead_field,
                                        markdown_table as _table, mean_sd, ok_cells, run_correlation, fmt_over_seeds,
                                        trained_cells, analysed)
from numsym_pl.errors import ConfigError
from numsym_pl.jsonfile import json_path, read_json
from numsym_pl.das.record import BASELINE_FIELDS, flat_record


def grid_table(results) -> str:
    """One row per architecture and task: seeds, trial accuracy and, per program, the leading IIA of
    the group's first alignment of that program in the study's order (effective pairs where measured)
    over the trained seeds. Every alignment is in the main table; verdicts are in the claims section."""
    labels = labels_in(results)
    program = {}
    for r in ok_cells(results):
        for a in r.get("alignments", []):
            program.setdefault(a["key"], (a.get("alignment") or {}).get("program") or a["key"].split(".")[0])
    programs = list(dict.fromkeys(program[lab] for lab in labels))
    rows = []
    for (arch, task), cells in grouped(results).items():
        trained = trained_cells(cells)
        read = trained or cells
        row = [arch, task, len(cells) if len(trained) in (0, len(cells)) else f"{len(cells)} ({len(trained)} trained)",
               fmt(mean_sd(r["fit"].get("val/acc_trial") for r in cells))]
        for prog in programs:
            lab = next((lab for lab in labels if program[lab] == prog and any(alignment_of(r, lab) for r in read)),
                       None)
            lead = lab and lead_field(read, lab)
            stat = mean_sd(iia_of(r, lab, lead) for r in read) if lab else (0, 0, 0)
            row.append("–" if not stat[2] else f"{fmt_interval(stat, interval_of(read, lab, lead))}, `{lab}`")
        rows.append(row)
    return _table(["arch", "task", "seeds", "trial acc", *programs], rows)


def main_section(results, out_dir) -> str:
    labels = labels_in(results)
    rows = []  # one row per (architecture, task, alignment): an alignment key names its site and intervention
    for (arch, task), cells in grouped(results).items():
        acc = [fmt(mean_sd(r["fit"].get(k) for r in cells))
               for k in ("val/acc_trial", "val/acc_trial_heldout", "val/acc_trial_ood")]
        present = [lab for lab in labels if any(alignment_of(r, lab) for r in cells)]
        for lab in present:
            shown = [fmt_interval(mean_sd(iia_of(r, lab, f) for r in cells), interval_of(cells, lab, f))
                     for f in ("iia_effective", "iia", "iia_none")]
            ok = discriminates(cells, lab)
            rows.append([arch, task, len(cells), *acc, lab, *shown, "–" if ok is None else "yes" if ok else "**no**"])
        rows += [] if present else [[arch, task, len(cells), *acc, "–", "–", "–", "–", "–"]]
    main = _table(["arch", "task", "seeds", "trial acc", "held-out acc", "OOD acc", "alignment",
                   "IIA on effective pairs [95 % CI]", "IIA, all pairs [95 % CI]", "IIA without intervention",
                   "discriminating"], rows)
    base_rows = []
    for (arch, task), cells in grouped(results).items():
        for lab in labels:
            flats = [flat_record(a) for r in cells if (a := alignment_of(r, lab))]
            if not any(f.get("iia_full_swap") is not None for f in flats):
                continue
            figure = lambda k: fmt(mean_sd(f.get(k) for f in flats))  # noqa: E731
            base_rows.append([arch, task, lab, figure("iia"), *map(figure, BASELINE_FIELDS.values()),
                              figure("iia_null"), figure("iia_untrained")])
    head = ("## Main table\n\nTrial accuracy (greedy decoding, whole response exact) on in-distribution, held-out and "
            "OOD counts, and IIA (held-out test pairs, disjoint in content from the pairs DAS was fitted on) of each "
            "alignment, one row per alignment (program.variables/site); mean ± sd over seeds, with a 95 % interval in "
            "brackets (one seed: Wilson, over its test pairs; several: Student's t over the seeds). The table leads "
            "with IIA on *effective* pairs, those whose counterfactual label differs from what the program predicts on "
            "the same inputs without the intervention: a pair that the unpatched net gets right measures nothing. "
            "*Without intervention* is the unpatched net's score on all pairs, the floor; an alignment whose floor "
            "reaches into its interval is **not discriminating** (– for results written before these were measured). "
            "These rows are measurements: only the declared claims above carry a verdict.")
    if not labels:  # a study without post-hoc alignments (e.g. learning dynamics)
        main = _table(["arch", "task", "seeds", "trial acc", "held-out acc", "OOD acc"], [row[:6] for row in rows])
        return "\n\n".join([head, main])
    weak = ("Ctx-Distr's `balance` by DAS is a weak test: its counterfactual differs from the target's own "
            "continuation only at the first prediction after the intervention (the next step recomputes the balance "
            "from the context), so untrained baselines score high as well. For transformers, attention hiding is "
            "Ctx-Distr's discriminating test.") if any(lab.startswith("ctx_distr.") for lab in labels) else ""
    glance = ("### The grid at a glance\n\nOne row per architecture and task: for each program, its first "
              "alignment's leading IIA (effective pairs where measured), mean ± sd [95 % interval] over the seeds "
              f"whose net learned the task (trial accuracy >= {TRAINED}; all seeds where none did).")
    return "\n\n".join(part for part in [
        head, glance, grid_table(results), "### Every alignment", main,
        image_link(figs.main_bars(results, out_dir / "figures" / "main_iia.png"), out_dir,
                   "IIA by architecture and task"),
        weak,
        "### Baselines and controls\n\nThe same interventions with raw neurons (identity), the whole state (full "
        "swap) and untrained random rotations (the mean over `random_seeds` subspaces), beside the IIA on all pairs; "
        "*fitted null*: the same DAS, budget and net against the program with its variable's values permuted by a "
        "fixed random bijection (– where not measured); *untrained net*: the same alignment fitted on a freshly "
        "initialised net of the same architecture (`das: {controls: true}`; near 0 for whole-sequence IIA, since an "
        "untrained net emits no task sequence; – where not run). Means over seeds.",
        _table(["arch", "task", "alignment", "IIA", "identity", "full swap", "random", "fitted null", "untrained net"],
               base_rows)] if part)


def sites_section(results) -> str:
    """IIA on effective pairs of each DAS alignment by site, for every architecture and task whose
    cells align one program's variables at several sites (the transformers of ``paper_main``: the
    residual stream, the attention output and the MLP hidden of a block)."""
    rows, columns = [], []
    for (arch, task), cells in grouped(results).items():
        by_variable: dict[str, dict[str, str]] = {}
        for lab in labels_in(cells):
            record = next(alignment_of(r, lab) for r in cells if alignment_of(r, lab))
            if record.get("intervention", "das") != "das" or not record.get("site"):
                continue
            what, _, site = lab.partition("/")
            lead = lead_field(cells, lab)
            by_variable.setdefault(what, {})[site] = fmt_interval(mean_sd(iia_of(r, lab, lead) for r in cells),
                                                                  interval_of(cells, lab, lead))
        for what, sites in by_variable.items():
            if len(sites) > 1:
                columns += [s for s in sites if s not in columns]
                rows.append((arch, task, what, sites))
    if not rows:
        return ""
    table = _table(["arch", "task", "alignment", *columns], [[a, t, w, *(sites.get(c, "–") for c in columns)]
                                                            for a, t, w, sites in rows])
    return ("### IIA by site\n\nWhere in the net a variable is found: IIA on effective pairs [95 % CI] of the same "
            "program variable at each site it was aligned at (`resid.k`: the residual stream after block k; "
            "`attn.k`: block k's attention output before the residual add; `mlp.k`: its MLP hidden after the "
            "activation, 4d wide; the subspace size is the same at every site).\n\n" + table)


DYNAMICS_CONTROLS = ("iia_random", "iia_full_swap")  # the baselines whose r over training controls the DAS one


def dynamics_section(results, out_dir) -> str:
    path = figs.dynamics(results, out_dir / "figures" / "learning_dynamics.png")
    if path is None:
        return ("## Learning dynamics\n\nNot in this study (`configs/studies/learning_dynamics.yaml` records IIA "
                "during training).")
    rows = []
    for r in ok_cells(results):
        acc = r["dynamics"]["accuracy"]
        first_acc = next((a["epoch"] for a in acc if (a.get("val/acc_trial") or 0) >= 0.99), "–")
        for key in sorted({d["key"] for d in r["dynamics"]["das"]}):
            das = sorted((d for d in r["dynamics"]["das"] if d["key"] == key), key=lambda d: d["epoch"])
            first_iia = next((d["epoch"] for d in das if d["iia"] >= 0.9), "–")
            rows.append([r["cell"], key, first_acc, first_iia, f"{das[-1]['iia']:.3f}",
                         " ".join(f"{d['iia']:.2f}" for d in das)])
    corr = []
    for (arch,), cells in sorted(grouped(results, ("arch",)).items()):
        for key in sorted({d["key"] for r in cells for d in r["dynamics"]["das"]}):
            c, *controls = (run_correlation([[(acc, v) for _, acc, v in dynamics_points(r, key, field)] for r in cells])
                            for field in ("iia", *DYNAMICS_CONTROLS))
            spread = fmt(mean_sd(c["per_run"])) if c["per_run"] else "–"
            corr.append([arch, key, c["n_runs"], c["n_checks"], f"{c['r']:.3f} [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]",
                         c["ci_by"], spread,
                         *(f"{b['r']:.3f} [{b['ci'][0]:.3f}, {b['ci'][1]:.3f}]" if b["n_runs"] else "–"
                           for b in controls)])
    return "\n\n".join(["## Learning dynamics\n\nIIA fitted on checkpoints during training (a DAS callback), beside "
                        "task accuracy. The paper: IIA rises and plateaus together with accuracy.",
                        _table(["cell", "alignment", "first epoch acc >= 0.99", "first epoch IIA >= 0.9", "final IIA",
                                "IIA over checks"], rows),
                        "Correlation of val/acc_trial with IIA over training (Pearson r at the epochs with both; the "
                        "untrained check at epoch -1 has no accuracy), per architecture, pooled over seeds. The 95 % "
                        "interval resamples whole runs (checks of one run are not independent); with one run it can "
                        "only resample checks and is too narrow. The paper reports r > 0.95. The controls: the same r "
                        "for the baselines scored at each check (a random rotation of the same size, the whole state "
                        "swapped). A baseline's r as high as the DAS one means that r measures that the net works, "
                        "not that it carries the variable.",
                        _table(["arch", "alignment", "runs", "checks", "r [95 % CI]", "interval by",
                                "r per run (mean ± sd)", "control: r, random rotation", "control: r, full-state swap"],
                               corr),
                        image_link(path, out_dir, "learning dynamics")])


def size_section(results, out_dir, label) -> str:
    path = figs.size_sweep(results, label, out_dir / "figures" / "size_sweep.png") if label else None
    if path is None:
        return "## Model size\n\nNot in this study (`configs/studies/model_size.yaml` sweeps d in {64, ..., 256})."
    rows = [[arch, size, len(cells), fmt(mean_sd(r["fit"].get("val/acc_trial") for r in cells)),
             fmt(mean_sd(r["fit"].get("val/acc_trial_ood") for r in cells)),
             fmt(mean_sd(iia_of(r, label) for r in cells))]
            for (arch, size), cells in sorted(grouped(results, ("arch", "size")).items())]
    return "\n\n".join([f"## Model size\n\nTrial accuracy and IIA of `{label}` against the state width d (the "
                        "subspace is d/8, the reference's 16 of 128).",
                        _table(["arch", "d", "seeds", "trial acc", "OOD acc", f"IIA {label}"], rows),
                        image_link(path, out_dir, "size sweep")])


def gradience_figures(g: dict) -> list[float]:
    """One net's gradience figures: the shift/alpha slope, exactness at whole and half alphas, IIA
    for carried counts <= 10 and > 10, and its own exactness on OOD counts (above 20)."""
    m = g["magnitude"]
    a, shift = np.array(m["alphas"]), np.array(m["shift_mean"])
    whole = np.isclose(a, np.round(a))
    iia = {int(k): v for k, v in g["per_source_value"].items()}
    own = {int(k): v for k, v in m["own"].items()}
    return [float(np.polyfit(a, shift, 1)[0]), float(np.mean(np.array(m["exact"])[whole])),
            float(np.mean(np.array(m["exact"])[~whole])), mean_sd(v for k, v in iia.items() if k <= 10)[0],
            mean_sd(v for k, v in iia.items() if k > 10)[0], mean_sd(v for k, v in own.items() if k > 20)[0]]


def gradience_section(results, out_dir) -> str:
    groups = analysed(results, "gradience")
    if not groups:
        return "## Gradience\n\nNot in this study (analyses: [gradience])."
    path = figs.gradience(groups, out_dir / "figures" / "gradience.png")
    rows = [[arch, task, key, *[fmt_over_seeds(v, 2) for v in zip(*[gradience_figures(g) for g in gs])]]
            for (arch, task, key), gs in groups.items()]
    return "\n\n".join([
        "## Gradience\n\nLeft: IIA by the count the source carries. Middle: the state at the last demo token (a "
        "position DAS trains on) moved by alpha units of the learned count direction (fitted where DAS trains); a "
        "symbol-like count shifts the response by a whole number within 0.5 of alpha, a graded one by alpha on "
        "average with spread. Right: the net's own exactness by count, OOD counts included. Means over the trained "
        "seeds, one row of panels per task. Table, over the trained seeds: slope of the mean shift on alpha, how often "
        "the response length is within 0.5 of count + alpha (the one rule: round(alpha) for whole alphas, either "
        "neighbour for half alphas), IIA for carried counts <= 10 and > 10, and exactness on OOD counts.",
        _table(["arch", "task", "alignment", "shift/alpha slope", "exact (whole alpha)", "exact (half alpha)",
                "IIA count <= 10", "IIA count > 10", "own exact, OOD counts"], rows),
        image_link(path, out_dir, "gradience")])


def read_study(run_dir: Path, field: str = "run_dir") -> tuple[list[dict], dict]:
    """A study directory's cell results (``results.json``, or a published ``results.json.gz``) and
    settings (``study.json``; empty if absent)."""
    path = json_path(run_dir / "results.json")
    if path is None:
        raise ConfigError(f"{field}: {run_dir} has no results.json; run `numsym_pl study --config ...` first")
    results = read_json(path, field)
    if not isinstance(results, list) or not all(isinstance(r, dict) and "cell" in r for r in results):
        raise ConfigError(f"{field}: {path} is not a study's list of cell results")
    return results, read_json(run_dir / "study.json", field) if (run_dir / "study.json").is_file() else {}


def still_to_run(results: list[dict], study: dict) -> str:
    """`` (of the study's N cells; still to run: ...)`` when ``study.json`` names more cells than
    ``results.json`` holds (a study in progress), per architecture and task; else ``""``."""
    per_group = len(study.get("seeds") or []) * len(study.get("sizes") or [None])
    groups = [(a, t) for a in study.get("architectures") or {} for t in study.get("tasks") or {}]
    have = {g: len(cells) for g, cells in grouped(results).items()}
    missing = [(g, per_group - have.get(g, 0)) for g in groups if have.get(g, 0) < per_group]
    if not missing:
        return ""
    return (f" (of the study's {per_group * len(groups)} cells; still to run: "
            + ", ".join(f"{a} {t} {n}" for (a, t), n in missing) + ")")


def write_report(run_dir: str | Path, against: str | Path | None = None, claims: str | Path | None = None) -> Path:
    """Write ``<run_dir>/report.md`` (and ``figures/*.png``) from ``<run_dir>/results.json``;
    ``against``: another study's directory to set beside this one (``analysis.against``);
    ``claims``: the claims file to judge (default: the study's own, ``analysis.claims.claims_file``)."""
    out_dir = Path(run_dir)
    results, study = read_study(out_dir)
    source = claims_file(study, study.get("name", out_dir.name), claims)
    declared = read_claims(source) if source is not None else None
    failed = [r for r in results if "error" in r]
    labels = labels_in(results)
    label = next((lab for lab in labels if lab.startswith("up_down.count")), labels[0] if labels else None)
    source_file = json_path(out_dir / "results.json").name  # results.json.gz where published
    head = [f"# Study report: {study.get('name', out_dir.name)}",
            f"{len(results) - len(failed)} of {len(results)} cells finished{still_to_run(results, study)}; written "
            f"{time.strftime('%Y-%m-%d %H:%M')} by `numsym_pl report {run_dir}` from `{source_file}` (one row per cell "
            "and alignment in `results.csv`; the study's settings in `study.json`)."]
    if failed:
        head.append("Failed cells (see their `fit.log`): "
                    + ", ".join(f"`{r['cell']}` ({r['error'].splitlines()[0]})" for r in failed))
    body = [claims_section(results, declared, source, out_dir),
            main_section(results, out_dir) if ok_cells(results) else "## Main table\n\nNo finished cells.",
            *([share] if (share := seed_share_section(results, out_dir)) else []),
            *([sites] if (sites := sites_section(results)) else []),
            *([rivals] if (rivals := competing_section(results)) else []),
            *([fits] if (fits := fits_section(results, out_dir)) else []),
            *([drift] if (drift := drift_section(results, out_dir)) else []),
            *([mas] if (mas := mas_section(load_mas(out_dir), out_dir)) else []),
            dynamics_section(results, out_dir), size_section(results, out_dir, label),
            gradience_section(results, out_dir), reviewers_section(results, out_dir, label)]
    if against is not None:
        other, other_study = read_study(Path(against), "against")
        body.insert(2, against_section(results, other, study_name(out_dir, study),
                                       study_name(Path(against), other_study), declared))
    path = out_dir / "report.md"
    path.write_text("\n\n".join(head + body) + "\n")
    return path
