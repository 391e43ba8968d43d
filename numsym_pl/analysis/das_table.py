"""An alignment's record (``das_result.json``) as the two-column table ``numsym_pl das`` prints."""

from __future__ import annotations


def control_rows(controls: dict | None) -> list[tuple]:
    """The controls' rows: random subspaces over seeds, the untrained net."""
    rows, controls = [], controls or {}
    if "random_subspace" in controls:
        r = controls["random_subspace"]
        rows.append((f"random subspaces ({len(r['values'])} seeds), mean ± sd", f"{r['mean']:.3f} ± {r['sd']:.3f}"))
    if "untrained" in controls:
        u, ci = controls["untrained"], controls["untrained"].get("intervals") or {}
        rows += [("untrained net: IIA on effective pairs", (u.get("iia_effective"), ci.get("iia_effective"))),
                 ("untrained net: IIA, all pairs", (u.get("iia"), ci.get("iia"))),
                 ("untrained net: IIA without intervention", (u.get("iia_none"), ci.get("iia_none")))]
    return rows


def null_rows(controls: dict | None) -> list[tuple]:
    """The permuted-value null (``controls.null``), to read beside IIA: the same fit against the
    program with the intervened values permuted."""
    null = (controls or {}).get("null")
    if not null:
        return []
    ci = null.get("intervals") or {}
    return [(f"null (values permuted): IIA on effective pairs ({null.get('n_effective')} of {null.get('n')})",
             (null.get("iia_effective"), ci.get("iia_effective"))),
            ("null (values permuted): IIA, all held-out pairs", (null.get("iia"), ci.get("iia")))]


def cause_rows(scores: dict | None) -> list[tuple]:
    """RAVEL's cause and isolation, intervening on every variable (``all``) and on each alone."""
    rows = []
    for which, s in (scores or {}).items():
        where = "all variables" if which == "all" else f"{which} alone"
        rows += [(f"cause, {where} ({s['n_cause']} pairs)", (s["cause"], s["cause_ci"])),
                 (f"isolation, {where} ({s['n_isolation']} pairs)", (s["isolation"], s["isolation_ci"]))]
    return rows


def drift_rows(drift: dict | None) -> list[tuple]:
    """The drift of the patched states per swap: kNN, Mahalanobis and EMD ratios to natural
    states (1 = as natural as natural states)."""
    names = {"das": "learned swap", "full": "full-state swap", "random": "random rotation"}
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    return [(f"drift, {label}: kNN / Mahalanobis / EMD (natural = 1)",
             " / ".join(fmt(drift[swap].get(m)) for m in ("knn", "mahalanobis", "emd")))
            for swap, label in names.items() if (drift or {}).get(swap)]


def seed_rows(result: dict) -> list[tuple]:
    """Each DAS seed's IIA with its interval and how its fit stopped, and the summary over seeds."""
    rows = [(f"DAS seed {r['seed']}: IIA ({r['stopped']}, best at step {r['best_step']})", (r["iia"], r["interval"]))
            for r in result.get("replicates") or []]
    over = result.get("over_seeds")
    if over:
        rows.append((f"IIA over {over['n']} DAS seeds: mean ± sd [95 % t-interval]",
                     f"{over['mean']:.3f} ± {over['sd']:.3f} [{over['interval'][0]:.3f}, {over['interval'][1]:.3f}]"))
    return rows


def format_table(result: dict) -> str:
    """The result as a two-column table; an IIA with its 95 % interval over the test pairs."""
    ci = result.get("intervals") or {}
    iia = lambda field: (result.get(field), ci.get(field))
    featurizer = (result.get("alignment") or {}).get("featurizer")
    rows = [("intervention", result["intervention"]), *([("featurizer", featurizer)] if featurizer else []),
            ("program", result["program"]), ("variables", "+".join(result["variables"])), ("site", result["site"]),
            ("subspace", result["subspace"]),
            (f"IIA on effective pairs ({result.get('n_effective')} of {result.get('n')})", iia("iia_effective")),
            ("IIA, all held-out pairs", iia("iia")), *null_rows(result.get("controls")),
            ("IIA without intervention (floor)", iia("iia_none")),
            ("discriminating (floor below the interval)", result.get("discriminating")),
            ("IIA identity (raw neurons)", iia("iia_identity")), ("IIA full-state swap", iia("iia_full_swap")),
            ("IIA random rotation", iia("iia_random")),
            *[(f"IIA {var} alone", v) for var, v in (result.get("iia_alone") or {}).items()],
            *[(f"learned {k}", v) for k, v in (result.get("featurizer_fit") or {}).items()],
            *control_rows(result.get("controls")),
            *cause_rows(result.get("cause_isolation")), *drift_rows(result.get("drift")),
            *([("counterfactual-latent loss: weight (target), pairs covered",
                f"{cl['weight']:g} ({cl.get('target')}), {cl['coverage']:.3f}")] if (cl := result.get("cl")) else []),
            *[(f"distinguishable from {d['second']}: labels differ on", (d["differ"], d["interval"]))
              for d in result.get("distinguishability") or []],
            *([("held-out candidates dropped as repeats of earlier pairs",
                ", ".join(f"{name} {share:.3f}" for name, share in removed.items()))]
              if (removed := result.get("pairs_removed")) else []),
            ("steps", result["steps"]), ("stopped", result.get("stopped")),
            ("best step (kept)", result.get("best_step")), *seed_rows(result), ("seconds", result["seconds"])]

    def fmt(v):
        if isinstance(v, tuple):
            value, bounds = v
            return fmt(value) + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds and value is not None else "")
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {fmt(v)}" for k, v in rows)
