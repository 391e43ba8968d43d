"""Draw docs/figures/interchange.png: one interchange intervention on a GRU state, step by step.

    python docs/figures/make_interchange_figure.py

The states are those of a small untrained GRU (8 units, seeded) and the rotation is a random
orthogonal matrix (DAS learns it): the figure shows what is computed, not a trained net's numbers.
The tokens, positions and labels are those of the Up-Down program on Multi-Object.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle

OUT = Path(__file__).with_name("interchange.png")
D, K = 8, 2  # state width, swapped coordinates
VOCAB = ["P", "B", "E", "T", "R", "D0", "D1", "D2"]
SOURCE = ["B", "D0", "D2", "D1", "D0", "D1", "T", "R", "R", "R", "R", "R", "E"]  # n = 5
TARGET = ["B", "D1", "D0", "D2", "T", "R", "R", "R", "E"]  # n = 3
I_S, I_T = 5, 5  # source: after its 5th demo token (count 5); target: after its first R (count 3 - 1 = 2)
SRC_COLOR, TGT_COLOR, NEW_COLOR = "#d95f02", "#1b9e77", "#7570b3"


def up_down_counts(tokens: list[str]) -> list[int]:
    """Up-Down's ``count`` after reading each token: +1 per demo token, -1 per R read."""
    count, out = 0, []
    for tok in tokens:
        count += tok.startswith("D") - (tok == "R")
        out.append(count)
    return out


def gru_states(tokens: list[str]) -> np.ndarray:
    """[L, D] hidden states of a seeded, untrained 8-unit GRU reading ``tokens``."""
    torch.manual_seed(3)
    embed, gru = torch.nn.Embedding(len(VOCAB), D), torch.nn.GRU(D, D, batch_first=True)
    ids = torch.tensor([[VOCAB.index(t) for t in tokens]])
    with torch.no_grad():
        return gru(embed(ids))[0][0].numpy()


def strip(ax, values, x0, y0, w, h, cmap, norm, edge=None, vertical=True):
    """Draw ``values`` as a strip of cells from (x0, y0)."""
    for j, v in enumerate(values):
        x, y = (x0, y0 - (j + 1) * h) if vertical else (x0 + j * w, y0)
        ax.add_patch(Rectangle((x, y), w, h, facecolor=cmap(norm(v)), edgecolor="white", lw=0.6))
    if edge is not None:
        n = len(values)
        box = (x0, y0 - n * h, w, n * h) if vertical else (x0, y0, n * w, h)
        ax.add_patch(Rectangle(box[:2], *box[2:], fill=False, edgecolor=edge, lw=2.2))


def run_row(ax, tokens, states, counts, i, y, color, title):
    """One trial: tokens, the GRU state under each token, Up-Down's count; position i framed."""
    cmap, norm = plt.get_cmap("RdBu_r"), plt.Normalize(-1, 1)
    ax.text(0, y + 0.9, title, fontsize=11, weight="bold", va="bottom")
    for t, tok in enumerate(tokens):
        x = t * 0.62
        ax.text(x + 0.25, y + 0.45, tok, ha="center", va="center", fontsize=9, family="monospace",
                weight="bold" if t == i else "normal", color=color if t == i else "black")
        strip(ax, states[t], x, y, 0.5, 0.32, cmap, norm, edge=color if t == i else None)
        ax.text(x + 0.25, y - D * 0.32 - 0.25, str(counts[t]), ha="center", va="center", fontsize=8, color="0.3")
    ax.text(-0.15, y - D * 0.32 - 0.25, "count", ha="right", va="center", fontsize=8, color="0.3")
    ax.text(-0.15, y - D * 0.32 / 2, "h", ha="right", va="center", fontsize=10, style="italic")


def main() -> None:
    hs, ht = gru_states(SOURCE), gru_states(TARGET)
    rng = np.random.default_rng(0)
    w, _ = np.linalg.qr(rng.standard_normal((D, D)))  # a random rotation; DAS learns this one
    zs, zt = hs[I_S] @ w, ht[I_T] @ w
    z_new = np.concatenate([zs[:K], zt[K:]])
    h_new = z_new @ w.T
    cs, ct = up_down_counts(SOURCE), up_down_counts(TARGET)

    fig = plt.figure(figsize=(14, 7.2))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(-2.2, 21)
    ax.set_ylim(-9.6, 5.5)
    ax.axis("off")

    run_row(ax, SOURCE, hs, cs, I_S, 4.0, SRC_COLOR, "1. Run the net on the source trial; read its state h_s at i_s")
    run_row(ax, TARGET, ht, ct, I_T, -1.6, TGT_COLOR, "2. Run it on the target trial to i_t; its state is h_t")

    # right half: rotate, swap, rotate back
    cmap, norm = plt.get_cmap("RdBu_r"), plt.Normalize(-1, 1)
    x0, cw = 10.2, 0.55
    ax.text(x0, 4.9, "3. Rotate both states: z = h W  (W orthogonal, learned by DAS)", fontsize=11, weight="bold")
    for row, (z, color, name) in enumerate(((zs, SRC_COLOR, "z_s"), (zt, TGT_COLOR, "z_t"))):
        y = 4.0 - row * 0.9
        ax.text(x0 - 0.2, y + 0.2, name, ha="right", va="center", fontsize=10, style="italic", color=color)
        strip(ax, z, x0, y, cw, 0.42, cmap, norm, vertical=False)
        ax.add_patch(Rectangle((x0, y), K * cw, 0.42, fill=False, edgecolor=color, lw=2.2))
    ax.text(x0 + K * cw / 2, 3.0, f"the first k = {K} coordinates", ha="left", va="top", fontsize=8)

    ax.text(x0, 2.2, "4. Interchange: the source's first k coordinates, the target's rest",
            fontsize=11, weight="bold")
    y = 1.35
    ax.text(x0 - 0.2, y + 0.2, "z'", ha="right", va="center", fontsize=10, style="italic", color=NEW_COLOR)
    strip(ax, z_new, x0, y, cw, 0.42, cmap, norm, vertical=False)
    ax.add_patch(Rectangle((x0, y), K * cw, 0.42, fill=False, edgecolor=SRC_COLOR, lw=2.2))
    ax.add_patch(Rectangle((x0 + K * cw, y), (D - K) * cw, 0.42, fill=False, edgecolor=TGT_COLOR, lw=2.2))
    ax.text(x0 + D * cw + 0.3, y + 0.2, "= [z_s[:k], z_t[k:]]", va="center", fontsize=10, family="monospace")

    ax.text(x0, 0.2, "5. Rotate back, h' = z' Wᵀ; the net goes on from h' at i_t",
            fontsize=11, weight="bold")
    y = -0.65
    ax.text(x0 - 0.2, y + 0.2, "h'", ha="right", va="center", fontsize=10, style="italic", color=NEW_COLOR)
    strip(ax, h_new, x0, y, cw, 0.42, cmap, norm, vertical=False, edge=NEW_COLOR)
    ax.text(x0 + D * cw + 0.3, y + 0.2, "= h_t + (h_s - h_t) W_k W_kᵀ", va="center", fontsize=10, family="monospace")
    ax.add_patch(FancyArrowPatch((x0 - 0.4, y + 0.2), (I_T * 0.62 + 0.5, -1.6 - 0.1), connectionstyle="arc3,rad=-0.2",
                                 arrowstyle="-|>", mutation_scale=14, color=NEW_COLOR, lw=1.6))

    # bottom: the program's label
    ax.text(0, -6.0,
            "6. Score it against the program: Up-Down with the target's count (2) replaced by the source's (5)",
            fontsize=11, weight="bold")
    prefix = TARGET[: I_T + 1]
    label = prefix + ["R"] * cs[I_S] + ["E"]
    plain = TARGET
    for row, (seq, name, color) in enumerate(((label, "label", NEW_COLOR),
                                              (plain, "no intervention", "0.4"))):
        y = -6.9 - row * 0.8
        ax.text(-0.15, y, name, ha="right", va="center", fontsize=9, color=color)
        for t, tok in enumerate(seq):
            scored = t > I_T
            ax.text(t * 0.62 + 0.25, y, tok, ha="center", va="center", fontsize=10, family="monospace",
                    color=color if scored else "0.55", weight="bold" if scored else "normal")
    ax.text(0, -8.75, "The pair counts as correct when the net's greedy continuation after i_t is the whole label "
            "(here 5 more R's, then E). IIA is the fraction of held-out pairs that are correct.\n"
            "A pair whose label equals the target's own continuation is a no-op: it tests nothing, and the "
            "floor (no intervention) scores it.", fontsize=9, va="top", color="0.2")
    ax.text(20.9, -6.0, "an untrained 8-unit GRU and a random W:\nthe computation, not a measurement",
            ha="right", va="bottom", fontsize=7, color="0.5")
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
