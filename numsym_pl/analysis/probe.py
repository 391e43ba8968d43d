"""Linear decodability of a program's variables from a site, and a PCA picture of the states.

Used for the Same-Object puzzle: if DAS finds no alignment, is the information there at all?
Every variable is read out by least squares (R² and exact-integer accuracy after rounding); a
two-valued variable (e.g. Up-Down's ``phase``) also by a least-squares linear classifier on ±1
targets (accuracy). Fitted on half of the trials, scored on the other half. The states are taken
where the task allows an intervention or scores a prediction (numeric equivalence: every demo-phase,
T and response position, up to the last R).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from numsym_pl.analysis.figures import pca_scatter
from numsym_pl.programs import TokenKinds, get_program
from numsym_pl.tasks import TaskFamily


def collect_states(net, task: TaskFamily, site: str, n_trials: int = 600, seed: int = 0, program: str = "up_down"):
    """(states [M, d], {variable: values [M]}, trial ids [M]) at the probed positions of fresh trials."""
    prog = get_program(program)
    prog.check_task(task)
    rng = np.random.default_rng(seed)
    trials = task.sample("train", n_trials, rng)
    state, _ = prog.trace(trials.tokens, TokenKinds.of(task), trials.quantities)
    keep = trials.intervenable.copy()
    keep[:, :-1] |= trials.scored  # the inputs whose prediction is scored (numeric equivalence: T and the R's)
    with torch.no_grad():
        h = net.states(torch.as_tensor(trials.tokens, device=next(net.parameters()).device), site)
    trial_id = np.broadcast_to(np.arange(n_trials)[:, None], keep.shape)[keep]
    return h[torch.as_tensor(keep)].float().cpu(), {v: state[v][keep] for v in prog.variables}, trial_id


def _fit_predict(X_tr, y_tr, X_te):
    add1 = lambda X: torch.cat([X, torch.ones(len(X), 1)], 1)
    w = torch.linalg.lstsq(add1(X_tr).double(), y_tr.double()[:, None]).solution
    return (add1(X_te).double() @ w)[:, 0]


def linear_decodability(net, task: TaskFamily, site: str, n_trials: int = 600, seed: int = 0,
                        program: str = "up_down") -> dict:
    """{"site", "program", "n_states", and per variable v: "<v>_r2", "<v>_exact_acc" (and
    "<v>_acc" for a two-valued v)}."""
    X, values, trial = collect_states(net, task, site, n_trials, seed, program)
    train = torch.as_tensor(trial < n_trials // 2)
    out = {"site": site, "program": program, "n_states": int(len(X))}
    for var, v in values.items():
        y = torch.as_tensor(v)
        pred = _fit_predict(X[train], y[train], X[~train])
        resid, spread = ((pred - y[~train]) ** 2).sum(), ((y[~train] - y[~train].double().mean()) ** 2).sum()
        out[f"{var}_r2"] = float(1 - resid / spread) if spread > 0 else float("nan")
        out[f"{var}_exact_acc"] = float((pred.round() == y[~train]).double().mean())
        levels = torch.unique(y)
        if len(levels) == 2:
            hi = y == levels[1]
            clf = _fit_predict(X[train], hi[train] * 2.0 - 1, X[~train]) > 0
            out[f"{var}_acc"] = float((clf == hi[~train]).double().mean())
    return out


def pca_figure(net, task: TaskFamily, site: str, path: str | Path, n_trials: int = 300, seed: int = 0,
               program: str = "up_down") -> Path:
    X, values, _ = collect_states(net, task, site, n_trials, seed, program)
    first, *rest = values.values()
    Xc = X - X.mean(0)
    _, S, V = torch.linalg.svd(Xc, full_matrices=False)
    Z = (Xc @ V[:2].T).numpy()
    explained = (S[:2] ** 2 / (S**2).sum()).numpy()
    title = (f"{type(net).__name__} {site} on {getattr(task, 'variant', task.family)} "
             f"(PC1 {explained[0]:.0%}, PC2 {explained[1]:.0%})")
    return pca_scatter(Z, first, rest[0] if rest else np.zeros_like(first), title, path)
