import math

import pytest
import torch
import torch.nn.functional as F

from lmkcore.ops import gaussian_maps, grid, soft_argmax, soft_argmax_cov
from lmkcore.ops.tps import (
    TPS_PRESETS,
    TpsPreset,
    identity_params,
    jacobian,
    map_gaussians,
    map_points,
    random_params,
    random_tps_views,
    sampling_grid,
    sampling_jacobian,
    unmap_points,
    warp_with,
)

PRESETS = sorted(TPS_PRESETS)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _gaussian(mu, cov, h, w):
    """Normalised anisotropic Gaussian densities `(B, K, H, W)` with means `(B, K, 2)`, covariances `(B, K, 2, 2)`."""
    d = grid(h, w, dtype=mu.dtype)[None, None] - mu[:, :, None, None]  # (B, K, H, W, 2)
    m = torch.einsum("bkhwi,bkij,bkhwj->bkhw", d, torch.linalg.inv(cov), d)
    p = torch.exp(-0.5 * m)
    return p / p.sum((2, 3), keepdim=True)


@pytest.mark.parametrize("preset", PRESETS)
def test_a_bump_lands_where_map_points_sends_its_centre(preset):
    """The spline moves points the way it moves the image that carries them (within a pixel)."""
    size = 96
    q = torch.rand(3, 4, 2, generator=_gen(0)) - 0.5  # (B, K, 2) well inside the image
    maps = gaussian_maps(q, size, size, 0.03)  # (B, K, H, W)
    warped, g, params = random_tps_views(maps, preset, generator=_gen(1))
    assert warped.shape == maps.shape and g.shape == (3, size, size, 2)
    found = soft_argmax(warped / warped.sum((2, 3), keepdim=True))  # (B, K, 2) in the view
    pixel = 2.0 / (size - 1)
    assert (found - map_points(params, q)).abs().max() < pixel
    assert (map_points(params, q) - q).abs().max() > 2 * pixel  # the warp did move them


@pytest.mark.parametrize("preset", PRESETS)
def test_map_and_unmap_are_inverse(preset):
    params = random_params(5, preset, generator=_gen(2))
    q = torch.rand(5, 30, 2, generator=_gen(3)) * 1.8 - 0.9  # (B, N, 2)
    assert (unmap_points(params, map_points(params, q)) - q).abs().max() < 1e-5
    assert (map_points(params, unmap_points(params, q)) - q).abs().max() < 1e-5


def test_the_grid_is_unmap_points_at_the_pixel_centres_and_warps_the_image():
    params = random_params(2, "lorenz", generator=_gen(4))
    x = torch.rand(2, 3, 12, 10, generator=_gen(5))
    warped, g = warp_with(x, params, padding="zeros")
    pix = grid(12, 10).reshape(1, -1, 2)
    assert torch.allclose(g, unmap_points(params, pix).reshape(2, 12, 10, 2))
    assert torch.allclose(g, sampling_grid(params, 12, 10))
    assert torch.allclose(warped, F.grid_sample(x, g, align_corners=True))


def test_identity_params_change_nothing():
    x = torch.rand(3, 3, 9, 7)
    params = identity_params(3)
    warped, _ = warp_with(x, params)
    assert torch.allclose(warped, x, atol=1e-6)
    q = torch.rand(3, 5, 2) * 2 - 1
    assert torch.allclose(map_points(params, q), q, atol=1e-6)
    assert torch.allclose(jacobian(params, q), torch.eye(2).expand(3, 5, 2, 2), atol=1e-6)


@pytest.mark.parametrize("preset", PRESETS)
def test_jacobians_match_autograd(preset):
    params = {k: v.double() for k, v in random_params(2, preset, generator=_gen(6)).items()}
    q = (torch.rand(2, 3, 2, generator=_gen(7), dtype=torch.float64) * 1.6 - 0.8)

    def auto(f, pts):  # (B, N, 2, 2): d f_i / d pts_j per point (points do not interact)
        full = torch.autograd.functional.jacobian(lambda z: f(params, z).sum(0), pts)  # (N, 2, B, N, 2)
        eye_n = torch.eye(pts.shape[1], dtype=pts.dtype)
        return torch.einsum("nibmj,nm->bnij", full, eye_n)

    assert torch.allclose(sampling_jacobian(params, q), auto(unmap_points, q), atol=1e-8)
    assert torch.allclose(jacobian(params, q), auto(map_points, q), atol=1e-7)
    # and finite differences of the analytic map, column by column
    eps = 1e-6
    fd = torch.stack([(map_points(params, q + eps * e) - map_points(params, q - eps * e)) / (2 * eps)
                      for e in torch.eye(2, dtype=q.dtype)], -1)  # (B, N, 2, 2)
    assert torch.allclose(jacobian(params, q), fd, atol=1e-6)


def test_a_covariance_maps_through_an_affine_warp_as_a_s_at():
    """The affine special case (no control-point jitter or shift): the view's Gaussian has covariance
    A^-1 S A^-T, where A is the sampling map's linear part, and `jacobian` is A^-1."""
    affine = TpsPreset(scale=(0.7, 1.2), rotate=0.6, centre=0.1, translate=0.1)
    params = random_params(3, affine, generator=_gen(8)).copy()
    params = {k: v.double() for k, v in params.items()}
    mu = torch.tensor([[[0.1, -0.1], [-0.2, 0.15]]], dtype=torch.float64).expand(3, 2, 2)
    cov = torch.tensor([[[[0.02, 0.008], [0.008, 0.01]], [[0.01, -0.004], [-0.004, 0.015]]]],
                       dtype=torch.float64).expand(3, 2, 2, 2)
    warped, _ = warp_with(_gaussian(mu, cov, 128, 128), params, padding="zeros")
    m2, c2 = soft_argmax_cov(warped / warped.sum((2, 3), keepdim=True))
    a_inv = torch.linalg.inv(params["theta"][:, None, :, :2])  # (B, 1, 2, 2)
    expected = a_inv @ cov @ a_inv.transpose(-1, -2)
    j = jacobian(params, mu)
    assert torch.allclose(j, a_inv.expand_as(j), atol=1e-8)
    assert torch.allclose(m2, map_points(params, mu), atol=2e-3)
    assert torch.allclose(c2, expected, atol=2e-4, rtol=0.02)
    m3, c3 = map_gaussians(params, mu, cov)
    assert torch.allclose(m3, map_points(params, mu)) and torch.allclose(c3, expected, atol=1e-10)
    assert (expected - cov).abs().max() > 5e-3  # the warp did change the covariance


def test_a_small_part_s_covariance_follows_the_spline_to_first_order():
    params = {k: v.double() for k, v in random_params(2, "lorenz", generator=_gen(9)).items()}
    mu = torch.tensor([[[0.05, -0.1]]], dtype=torch.float64).expand(2, 1, 2)
    cov = torch.tensor([[[[3e-3, 1e-3], [1e-3, 2e-3]]]], dtype=torch.float64).expand(2, 1, 2, 2)
    warped, _ = warp_with(_gaussian(mu, cov, 160, 160), params, padding="zeros")
    _, c2 = soft_argmax_cov(warped / warped.sum((2, 3), keepdim=True))
    j = jacobian(params, mu)
    assert torch.allclose(c2, j @ cov @ j.transpose(-1, -2), rtol=0.1, atol=2e-4)


def test_presets_draw_what_their_cards_say():
    b = 400
    dundar = random_params(b, "dundar", generator=_gen(10))
    s = torch.linalg.svdvals(dundar["theta"][:, :, :2])  # per-axis scale: 1.05-1.15 shrinks the image
    assert s.min() >= 1.05 - 1e-5 and s.max() <= 1.15 + 1e-5
    assert dundar["control"].shape == (b, 100, 2)
    # the fitted spline moves each control point by at most 2 px at 128 px
    c = dundar["control"]
    moved = unmap_points({**dundar, "theta": torch.eye(2, 3).expand(b, 2, 3)}, c) - c
    assert moved.abs().max() <= 2 * 2 / 128 + 1e-5 and moved.abs().max() > 1.5 * 2 / 128
    lorenz = random_params(b, "lorenz", generator=_gen(11))
    s = torch.linalg.svdvals(lorenz["theta"][:, :, :2])
    assert s.min() >= 0.76 - 1e-5 and s.max() <= 0.84 + 1e-5  # the network sees a zoomed-in crop
    assert lorenz["control"].shape == (b, 8, 2)
    angle = torch.atan2(lorenz["theta"][:, 1, 0], lorenz["theta"][:, 0, 0])
    assert angle.abs().max() <= 0.1 + 1e-3
    cheng = random_params(b, "cheng", generator=_gen(12))
    angle = torch.atan2(cheng["theta"][:, 1, 0], cheng["theta"][:, 0, 0])
    assert abs(angle.std().item() - math.radians(2.0)) < math.radians(0.5)
    with pytest.raises(ValueError, match="preset must be"):
        random_params(1, "thewlis")


def test_same_generator_seed_same_views_and_the_batch_is_independent_per_image():
    x = torch.rand(1, 3, 16, 16).expand(4, 3, 16, 16)
    a, ga, pa = random_tps_views(x, "dundar", generator=_gen(13))
    b, gb, pb = random_tps_views(x, "dundar", generator=_gen(13))
    assert torch.equal(a, b) and torch.equal(ga, gb)
    assert (a[0] - a[1]).abs().mean() > 1e-3  # each image its own warp


def test_gradients_reach_the_images_through_the_warp():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    warped, _, _ = random_tps_views(x, "lorenz", generator=_gen(14))
    warped.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_autolink_random_tps_dicts_are_params_here_too():
    """`warp.random_tps` (AutoLink) uses the same dict layout, so its warps map points with these functions."""
    from lmkcore.ops.warp import random_tps, tps_points

    w = random_tps(3, shift=0.05, generator=_gen(15))
    p = torch.rand(3, 6, 2, generator=_gen(16)) * 1.2 - 0.6  # inside, where AutoLink's clamp does nothing
    assert torch.allclose(unmap_points(w, p), tps_points(w, p), atol=1e-5)
    assert torch.allclose(tps_points(w, map_points(w, p)), p, atol=1e-5)


def test_bf16_images_are_sampled_on_an_fp32_grid():
    x = torch.rand(2, 3, 80, 80, generator=_gen(17))
    params = random_params(2, "lorenz", generator=_gen(18))
    exact, g = warp_with(x, params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half, g16 = warp_with(x.bfloat16(), params)
    assert half.dtype == torch.bfloat16 and g16.dtype == torch.float32 and torch.equal(g, g16)
    assert (half.float() - exact).abs().max() < 2e-2  # bf16 rounding of the values only
