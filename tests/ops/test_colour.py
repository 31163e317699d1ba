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


# the batched torchvision-style jitter
import pytest  # noqa: E402
import torchvision.transforms.functional as TF  # noqa: E402

from lmkcore.ops.colour import (  # noqa: E402
    COLOUR_PRESETS,
    IDENTITY_COLOUR,
    ColourJitter,
    adjust_colour,
    colour_jitter,
    colour_params,
    shift_hue,
)


def test_identity_parameters_give_the_same_image():
    x = torch.rand(4, 3, 10, 12, generator=torch.Generator().manual_seed(0))
    p = torch.tensor(IDENTITY_COLOUR).expand(4, 4)
    assert torch.allclose(adjust_colour(x, p), x, atol=1e-6)
    assert torch.allclose(shift_hue(x, torch.zeros(4)), x, atol=1e-5)  # through HSV and back
    assert torch.allclose(shift_hue(x, torch.ones(4)), x, atol=1e-5)  # a full turn
    y, q = colour_jitter(x, "none", generator=torch.Generator().manual_seed(1))
    assert torch.allclose(y, x, atol=1e-6) and torch.equal(q, p)


def test_each_step_matches_torchvision_per_image():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 3, 9, 9, generator=g)
    p = colour_params(3, ColourJitter(0.5, 0.5, 0.5, 0.4), generator=g)
    y = adjust_colour(x, p)
    for i in range(3):
        b, c, s, h = p[i].tolist()
        ref = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i], b), c), s), h)
        assert torch.allclose(y[i], ref, atol=1e-5), i


def test_jitter_stays_in_range_and_is_drawn_within_the_strengths():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 3, 8, 8, generator=g)
    for name, j in COLOUR_PRESETS.items():
        y, p = colour_jitter(x, name, generator=g)
        assert y.min() >= 0 and y.max() <= 1, name
        lo = torch.tensor([-j.brightness if j.additive_brightness else max(0.0, 1 - j.brightness),
                           max(0.0, 1 - j.contrast), max(0.0, 1 - j.saturation), -j.hue])
        hi = torch.tensor([j.brightness if j.additive_brightness else 1 + j.brightness,
                           1 + j.contrast, 1 + j.saturation, j.hue])
        assert (p >= lo - 1e-6).all() and (p <= hi + 1e-6).all(), name
    y, p = colour_jitter(x, "lorenz", generator=g)
    assert p.std(0).min() > 0.05 and (y - x).abs().mean() > 0.05  # it does vary per image and change colours


def test_a_grey_image_keeps_its_grey_under_hue_and_saturation():
    x = torch.full((2, 3, 4, 4), 0.3)
    p = torch.tensor([[1.0, 1.0, 1.7, 0.25], [1.0, 1.0, 0.2, -0.4]])
    assert torch.allclose(adjust_colour(x, p), x, atol=1e-4)  # torchvision's luma weights sum to 0.9999


def test_additive_brightness_adds():
    x = torch.full((1, 3, 2, 2), 0.5)
    p = torch.tensor([[0.2, 1.0, 1.0, 0.0]])
    assert torch.allclose(adjust_colour(x, p, additive_brightness=True), x + 0.2)


def test_bad_strengths_and_shapes_are_named():
    with pytest.raises(ValueError, match="hue <= 0.5"):
        ColourJitter(hue=0.7)
    with pytest.raises(ValueError, match="colour must be"):
        colour_jitter(torch.rand(1, 3, 2, 2), "sepia")
    with pytest.raises(ValueError, match="params"):
        adjust_colour(torch.rand(2, 3, 2, 2), torch.ones(3, 4))
