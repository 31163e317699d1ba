"""The regressor: exact recovery without intercept, visibility masks, CV ridge, few-shot subsets."""
import pytest
import torch

from lmkcore.eval import cross_validate, few_shot_indices, fit_linear, predict, resolve_n_fit
from lmkcore.eval.regression import RIDGE_GRID


def _data(n=60, d=8, j=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    w = torch.randn(d, j, 2, generator=g, dtype=torch.float64)
    return x, w, predict(w, x), g


def test_recovers_a_linear_map_exactly_without_intercept():
    x, w, y, _ = _data()
    fit = fit_linear(x, y, ridge=0.0)
    assert fit.weight.shape == (8, 5, 2)
    torch.testing.assert_close(fit.weight, w, atol=1e-10, rtol=0)
    # no intercept: a constant offset cannot be absorbed by a map without intercept when x has no constant
    # column, so shifting y must change the residual
    off = fit_linear(x, y + 1.0, ridge=0.0)
    assert (off.predict(x) - (y + 1.0)).abs().max() > 1e-3


def test_per_landmark_visibility_ignores_hidden_targets():
    x, w, y, g = _data()
    mask = torch.rand(60, 5, generator=g) > 0.3
    garbage = torch.where(mask[..., None], y, 1e3 * torch.randn(60, 5, 2, generator=g, dtype=torch.float64))
    fit = fit_linear(x, garbage, mask, ridge=0.0)
    torch.testing.assert_close(fit.weight, w, atol=1e-9, rtol=0)
    # hidden entries may even be NaN (an invisible LSPET joint)
    nan = torch.where(mask[..., None], y, torch.nan)
    torch.testing.assert_close(fit_linear(x, nan, mask, ridge=0.0).weight, w, atol=1e-9, rtol=0)


def test_cv_picks_ridge_on_the_fit_set_deterministically():
    x, w, y, g = _data(n=12, d=10, j=3)  # barely more samples than unknowns, noisy targets
    y = y + 0.5 * torch.randn(y.shape, generator=g, dtype=torch.float64)
    a = cross_validate(x, y, seed=0)
    assert a == cross_validate(x, y, seed=0)  # deterministic by seed
    assert set(a) == set(RIDGE_GRID)
    fit = fit_linear(x, y, ridge="cv", seed=0)
    assert fit.ridge == min(a, key=lambda r: (a[r], r)) and fit.ridge > 0
    assert fit.cv_error == a
    # exact data: no ridge is best
    xe, _, ye, _ = _data()
    assert fit_linear(xe, ye, ridge="cv").ridge == 0.0


def test_few_shot_subsets_are_deterministic_nested_and_sized():
    a = few_shot_indices(2000, "1%", seed=3)
    assert len(a) == 20 and torch.equal(a, few_shot_indices(2000, 0.01, seed=3))
    assert torch.equal(a, a.sort().values) and len(a.unique()) == 20
    b = few_shot_indices(2000, 50, seed=3)
    assert len(b) == 50 and set(few_shot_indices(2000, 10, seed=3).tolist()) <= set(a.tolist()) <= set(b.tolist())
    assert not torch.equal(b, few_shot_indices(2000, 50, seed=4))
    assert torch.equal(few_shot_indices(30, None), torch.arange(30)) and len(few_shot_indices(30, 0)) == 30
    assert resolve_n_fit(2000, "10") == 10 and resolve_n_fit(7, "1%") == 1
    with pytest.raises(ValueError, match="fit set has 30"):
        few_shot_indices(30, 50)


def test_bad_inputs_raise_clearly():
    x, w, y, _ = _data(n=6, d=8)
    with pytest.raises(ValueError, match="fit set too small.*8 unknowns"):
        fit_linear(x, y, ridge=0.0)
    with pytest.raises(ValueError, match="singular"):
        fit_linear(torch.ones(30, 8, dtype=torch.float64), torch.zeros(30, 5, 2, dtype=torch.float64), ridge=0.0)
    bad = x.clone()
    bad[2, 1] = torch.inf
    with pytest.raises(ValueError, match=r"non-finite values in 1 sample\(s\), rows \[2\]"):
        fit_linear(bad, y, ridge=1e-3)
    with pytest.raises(ValueError, match="5 samples but y has 6"):
        fit_linear(x[:5], y, ridge="cv")


def test_cv_copes_with_rarely_visible_targets_and_degenerate_inputs():
    x, w, y, g = _data(n=10, d=4, j=3)
    mask = torch.ones(10, 3, dtype=torch.bool)
    mask[2:, 2] = False  # target 2 visible in two images only: some folds cannot fit it
    fit = fit_linear(x, y, mask, ridge="cv")
    assert torch.isfinite(fit.weight).all()
    # all inputs identical (collapsed keypoints): CV falls back to a ridge, a fixed zero ridge raises
    same = torch.ones(10, 4, dtype=torch.float64)
    assert fit_linear(same, y).ridge > 0
    with pytest.raises(ValueError, match="singular"):
        fit_linear(same, y, ridge=0.0)
