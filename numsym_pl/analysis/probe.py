"""Linear decodability of program variables from a site, and a PCA picture of the states.

Used for the Same-Object puzzle: if DAS finds no alignment, is the information there at all?
``count`` (Up-Down) is read out by least squares (R² and exact-integer accuracy after rounding);
``phase`` by a least-squares linear classifier on ±1 targets (accuracy). Both are fitted on half of
the trials and scored on the other half.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from numsym_pl.analysis.figures import pca_scatter
from numsym_pl.programs import TokenKinds, get_program
from numsym_pl.tasks import NumericEquivalence


def collect_states(net, task: NumericEquivalence, site: str, n_trials: int = 600, seed: int = 0):
    """States [M, d] at every demo-phase, T and response position of fresh trials, with the
    Up-Down ``count`` and ``phase`` there and the trial id."""
    rng = np.random.default_rng(seed)
    trials = task.sample("train", n_trials, rng)
    state, _ = get_program("up_down").trace(trials.tokens, TokenKinds.of(task), trials.quantities)
    j = np.arange(trials.tokens.shape[1])[None]
    keep = (j >= 1) & (j <= (trials.trigger + trials.count)[:, None])  # up to the last R, before E
    with torch.no_grad():
        h = net.states(torch.as_tensor(trials.tokens, device=next(net.parameters()).device), site)
    keep_t = torch.as_tensor(keep)
    trial_id = np.broadcast_to(np.arange(n_trials)[:, None], keep.shape)[keep]
    return h[keep_t].float().cpu(), state["count"][keep], state["phase"][keep], trial_id


def _fit_predict(X_tr, y_tr, X_te):
    add1 = lambda X: torch.cat([X, torch.ones(len(X), 1)], 1)
    w = torch.linalg.lstsq(add1(X_tr).double(), y_tr.double()[:, None]).solution
    return (add1(X_te).double() @ w)[:, 0]


def linear_decodability(net, task: NumericEquivalence, site: str, n_trials: int = 600, seed: int = 0) -> dict:
    X, count, phase, trial = collect_states(net, task, site, n_trials, seed)
    train = torch.as_tensor(trial < n_trials // 2)
    c, ph = torch.as_tensor(count), torch.as_tensor(phase)
    pred = _fit_predict(X[train], c[train], X[~train])
    resid = ((pred - c[~train]) ** 2).sum()
    r2 = 1 - resid / ((c[~train] - c[~train].double().mean()) ** 2).sum()
    exact = (pred.round() == c[~train]).double().mean()
    ph_pred = _fit_predict(X[train], ph[train] * 2.0 - 1, X[~train]) > 0
    return {"site": site, "count_r2": float(r2), "count_exact_acc": float(exact),
            "phase_acc": float((ph_pred == ph[~train].bool()).double().mean()), "n_states": int(len(X))}


def pca_figure(net, task: NumericEquivalence, site: str, path: str | Path, n_trials: int = 300, seed: int = 0) -> Path:
    X, count, phase, _ = collect_states(net, task, site, n_trials, seed)
    Xc = X - X.mean(0)
    _, S, V = torch.linalg.svd(Xc, full_matrices=False)
    Z = (Xc @ V[:2].T).numpy()
    explained = (S[:2] ** 2 / (S**2).sum()).numpy()
    title = f"{type(net).__name__} {site} on {getattr(task, 'variant', task.family)} (PC1 {explained[0]:.0%}, PC2 {explained[1]:.0%})"
    return pca_scatter(Z, count, phase, title, path)
