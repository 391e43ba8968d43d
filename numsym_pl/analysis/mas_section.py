"""Model alignment search (MAS) results as tables and figures: the table ``numsym_pl mas`` prints
for one pair of nets, the matrix figure (``mas_matrix.png``: cross-model IIA, with CKA and RSA
panels beside it), and a report section (``mas_section``) built from ``mas_matrix.json`` or
``mas_result.json`` records (``load_mas`` finds them in a study's ``mas/`` directory)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from numsym_pl.analysis.figures import subplots
from numsym_pl.analysis.summary import markdown_table
from numsym_pl.das.model_alignment.matrix import matrix_record

#: the files ``numsym_pl mas`` writes, which ``load_mas`` looks for
RESULT_FILE, MATRIX_FILE, FIGURE_FILE = "mas_result.json", "mas_matrix.json", "mas_matrix.png"


def _ci(value, interval, digits: int = 3) -> str:
    if value is None:
        return "–"
    if not interval:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def direction_rows(record: dict) -> list[list[str]]:
    """One row per direction of a pair record: IIA, floor, IIA on effective pairs, and the null's
    IIA, each with its 95 % Wilson interval; ``*`` marks a direction the fit trained on."""
    nets, trained = record["nets"], set(record.get("trained_directions") or [])
    null = (record.get("null") or {}).get("directions") or {}
    rows = []
    for name, d in record["directions"].items():
        s, t = name.split("->")
        label = f"{nets[s]['label']} -> {nets[t]['label']}" + (" *" if name in trained else "")
        n = null.get(name) or {}
        rows.append([label, _ci(d["iia"], d["interval"]), _ci(d["iia_none"], d["none_interval"]),
                     f"{_ci(d['iia_effective'], d['effective_interval'])} (n={d['n_effective']})",
                     _ci(n.get("iia"), n.get("interval"))])
    return rows


HEADER = ["source -> target", "IIA [95 % CI]", "floor (no patch)", "IIA, effective pairs", "null (values permuted)"]


def similarity_line(record: dict) -> str:
    sim = record["similarity"]
    plain = "" if sim.get("cka_biased") is None else f" (plain estimator {sim['cka_biased']:.3f})"
    return (f"linear CKA, debiased {_ci(sim['cka'], sim.get('cka_interval'))}{plain}; RSA (Spearman, {sim['rdm']} "
            f"RDMs) {_ci(sim['rsa'], sim.get('rsa_interval'))}; bootstrap 95 % intervals over {sim['n_states']} "
            f"distinct source states")


def format_mas(record: dict) -> str:
    """A pair record as the text ``numsym_pl mas`` prints: what was aligned, a row per direction,
    CKA and RSA."""
    a, b = record["nets"]["a"], record["nets"]["b"]
    fit = record["fit"]
    head = (f"MAS {record['program']}.{'+'.join(record['variables'])}, subspace {record['subspace']} "
            f"({record['featurizer']}): A = {a['label']} ({a['arch']} {a['site']}, d={a['width']}), "
            f"B = {b['label']} ({b['arch']} {b['site']}, d={b['width']}); {record['pairs']['test']} test pairs; "
            f"fit {fit['steps']} steps ({fit['stopped']}, kept step {fit['best_step']})")
    widths = [max(len(str(r[i])) for r in [HEADER, *direction_rows(record)]) for i in range(len(HEADER))]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths))
    body = [line(HEADER), *[line(r) for r in direction_rows(record)]]
    return "\n".join([head, *body, "(* trained on)", similarity_line(record)])


def _heatmap(ax, values, labels, title: str, vmin: float = 0.0, vmax: float = 1.0, null=None) -> None:
    k = len(labels)
    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap="viridis")
    for i in range(k):
        for j in range(k):
            if not np.isnan(grid[i, j]):
                text = f"{grid[i, j]:.2f}"
                if null is not None and null[i][j] is not None:
                    text += f"\n(null {null[i][j]:.2f})"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 0.6 * vmax else "black")
    ax.set_xticks(range(k), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def mas_figure(matrix: dict, path: str | Path) -> Path:
    """Cross-model IIA (rows: source net, columns: target net; the diagonal within-net IIA, each
    off-diagonal entry with its null) beside linear CKA and RSA of the same states."""
    labels, path = matrix["labels"], Path(path)
    size = max(3.2, 0.9 * len(labels) + 1.6)
    fig, axes = subplots(1, 3, figsize=(3 * size + 1, size))
    _heatmap(axes[0], matrix["iia"], labels, "cross-model IIA (source row -> target column)", null=matrix["iia_null"])
    axes[0].set(ylabel="source", xlabel="target")
    for ax, name, title in ((axes[1], "cka", "linear CKA (debiased)"), (axes[2], "rsa", "RSA (Spearman of RDMs)")):
        low = np.nanmin(np.array(matrix[name], dtype=float))  # a debiased CKA or an RSA can fall below 0
        _heatmap(ax, matrix[name], labels, title, vmin=min(0.0, low))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def load_mas(run_dir: str | Path, under: str = "mas") -> list[dict]:
    """The MAS records in ``run_dir/under`` (``mas_matrix.json`` and ``mas_result.json`` files, any
    depth; a study keeps them in ``<study>/mas/``, ``numsym_pl mas --out``), in path order; none when
    there are none."""
    root = Path(run_dir) / under
    found = sorted(root.rglob(MATRIX_FILE)) + sorted(root.rglob(RESULT_FILE))
    return [json.loads(p.read_text()) for p in found]


def _as_matrices(results) -> list[dict]:
    """Matrix records from a matrix record, a pair record, or a list of either (the pair records
    not inside a matrix are gathered into one matrix per program, variables and task)."""
    results = [results] if isinstance(results, dict) else list(results or [])
    matrices = [r for r in results if r.get("kind") == "mas_matrix"]
    groups: dict[tuple, list[dict]] = {}
    for r in (r for r in results if r.get("kind") == "mas"):
        groups.setdefault((r["program"], tuple(r["variables"]), r["task_family"]), []).append(r)
    for records in groups.values():
        labels = list(dict.fromkeys(net["label"] for r in records for net in r["nets"].values()))
        matrices.append(matrix_record(labels, records))
    return matrices


def _spread(values: list[float]) -> str:
    """``mean (min–max)`` of ``values``; ``–`` when none."""
    v = [x for x in values if x is not None]
    if not v:
        return "–"
    return f"{np.mean(v):.3f}" + ("" if len(v) == 1 else f" ({min(v):.3f}–{max(v):.3f})")


def arch_pair_rows(matrix: dict) -> list[list[str]]:
    """One row per pair of architectures (GRU ~ GRU, GRU ~ LSTM, ...): how many pairs of nets and
    cross-model directions, the cross-model IIA (mean and range over directions), the nulls' and
    floors' means, the within-net IIA of the same fits, CKA and RSA (mean and range over pairs).
    Directions share nets and fits, so no interval is drawn over them; each has its own below."""
    groups: dict[tuple[str, str], dict[str, list]] = {}
    for rec in matrix["pairs"]:
        nets = rec["nets"]
        g = groups.setdefault(tuple(sorted((nets["a"]["arch"], nets["b"]["arch"]))),
                              {"pairs": 0, "cross": [], "null": [], "floor": [], "within": [], "cka": [], "rsa": []})
        g["pairs"] += 1
        null = (rec.get("null") or {}).get("directions") or {}
        for name, d in rec["directions"].items():
            s, t = name.split("->")
            if s == t:
                g["within"].append(d["iia"])
                continue
            g["cross"].append(d["iia"])
            g["floor"].append(d["iia_none"])
            g["null"].append((null.get(name) or {}).get("iia"))
        g["cka"].append(rec["similarity"]["cka"])
        g["rsa"].append(rec["similarity"]["rsa"])
    return [[" ~ ".join(archs), str(g["pairs"]), str(len(g["cross"])), _spread(g["cross"]), _spread(g["null"]),
             _spread(g["floor"]), _spread(g["within"]), _spread(g["cka"]), _spread(g["rsa"])]
            for archs, g in sorted(groups.items())]


ARCH_HEADER = ["architectures", "pairs of nets", "directions", "cross-model IIA, mean (range)", "null", "floor",
               "within-net IIA", "CKA", "RSA"]


def mas_section(results, out_dir: str | Path) -> str | None:
    """The report's MAS section: per matrix, its figure (``figures/mas_matrix[_k].png`` under
    ``out_dir``) and a row per pair and direction; None when ``results`` hold no MAS record."""
    matrices = _as_matrices(results)
    if not matrices:
        return None
    out_dir = Path(out_dir)
    parts = ["## Model alignment search",
             "Cross-model IIA: one net's subspace written into another's state through a featurizer per net, "
             "both fitted jointly (MAS); each figure with its 95 % Wilson interval, the floor of the unpatched "
             "target and the same fit against the program with the variable's values permuted (null). "
             "CKA and RSA compare the same states without intervening."]
    for k, m in enumerate(matrices):
        name = "mas_matrix.png" if k == 0 else f"mas_matrix_{k}.png"
        figure = mas_figure(m, out_dir / "figures" / name)
        parts.append(f"### {m['program']}.{'+'.join(m['variables'] or [])}, subspace {m['subspace']} "
                     f"({m['task_family']})")
        parts.append(f"![MAS matrix]({figure.relative_to(out_dir)})")
        parts.append("By architecture (a net's own fits give the within-net IIA; directions share nets and fits, "
                     "so ranges, not intervals, are drawn over them):")
        parts.append(markdown_table(ARCH_HEADER, arch_pair_rows(m)))
        rows = []
        for rec in m["pairs"]:
            rows += [[*row, _ci(rec["similarity"]["cka"], rec["similarity"].get("cka_interval")),
                      _ci(rec["similarity"]["rsa"], rec["similarity"].get("rsa_interval"))]
                     for row in direction_rows(rec)]
        parts.append(markdown_table([*HEADER, "CKA", "RSA"], rows))
    return "\n\n".join(parts)
