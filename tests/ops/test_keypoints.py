import math

import torch

from lmkcore.ops import (gaussian_maps, grid, norm_to_pixels, norm_to_unit, pixels_to_norm, soft_argmax,
                         soft_argmax_cov, spatial_softmax)


def test_grid_corners_and_order():
    g = grid(3, 5)
    assert g.shape == (3, 5, 2)
    assert g[0, 0].tolist() == [-1, -1] and g[-1, -1].tolist() == [1, 1]
    assert g[0, 4].tolist() == [1, -1]  # x varies along the width


def test_pixel_round_trip():
    kp = torch.tensor([[0.0, 0.0], [79.0, 79.0], [39.5, 10.0]])
    n = pixels_to_norm(kp, 80)
    assert torch.allclose(n[0], torch.tensor([-1.0, -1.0])) and torch.allclose(n[1], torch.tensor([1.0, 1.0]))
    assert torch.allclose(norm_to_pixels(n, 80), kp)
    assert torch.allclose(norm_to_unit(n[2]), kp[2] / 79)


def test_soft_argmax_one_hot_and_mean():
    h = torch.zeros(1, 2, 4, 6)
    h[0, 0, 0, 0] = 1.0
    h[0, 1, 3, 5] = 0.5
    h[0, 1, 3, 0] = 0.5
    kp = soft_argmax(h)
    assert torch.allclose(kp[0, 0], torch.tensor([-1.0, -1.0]))
    assert torch.allclose(kp[0, 1], torch.tensor([0.0, 1.0]))


def test_soft_argmax_cov_of_two_points():
    h = torch.zeros(1, 1, 3, 3)
    h[0, 0, 1, 0] = h[0, 0, 1, 2] = 0.5  # x = -1 and x = 1 on the middle row
    mu, cov = soft_argmax_cov(h)
    assert torch.allclose(mu, torch.zeros(1, 1, 2))
    assert torch.allclose(cov[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_spatial_softmax_sums_to_one_and_gradcheck():
    x = torch.randn(2, 3, 5, 5, dtype=torch.double, requires_grad=True)
    assert torch.allclose(spatial_softmax(x).sum((2, 3)), torch.ones(2, 3, dtype=torch.double))
    assert torch.autograd.gradcheck(lambda t: soft_argmax(spatial_softmax(t)), (x,))


def test_gaussian_maps_closed_form():
    kp = torch.zeros(1, 1, 2)
    m = gaussian_maps(kp, 3, 3, sigma=1.0)
    assert math.isclose(m[0, 0, 1, 1].item(), 1.0)
    assert math.isclose(m[0, 0, 1, 2].item(), math.exp(-0.5), rel_tol=1e-6)  # one unit away


def test_keypoint_read_out_stays_fp32_under_bf16_autocast():
    """AMP would run the einsum in bf16 (8-bit mantissa: 0.16 px near the border at 80 px); keypoints must not lose that."""
    torch.manual_seed(0)
    p = spatial_softmax(torch.randn(2, 3, 20, 20) * 3)
    exact = soft_argmax(p.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kp = soft_argmax(p.bfloat16())
        mu, cov = soft_argmax_cov(p)
    assert kp.dtype == mu.dtype == cov.dtype == torch.float32
    assert (mu.double() - exact).abs().max() < 1e-6
    assert (kp.double() - exact).abs().max() < 2e-2  # only the bf16 input's rounding is left


def test_spot_logits_peak_at_spread_points():
    from lmkcore.ops import soft_argmax, spatial_softmax, spot_logits, spread_points

    k, size = 7, 32
    logits = spot_logits(k, size, 0.1)  # (K, size, size)
    assert logits.shape == (k, size, size)
    pts = spread_points(k)
    assert torch.cdist(pts, pts).add(torch.eye(k) * 9).min() > 0.1  # K distinct spots
    torch.testing.assert_close(soft_argmax(spatial_softmax(logits[None]))[0], pts, atol=0.03, rtol=0)
