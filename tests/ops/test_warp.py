import torch

from lmkcore.ops import gaussian_maps, soft_argmax
from lmkcore.ops.warp import random_affine, random_tps, tps_points, warp_images, warp_images_tps, warp_points


def test_warped_bumps_land_where_warp_points_says():
    torch.manual_seed(0)
    kp = torch.rand(3, 4, 2) - 0.5  # well inside the image
    maps = gaussian_maps(kp, 64, 64, 0.05)  # (3, 4, 64, 64)
    theta = random_affine(3, rotate=30.0, zoom=0.3)
    warped = warp_images(maps, theta)
    found = soft_argmax(warped / warped.sum((2, 3), keepdim=True))
    assert (found - warp_points(kp, theta)).abs().max() < 2e-3


def test_identity_warp_changes_nothing():
    x = torch.rand(2, 3, 9, 7)
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(2, 2, 3)
    assert torch.allclose(warp_images(x, theta), x, atol=1e-6)
    kp = torch.rand(2, 5, 2)
    assert torch.allclose(warp_points(kp, theta), kp)


def test_random_warps_zoom_in_and_show_no_border():
    theta = random_affine(500, rotate=15.0, zoom=0.3, generator=torch.Generator().manual_seed(0))
    s = torch.linalg.det(theta[:, :, :2]).sqrt()
    assert s.min() >= 0.7 - 1e-5 and s.max() <= 1.0 + 1e-5
    ones = warp_images(torch.ones(500, 1, 16, 16), theta)
    assert ones.min() > 1 - 1e-4  # every output pixel samples inside the image


def test_tps_spline_moves_control_points_by_their_shifts_and_keeps_the_border():
    w = random_tps(4, shift=0.1, rotate=0.0, zoom=0.0, generator=torch.Generator().manual_seed(1))
    w["theta"] = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(4, 2, 3)  # the spline alone
    c = w["control"].expand(4, -1, -1)  # (B, M, 2)
    moved = tps_points(w, c) - c  # (B, M, 2): the shift each control point got
    border = (c.abs() == 1.0).any(-1)
    assert moved[border].abs().max() < 1e-4
    assert moved[~border].abs().max() > 1e-2  # the interior ones moved
    assert ((moved[~border] / 0.1).std() - 1.0).abs() < 0.5  # by about `shift`


def test_keypoints_of_a_tps_warped_image_map_back_to_the_original():
    torch.manual_seed(0)
    kp = torch.rand(3, 4, 2) - 0.5
    w = random_tps(3, shift=0.05, generator=torch.Generator().manual_seed(2))
    # bumps drawn where tps_points sends each output pixel: find them in the warped image, map them back
    maps = warp_images_tps(gaussian_maps(kp, 96, 96, 0.04), w)
    found = soft_argmax(maps / maps.sum((2, 3), keepdim=True))  # (B, K, 2) in the warped image
    assert (tps_points(w, found) - kp).abs().max() < 0.02
    ones = warp_images_tps(torch.ones(3, 1, 16, 16), w)
    assert ones.min() > 1 - 1e-4  # no border shows


def test_tps_points_stay_fp32_under_bf16_autocast():
    warp = random_tps(3, shift=0.1, generator=torch.Generator().manual_seed(0))
    p = torch.rand(3, 7, 2) * 2 - 1
    exact = tps_points(warp, p)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = tps_points(warp, p)
    assert q.dtype == torch.float32 and torch.allclose(q, exact, atol=1e-6)
