"""ops.parts: closed-form values of part statistics, rendering, splatting, pooling and moment transport."""
import math

import pytest
import torch

from lmkcore.ops import warp_images, warp_points
from lmkcore.ops.coords import grid
from lmkcore.ops.tps import identity_params
from lmkcore.ops.parts import (encode_parts, equivariance_losses, foreground_mask, masked_pixel_loss, normalise_parts,
                               part_layout, part_statistics, pool_appearance, precision_factor, render_parts, splat,
                               transport_statistics)


def gaussian_map(mu: torch.Tensor, cov: torch.Tensor, size: int) -> torch.Tensor:
    """A normalised Gaussian `(1, 1, size, size)` of mean mu (2,) and covariance cov (2, 2), float64."""
    d = grid(size, size, dtype=torch.float64) - mu  # (H, W, 2)
    p = torch.exp(-0.5 * torch.einsum("hwi,ij,hwj->hw", d, torch.linalg.inv(cov), d))
    return (p / p.sum())[None, None]


MU = torch.tensor([0.2, -0.1], dtype=torch.float64)
COV = torch.tensor([[0.02, 0.008], [0.008, 0.01]], dtype=torch.float64)


def test_statistics_of_a_rendered_gaussian_are_its_mean_and_covariance():
    mu, cov = part_statistics(gaussian_map(MU, COV, 128))
    assert mu.shape == (1, 1, 2) and cov.shape == (1, 1, 2, 2)
    torch.testing.assert_close(mu[0, 0], MU, atol=1e-4, rtol=0)
    torch.testing.assert_close(cov[0, 0], COV, atol=2e-4, rtol=0)


def test_precision_factor_whitens_the_covariance():
    a = precision_factor(COV[None, None], scale=1.0, eps=0.0)  # (1, 1, 2, 2)
    torch.testing.assert_close(a[0, 0] @ COV @ a[0, 0].T, torch.eye(2, dtype=torch.float64), atol=1e-9, rtol=0)
    assert a[0, 0, 0, 1] == 0  # lower-triangular, as the card's L^-1
    torch.testing.assert_close(precision_factor(COV, 0.8), 0.8 * precision_factor(COV, 1.0))


def test_render_is_half_at_one_standard_deviation_and_one_at_the_mean():
    mu = torch.zeros(1, 1, 2)
    cov = torch.tensor([[[[0.04, 0.0], [0.0, 0.01]]]])  # sigma_x 0.2, sigma_y 0.1
    h = render_parts(mu, precision_factor(cov, 1.0), 21, 21)  # grid step 0.1
    assert h[0, 0, 10, 10] == pytest.approx(1.0, abs=1e-4)
    assert h[0, 0, 10, 12] == pytest.approx(0.5, abs=1e-3)  # x = 0.2: one sigma_x
    assert h[0, 0, 11, 10] == pytest.approx(0.5, abs=1e-3)  # y = 0.1: one sigma_y
    circ = render_parts(mu, 10.0, 21, 21)  # the card's circular default: 1 / (1 + 100 d^2)
    assert circ[0, 0, 10, 11] == pytest.approx(0.5, abs=1e-4)


def test_rendering_is_normalised_across_parts():
    mu = torch.tensor([[[-0.3, 0.0], [0.3, 0.1], [0.3, 0.1]]])
    heats = render_parts(mu, 5.0, 16, 16)  # (1, 3, 16, 16)
    w = normalise_parts(heats)
    total = w.sum(1)
    assert (total < 1).all() and (total > 0).all()
    torch.testing.assert_close(total, heats.sum(1) / (1 + heats.sum(1)))
    torch.testing.assert_close(w[:, 1], w[:, 2])  # two parts on one spot share it equally
    f = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])  # (1, 3, 2)
    s = splat(heats, f)  # (1, 2, 16, 16)
    torch.testing.assert_close(s[:, 0], w[:, 0])
    torch.testing.assert_close(s[:, 1], w[:, 1] + w[:, 2])


def test_encode_parts_splats_only_at_the_coarsest_levels():
    mu, app = torch.zeros(2, 3, 2), torch.ones(2, 3, 5)
    enc = encode_parts(mu, 10.0, app, [4, 8, 16], feature_levels=2)
    assert [tuple(e.shape) for e in enc] == [(2, 8, 4, 4), (2, 8, 8, 8), (2, 3, 16, 16)]


def test_pooling_a_constant_feature_map_returns_the_constant():
    feats = torch.arange(4.0).view(1, 4, 1, 1).expand(2, 4, 8, 8)
    maps = torch.softmax(torch.randn(2, 3, 16, 16).flatten(2), -1).view(2, 3, 16, 16)  # another size: resized
    torch.testing.assert_close(pool_appearance(feats, maps), torch.arange(4.0).expand(2, 3, 4))


def test_pooling_picks_the_feature_under_a_one_pixel_part():
    feats = torch.randn(1, 6, 8, 8)
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 3, 5] = 1.0
    torch.testing.assert_close(pool_appearance(feats, maps)[0, 0], feats[0, :, 3, 5])


def test_foreground_mask_sums_to_one_and_covers_the_parts():
    mu = torch.tensor([[[-0.5, -0.5], [0.5, 0.5]]], requires_grad=True)
    m = foreground_mask(mu, 32, 32)
    assert m.shape == (1, 1, 32, 32) and m.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert m[0, 0, 8, 8] > 0 and m[0, 0, 0, 31] == 0  # near a part / far from both
    assert not m.requires_grad  # stop-gradient on the means


def test_masked_pixel_loss_counts_errors_near_the_parts_only():
    mu = torch.tensor([[[-0.5, -0.5]]])  # one part in the top-left quarter
    target = torch.zeros(1, 3, 32, 32)
    far, near = target.clone(), target.clone()
    far[..., 24:, 24:] = 1.0  # wrong far from the part
    near[..., 6:10, 6:10] = 1.0  # wrong at the part
    assert masked_pixel_loss(far, target, mu) == 0
    assert masked_pixel_loss(near, target, mu) > 0
    assert masked_pixel_loss(2 * near, target, mu) == pytest.approx(4 * masked_pixel_loss(near, target, mu).item())
    once = masked_pixel_loss(near, target, mu).item()  # errors of 1: squared = absolute
    assert masked_pixel_loss(2 * near, target, mu, l1=True) == pytest.approx(2 * once)


def test_covariance_maps_through_a_known_affine_warp():
    """A Gaussian part seen in an affine warp of an image, carried back to the image's frame, has the
    original Gaussian's statistics (J S J^T with J = A); also its statistics read from the warped map."""
    ang = math.radians(20)
    a = torch.tensor([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]]) * 0.8
    theta = torch.cat([a, torch.tensor([[0.05], [-0.1]])], 1)[None]  # (1, 2, 3): view p shows A p + t
    img = gaussian_map(MU, COV, 128).float()
    view_mu, view_cov = part_statistics(warp_images(img, theta) / warp_images(img, theta).sum())
    torch.testing.assert_close(view_mu, warp_points(MU[None, None].float(), theta), atol=1e-3, rtol=0)
    warp = dict(identity_params(1), theta=theta)  # a spline that bends nothing: the affine warp alone
    mu, cov = transport_statistics(view_mu, view_cov, warp)
    torch.testing.assert_close(mu[0, 0], MU.float(), atol=1e-3, rtol=0)
    torch.testing.assert_close(cov[0, 0], COV.float(), atol=5e-4, rtol=0)


def test_equivariance_losses_are_zero_for_equal_statistics_and_grow_with_distance():
    mu, cov = torch.rand(2, 3, 2), torch.eye(2).expand(2, 3, 2, 2)
    t, c = equivariance_losses(mu, cov, mu, cov)
    assert t == 0 and c == pytest.approx(1e-3, rel=1e-3)  # sqrt(1e-6)
    t2, c2 = equivariance_losses(mu, cov, mu + 0.1, 2 * cov)
    assert t2 == pytest.approx(0.01, rel=1e-4) and c2 == pytest.approx(math.sqrt(2), rel=1e-3)


def test_part_layout_tells_parts_that_tile_from_parts_collapsed_onto_one_blob():
    tiled = torch.tensor([[[-0.5, 0.0], [0.5, 0.0]]])  # (1, 2, 2): means half the image apart
    small = 0.01 * torch.eye(2).expand(1, 2, 2, 2)  # std 0.1 on each axis
    layout = part_layout(tiled, small)
    assert layout["spread"].item() == pytest.approx(25.0)  # 0.5 of a side of 2: 25 % of the image
    assert layout["size"].item() == pytest.approx(5.0)
    # two maps of one broad blob: their statistics coincide
    blob = gaussian_map(MU, 0.1 * torch.eye(2, dtype=torch.float64), 64).expand(1, 2, 64, 64)
    layout = part_layout(*part_statistics(blob))
    assert layout["spread"].item() == pytest.approx(0.0, abs=1e-6) and layout["size"].item() > 10


def test_gradients_reach_the_means_and_covariances_through_rendering():
    mu = torch.zeros(1, 2, 2, dtype=torch.float64, requires_grad=True)
    cov = (torch.eye(2, dtype=torch.float64) * 0.05).expand(1, 2, 2, 2).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, s: render_parts(m, precision_factor(s, 0.8), 5, 5), (mu + 0.1, cov))
