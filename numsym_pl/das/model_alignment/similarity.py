"""Correlational similarity of two nets' states on the same inputs, beside MAS's causal one:
linear CKA (Kornblith et al., 2019) and RSA (the Spearman correlation of the two nets'
representational dissimilarity matrices), each with a bootstrap interval over the inputs.

Both read states ``X`` [N, d_a] and ``Y`` [N, d_b] whose rows are the same N inputs (MAS: each
net's state at the site for the test pairs' sources, one row per distinct source). Neither needs
the widths to match, and neither asks whether the states play any causal role.

The plain CKA estimator rises as the number of inputs falls (by about 0.02 between 760 states
and the 480 distinct ones of a bootstrap resample, for 128-wide states), so a bootstrap of it is
shifted above its own estimate. The reported ``cka`` is therefore the debiased estimator (the
unbiased HSIC of Song et al., 2012, in CKA's ratio), whose value does not drift with the number
of inputs; ``cka_biased`` is the plain one, for comparison with work that reports it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from scipy import stats
from tqdm.auto import tqdm

from numsym_pl.errors import ConfigError
from numsym_pl.seeding import rng

Rdm = Literal["euclidean", "correlation"]


def _hsic(k: torch.Tensor, m: torch.Tensor, debiased: bool) -> torch.Tensor:
    """HSIC of two Gram matrices [N, N]: the plain (centred) estimator, or the unbiased one
    (Song et al., 2012; needs N >= 4)."""
    n = len(k)
    if not debiased:
        kc, mc = k - k.mean(0) - k.mean(1, keepdim=True) + k.mean(), m - m.mean(0) - m.mean(1, keepdim=True) + m.mean()
        return (kc * mc).sum()
    k, m = k - torch.diag(torch.diag(k)), m - torch.diag(torch.diag(m))
    return ((k * m).sum() + k.sum() * m.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k.sum(0) @ m.sum(1))) \
        / (n * (n - 3))


def _cka(k: torch.Tensor, m: torch.Tensor, debiased: bool) -> float:
    norm = _hsic(k, k, debiased) * _hsic(m, m, debiased)
    return float(_hsic(k, m, debiased) / norm.sqrt()) if norm > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor, debiased: bool = True) -> float:
    """Linear CKA of ``x`` [N, d_a] and ``y`` [N, d_b]: HSIC of their linear Gram matrices over the
    root of each one's HSIC with itself; 1 when one is a rotation and scaling of the other, invariant
    to both. ``debiased``: with the unbiased HSIC estimator (see the module docstring)."""
    x, y = x.double(), y.double()
    return _cka(x @ x.T, y @ y.T, debiased)


def rdm(x: torch.Tensor, metric: Rdm = "euclidean") -> torch.Tensor:
    """The representational dissimilarity matrix [N, N] of the rows of ``x``: Euclidean distance, or
    correlation distance (1 - the Pearson correlation of two rows across units)."""
    x = x.double()
    if metric == "euclidean":
        return torch.cdist(x, x)
    if metric == "correlation":
        z = x - x.mean(1, keepdim=True)
        z = z / z.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return 1.0 - z @ z.T
    raise ConfigError(f"rdm: 'euclidean' or 'correlation', got {metric!r}")


def _spearman_upper(a: torch.Tensor, b: torch.Tensor) -> float:
    upper = torch.triu(torch.ones(len(a), len(a), dtype=torch.bool, device=a.device), 1)
    if int(upper.sum()) < 2:
        return float("nan")
    return float(stats.spearmanr(a[upper].cpu().numpy(), b[upper].cpu().numpy()).statistic)


def rsa(x: torch.Tensor, y: torch.Tensor, metric: Rdm = "euclidean") -> float:
    """Spearman correlation of the upper triangles of the two nets' RDMs."""
    return _spearman_upper(rdm(x, metric), rdm(y, metric))


def distinct_rows(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` and ``y`` with repeated inputs left out: the rows whose states (in both nets) are the
    same as an earlier row's (two pairs with the same source prefix and position)."""
    joint = torch.cat([x.float(), y.float()], 1).cpu()
    _, inverse = torch.unique(joint, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), len(joint), dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(len(joint)), reduce="amin")
    keep = first.sort().values.to(x.device)
    return x[keep], y[keep]


def similarity(x: torch.Tensor, y: torch.Tensor, resamples: int = 200, seed: int = 0, metric: Rdm = "euclidean",
               max_states: int = 1000, progress: bool = False) -> dict:
    """Linear CKA (debiased; ``cka_biased`` the plain estimator) and RSA of two nets' states on the
    same inputs, each with a 95 % percentile bootstrap interval over the inputs: ``resamples``
    resamples drawn with replacement from ``seed``, each scored on the distinct inputs it drew (0:
    no interval). Repeated inputs are left out first (``distinct_rows``), then at most
    ``max_states`` of them are kept (the matrices are N x N)."""
    if len(x) != len(y):
        raise ConfigError(f"mas: the two nets' states cover {len(x)} and {len(y)} inputs; they must be the same inputs")
    x, y = distinct_rows(x, y)
    x, y = x[:max_states].double(), y[:max_states].double()
    grams, rdms = (x @ x.T, y @ y.T), (rdm(x, metric), rdm(y, metric))
    out = {"cka": _cka(*grams, True) if len(x) >= 4 else float("nan"), "cka_biased": _cka(*grams, False),
           "rsa": _spearman_upper(*rdms), "n_states": len(x), "rdm": metric, "resamples": resamples,
           "cka_interval": None, "rsa_interval": None}
    if resamples < 1 or len(x) < 8:
        return out
    gen = rng(seed, "similarity")
    ckas, rsas = [], []
    for _ in tqdm(range(resamples), desc="CKA/RSA bootstrap", disable=not progress, leave=False):
        idx = torch.as_tensor(np.unique(gen.integers(0, len(x), len(x))), device=x.device)
        sub = lambda m: m[idx][:, idx]  # noqa: E731
        ckas.append(_cka(sub(grams[0]), sub(grams[1]), True))
        rsas.append(_spearman_upper(sub(rdms[0]), sub(rdms[1])))
    out["cka_interval"] = [float(v) for v in np.nanpercentile(ckas, [2.5, 97.5])]
    out["rsa_interval"] = [float(v) for v in np.nanpercentile(rsas, [2.5, 97.5])]
    return out
