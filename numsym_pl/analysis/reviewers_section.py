"""The report's section on the reviewers' questions: each answered per architecture x task x
alignment over the trained seeds (mean, sd and a Student-t 95 % interval over seeds), from the
cells' analyses (``ood_interventions``, ``phase_flips``) and their two-block alignments."""

from __future__ import annotations


from numsym_pl.analysis import study_figures as figs
from numsym_pl.analysis.figures import image_link
from numsym_pl.analysis.summary import (TRAINED, analysed, correlation, iia_of, markdown_table as _table, mean_sd,
                                        ok_cells, fmt_over_seeds, seeds_of)


def ood_part(results, out_dir) -> str:
    groups = analysed(results, "ood_interventions", "by_value")
    if not groups:
        return "### 1. Interventions with counts outside the training range\n\nNot in this study (analyses: " \
               "[ood_interventions])."
    norm = lambda rs, kind: fmt_over_seeds((r["by_value"].get(kind) or {}).get("normalised") for r in rs)
    raw = lambda rs, kind: fmt_over_seeds((r["by_value"].get(kind) or {}).get("iia") for r in rs)
    readout = lambda rs, kind: fmt_over_seeds((r["by_value"].get(kind) or {}).get("readout") for r in rs)
    rows = [[arch, task, key, norm(rs, "trained"), norm(rs, "heldout"), norm(rs, "above_range"), raw(rs, "above_range"),
             readout(rs, "above_range")] for (arch, task, key), rs in groups.items()]
    path = figs.ood_by_value(groups, out_dir / "figures" / "ood_interventions.png")
    return ("### 1. Interventions with counts outside the training range\n\n"
            "The learned rotation, unchanged, on pairs whose source is a training trial, a trial of a held-out count "
            "or one above the range (targets: training trials), regrouped by the value the source carries at i_s. "
            "Held-out counts are never a training trial's total, but a training trial's running count passes through "
            "every value up to its total; only values above the range are new to the variable. Only effective pairs "
            "count. A net that cannot answer L responses cannot answer a patched pair that asks for L: each pair's "
            "*readout* is the net's own accuracy on natural trials of its counterfactual's output length, and "
            "**normalised IIA** is IIA over the mean readout of the same pairs (none where it is below 0.1). Near 1 "
            "above the range: the variable carries the new values as well as the net answers such lengths at all. "
            "The readout is a reference, not a bound: a natural trial of L also has L demo tokens to count, a patched "
            "one fewer, so normalised IIA can exceed 1. Over the trained seeds: mean ± sd [95 % t-interval] (n "
            "seeds).\n\n"
            + _table(["arch", "task", "alignment", "normalised IIA: trained values", "held-out values",
                      "above the range", "raw IIA above the range", "readout above the range"], rows)
            + "\n\n" + image_link(path, out_dir, "OOD interventions by value"))


def two_blocks_part(results, out_dir) -> str:
    groups = {}
    for (arch, task), cells in seeds_of(results).items():
        for r in cells:
            for a in r["alignments"]:
                if len(a.get("variables", [])) > 1 and a["intervention"] == "das":
                    groups.setdefault((arch, task, a["key"]), []).append(a)
    if not groups:
        return ("### 2. Two variables intervened together (two blocks), e.g. count and phase\n\nNot in this study "
                "(an alignment with two variables, e.g. `variables: [count, phase]`).")
    fields = lambda a: [a.get("iia_effective"), a.get("iia_full_swap"),
                        *[(a.get("iia_alone") or {}).get(v) for v in a["variables"][:2]],
                        ((a.get("controls") or {}).get("null") or {}).get("iia_effective")]
    rows, bars = [], []
    for (arch, task, key), records in groups.items():
        values = list(zip(*[fields(a) for a in records]))
        rows.append([arch, task, key, *[fmt_over_seeds(v) for v in values]])
        means = [mean_sd(v)[0] if mean_sd(v)[2] else 0 for v in values[:4]]
        bars.append((f"{arch} {task}\n{key.split('/')[0]}", means))
    path = figs.grouped_bars(bars, ["both blocks", "full-state swap", "first alone", "second alone"],
                             "Two variables, two blocks (mean over trained seeds)",
                             out_dir / "figures" / "count_and_phase.png")
    return ("### 2. Two variables intervened together (two blocks), e.g. count and phase\n\n"
            "One block of the rotation per variable, trained on pairs that intervene on a random non-empty subset of "
            "the variables, so that each block has to carry its own variable; each block alone is scored on pairs "
            "that intervene on that variable only (cause and isolation: what it must change, and what it must leave "
            "alone). Where the variables are the program's whole state (Up-Down's count and phase), swapping both "
            "blocks asks of two subspaces what the full-state swap does with the whole state: a net that solves the "
            "task can score high on it by keeping what matters for its answer within the blocks, however it splits "
            "it, so that column shows that the state fits, and the *alone* columns whether it splits into the "
            "program's variables. Over the trained seeds; the null is the fit against permuted values.\n\n"
            + _table(["arch", "task", "alignment", "IIA both blocks (effective pairs)", "full-state swap (all pairs)",
                      "first variable alone", "second variable alone", "null (effective pairs)"], rows)
            + "\n\n" + image_link(path, out_dir, "count and phase"))


def flips_part(results, out_dir) -> str:
    groups = analysed(results, "phase_flips", "unpatched")
    if not groups:
        return ("### 3. Repeated phase flips within one sequence\n\nNot in this study (analyses: [phase_flips] "
                "with an Up-Down alignment holding `phase`, on a recurrent net).")
    ks = sorted({int(k) for rs in groups.values() for r in rs for k in r["iia"]})
    at = lambda r, name, k: r[name].get(k, r[name].get(str(k)))  # JSON keys are text
    rows = [[arch, task, key, *[fmt_over_seeds(at(r, "iia", k) for r in rs) for k in ks],
             fmt_over_seeds(max(at(r, "unpatched", k) for k in ks) for r in rs)]
            for (arch, task, key), rs in groups.items()]
    path = figs.flips_by_count(groups, ks, out_dir / "figures" / "phase_flips.png")
    return ("### 3. Repeated phase flips within one sequence\n\n"
            "Only the phase block is swapped, k times in one sequence: after the demo tokens to the response phase "
            "(Up-Down then predicts R's without a T), after some R's back to the demo phase (the count rises again), "
            "and so on; every R read after a flip to response and the final answer are scored, exactly. The "
            "unpatched control reads the same tokens with no intervention (its column: the highest over k). Over the "
            "trained seeds.\n\n"
            + _table(["arch", "task", "alignment", *[f"{k} flip{'s' if k > 1 else ''}" for k in ks],
                      "unpatched (max over k)"], rows)
            + "\n\n" + image_link(path, out_dir, "phase flips"))


def ood_accuracy_part(results, out_dir, label) -> str:
    points = [(r["arch"], r["task"], iia_of(r, label), r["fit"].get("val/acc_trial_ood"), r["fit"].get("val/acc_trial"))
              for r in ok_cells(results)] if label else []
    points = [p for p in points if p[2] is not None and p[3] is not None and (p[4] or 0) >= TRAINED]
    if len(points) < 3:
        return ("### 4. Does IIA predict OOD task accuracy?\n\nNeeds at least 3 trained cells with the same alignment "
                "(`configs/studies/model_size.yaml` varies seeds and sizes).")
    ci = lambda c, k: "[{:.2f}, {:.2f}]".format(*c[k])
    rows = []
    for task in sorted({p[1] for p in points}):
        in_task = [p for p in points if p[1] == task]
        archs = sorted({p[0] for p in in_task})
        for name, sel in [("all", in_task)] + [(a, [p for p in in_task if p[0] == a]) for a in archs]:
            c = correlation([p[2] for p in sel], [p[3] for p in sel])
            rows.append([task, name, c["n"], f"{c['r']:.2f}", ci(c, "ci_boot"), ci(c, "ci_fisher")])
    c = correlation([p[2] for p in points], [p[3] for p in points])
    path = figs.correlation([(p[0], p[2], p[3]) for p in points], c, label, out_dir / "figures" / "iia_vs_ood.png")
    return (f"### 4. Does IIA predict OOD task accuracy?\n\nPearson r between the IIA of `{label}` and "
            "`val/acc_trial_ood` over trained cells (seeds and sizes) within each task, pooled over architectures and "
            "per architecture, with 95 % bootstrap and Fisher-z intervals (NaN: fewer than 3 cells or no spread). An "
            "interval that spans 0 says the cells do not tell.\n\n"
            + _table(["task", "architectures", "n", "r", "95 % CI (bootstrap)", "95 % CI (Fisher z)"], rows)
            + "\n\n" + image_link(path, out_dir, "IIA vs OOD accuracy"))


def reviewers_section(results, out_dir, label) -> str:
    intro = ("## The reviewers' questions\n\nEach figure is over the trained seeds of an architecture and task (trial "
             f"accuracy >= {TRAINED}); a group none of whose nets trained shows all its seeds and is marked untrained.")
    return "\n\n".join([intro, ood_part(results, out_dir), two_blocks_part(results, out_dir),
                        flips_part(results, out_dir), ood_accuracy_part(results, out_dir, label)])
