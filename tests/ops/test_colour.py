import torch

from lmkcore.ops import random_colour


def test_zero_strength_changes_nothing():
    x = torch.rand(3, 3, 8, 8)
    assert random_colour(x, 0.0) is x


def test_recolouring_stays_in_range_and_differs_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 16, 16).expand(6, 3, 16, 16)  # one image six times
    y = random_colour(x, 0.3, generator=g)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert (y - x).abs().mean() > 0.02  # it does change the colours
    per_image = y.mean((1, 2, 3))
    assert per_image.std() > 1e-3  # each copy gets its own factors


def test_a_grey_image_is_only_scaled_within_the_strength():
    c, s = 0.4, 0.2
    x = torch.full((64, 3, 4, 4), c)
    y = random_colour(x, s, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(y, y[..., :1, :1].expand_as(y))  # flat stays flat: no saturation or contrast to change
    ratio = y[..., 0, 0] / c  # (B, 3)
    assert ratio.min() >= (1 - s) * (1 - s / 2) - 1e-6 and ratio.max() <= (1 + s) * (1 + s / 2) + 1e-6


def test_gradients_reach_the_input():
    x = torch.rand(2, 3, 8, 8).mul(0.5).add(0.25).requires_grad_()
    random_colour(x, 0.3).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
