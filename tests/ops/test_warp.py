import torch

from lmkcore.ops import gaussian_maps, soft_argmax
from lmkcore.ops.warp import random_affine, warp_images, warp_points


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
