"""Linear regression without intercept, per-target visibility, ridge chosen by k-fold CV.

The protocol's regressor maps `D` inputs (flattened keypoints in [0, 1]) to `J` target points:

    W_j = (X^T M_j X + lam_j I)^-1 X^T M_j Y_j      M_j = diag(visible[:, j]),  W_j: (D, 2)

one 2-column system per target point `j`, solved for all targets at once as a stacked `(J, D, D)`
batch. There is no intercept column (the literature's convention for keypoints in [0, 1]; see
`shared/methods/README.md`). The ridge is relative: `lam_j = r * n_j * s`, with `n_j` the samples
fitting target `j` and `s` the mean of `x^2` over the fit set, so that `r` means the same for any
fit-set size; `r` is chosen on the fit set only, by k-fold cross-validation over `RIDGE_GRID`.

Example (an exact linear map is recovered)::

    x = torch.rand(50, 4, dtype=torch.float64); w = torch.randn(4, 3, 2, dtype=torch.float64)  # (D, J, 2)
    fit = fit_linear(x, torch.einsum("nd,djc->njc", x, w), ridge=0.0)
    torch.allclose(fit.weight, w)  # True
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

# relative ridge strengths tried by cross-validation (ascending: ties go to the weaker ridge)
RIDGE_GRID = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class LinearFit:
    weight: Tensor  # (D, J, 2) float64
    ridge: float  # relative strength r (absolute per target: r * n_j * scale)
    scale: float  # s = mean x^2 over the fit set
    cv_error: dict[float, float] = field(default_factory=dict)  # r -> mean held-out point distance

    def predict(self, x: Tensor) -> Tensor:
        """`(N, D)` -> `(N, J, 2)`."""
        return predict(self.weight, x)


def predict(weight: Tensor, x: Tensor) -> Tensor:
    """Apply a fitted map: weight `(D, J, 2)`, x `(N, D)` -> `(N, J, 2)`."""
    return torch.einsum("nd,djc->njc", x.to(weight.dtype), weight)


@contextlib.contextmanager
def one_thread():
    """Run tiny tensor ops (batched small solves, per-item rendering) on one thread: with busy cores,
    more threads can be 10-50x slower for them."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _check(x: Tensor, y: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    if x.dim() != 2 or y.dim() != 3 or y.shape[-1] != 2:
        raise ValueError(f"expected x (N, D) and y (N, J, 2), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
    n, j = y.shape[:2]
    mask = torch.ones(n, j, dtype=torch.bool) if mask is None else mask.to(torch.bool).cpu()
    if mask.shape != (n, j):
        raise ValueError(f"mask must be (N, J) = {(n, j)}, got {tuple(mask.shape)}")
    x, y = x.detach().cpu().double(), y.detach().cpu().double()
    for name, rows in (("x", torch.isfinite(x).all(1)),
                       ("visible y", torch.isfinite(torch.where(mask[..., None], y, 0.0)).all(-1).all(-1))):
        if not rows.all():
            bad = (~rows).nonzero().flatten()
            raise ValueError(f"{name} has non-finite values in {len(bad)} sample(s), rows {bad[:10].tolist()}")
    return x, torch.where(mask[..., None], y, 0.0), mask


def _normal_equations(x: Tensor, y: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """x (N, D), y (N, J, 2), m (N, J) -> A (J, D, D) = X^T M_j X and B (J, D, 2) = X^T M_j Y_j."""
    xm = m.T.to(x.dtype)[:, :, None] * x[None]  # (J, N, D)
    return xm.transpose(1, 2) @ x, xm.transpose(1, 2) @ y.transpose(0, 1)


def _solve(a: Tensor, b: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
    """a (..., J, D, D) + lam (..., J) I; b (J, D, 2) -> weights (..., J, D, 2), ok (..., J) bool."""
    d = a.shape[-1]
    lhs = (a + lam[..., None, None] * torch.eye(d, dtype=a.dtype)).reshape(-1, d, d)  # one flat batch: fast path
    rhs = b.expand(*lam.shape, d, b.shape[-1]).reshape(-1, d, b.shape[-1])
    w, info = torch.linalg.solve_ex(lhs, rhs)
    w, info = w.reshape(*lam.shape, d, b.shape[-1]), info.reshape(lam.shape)
    return w, (info == 0) & torch.isfinite(w).all(-1).all(-1)


@one_thread()
def cross_validate(x: Tensor, y: Tensor, mask: Tensor | None = None, *, grid=RIDGE_GRID, folds: int = 5,
                   seed: int = 0, scale: float | None = None) -> dict[float, float]:
    """Mean held-out point distance for each relative ridge in `grid` (inf where a fold is singular).

    x (N, D), y (N, J, 2), mask (N, J). Folds are a seeded permutation of the N samples (at most N
    folds). Only visible held-out points are scored.
    """
    x, y, mask = _check(x, y, mask)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"cross-validation needs at least 2 fit samples, got {n}")
    k = min(folds, n)
    fold = torch.empty(n, dtype=torch.long)
    fold[torch.randperm(n, generator=torch.Generator().manual_seed(seed))] = torch.arange(n) % k
    s = float((x * x).mean()) if scale is None else scale
    r = torch.tensor(grid, dtype=torch.float64)  # (R,)
    err_sum, count = torch.zeros(len(grid), dtype=torch.float64), 0
    for f in range(k):
        train, held = fold != f, fold == f
        mt = mask & train[:, None]  # (N, J)
        a, b = _normal_equations(x, y, mt)
        n_j = mt.sum(0).double()  # (J,)
        w, ok = _solve(a[None], b, r[:, None] * n_j[None] * s)  # (R, J, D, 2), (R, J)
        ok = ok & ((r[:, None] > 0) | (n_j[None] >= d))  # lam = 0 needs n_j >= D
        fittable = n_j > 0  # (J,) a target with no training sample in this fold is not scored in it
        pred = torch.einsum("nd,rjdc->rnjc", x[held], w)  # (R, Nh, J, 2)
        dist = (pred - y[held][None]).norm(dim=-1)  # (R, Nh, J)
        mh = (mask[held] & fittable[None])[None].expand_as(dist)
        err_sum += torch.where(mh, dist, 0.0).sum((1, 2))
        err_sum[~(ok | ~fittable[None]).all(1)] = float("inf")
        count += int(mh[0].sum())
    err = err_sum / max(count, 1)
    return {float(g): float(e) if torch.isfinite(e) else float("inf") for g, e in zip(grid, err)}


@one_thread()
def fit_linear(x: Tensor, y: Tensor, mask: Tensor | None = None, ridge: float | str = "cv", *,
               grid=RIDGE_GRID, folds: int = 5, seed: int = 0, names: list[str] | None = None) -> LinearFit:
    """Least squares without intercept from x `(N, D)` to y `(N, J, 2)`, target j fit where mask[:, j].

    ridge: a relative strength r >= 0, or "cv" (k-fold cross-validation over `grid` on these
    samples only). Raises ValueError when a target has fewer samples than the D unknowns of its
    map without ridge (or fewer than 2 with CV), or when the system is singular.
    """
    x, y, mask = _check(x, y, mask)
    n, d = x.shape
    names = names or [f"#{j}" for j in range(y.shape[1])]
    n_j = mask.sum(0)  # (J,)
    need = 2 if ridge == "cv" else (d if float(ridge) == 0 else 1)
    short = (n_j < need).nonzero().flatten().tolist()
    if short:
        detail = ", ".join(f"{names[j]}: {int(n_j[j])}" for j in short[:8])
        why = (f"a linear map from {d} inputs has {d} unknowns per coordinate and no ridge"
               if need == d else "cross-validation needs at least 2")
        raise ValueError(f"fit set too small: {n} samples, visible per target ({detail}) < {need}; {why}. "
                         "Use more annotated images" + (" or ridge='cv'." if need == d else "."))
    s = float((x * x).mean())
    cv, order = {}, [ridge]
    if ridge == "cv":
        cv = cross_validate(x, y, mask, grid=grid, folds=folds, seed=seed, scale=s)
        order = [g for g in sorted(cv, key=lambda g: (cv[g], g)) if math.isfinite(cv[g])]
    elif float(ridge) < 0:
        raise ValueError(f"ridge must be >= 0 or 'cv', got {ridge!r}")
    a, b = _normal_equations(x, y, mask)
    for r in map(float, order):  # with CV: the best ridge whose full fit is not singular
        w, ok = _solve(a, b, r * n_j.double() * s)
        if r == 0:
            ok = ok & (torch.linalg.matrix_rank(a, hermitian=True) == d)  # (J,)
        if ok.all():
            return LinearFit(w.permute(1, 0, 2).contiguous(), r, s, cv)
    if ridge == "cv":
        raise ValueError("every ridge strength gave a singular fit; the inputs are degenerate "
                         "(e.g. all keypoints identical)")
    bad = [names[j] for j in (~ok).nonzero().flatten().tolist()]
    raise ValueError(f"singular least-squares system for target(s) {bad[:8]} with ridge {ridge}: the inputs "
                     "are linearly dependent (collapsed or duplicated keypoints?); use ridge='cv' or > 0")


def few_shot_indices(n_total: int, n_fit: int | float | str | None, seed: int = 0) -> Tensor:
    """Sorted indices of a deterministic subset of `n_total` samples (nested across sizes per seed).

    n_fit: None or 0 = all; an int = that many; a float in (0, 1) or "1%" = that fraction
    (rounded, at least 1).
    """
    n = resolve_n_fit(n_total, n_fit)
    if n == n_total:
        return torch.arange(n_total)
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))
    return perm[:n].sort().values


def few_shot_sizes(text: str) -> list[str]:
    """Fit-set sizes from a comma-separated list as the command lines and profiles write them ("1%,50,10"),
    each as `few_shot_indices` reads it; "" -> none."""
    return [s.strip() for s in text.split(",") if s.strip()]


def resolve_n_fit(n_total: int, n_fit: int | float | str | None) -> int:
    """The number of images `n_fit` means out of `n_total` (see `few_shot_indices`)."""
    if isinstance(n_fit, str):
        n_fit = float(n_fit[:-1]) / 100 if n_fit.endswith("%") else float(n_fit) if "." in n_fit else int(n_fit)
    if n_fit is None or n_fit == 0:
        return n_total
    if isinstance(n_fit, float) and n_fit < 1:
        if n_fit <= 0:
            raise ValueError(f"n_fit must be positive, got {n_fit}")
        return max(1, round(n_fit * n_total))
    if float(n_fit) != int(n_fit):
        raise ValueError(f"n_fit must be a count, a fraction in (0, 1) or 'p%', got {n_fit!r}")
    n = int(n_fit)
    if not 0 < n <= n_total:
        raise ValueError(f"n_fit={n} but the fit set has {n_total} images")
    return n
