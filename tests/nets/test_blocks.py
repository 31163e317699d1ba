import pytest
import torch

from lmkcore.nets import Detector, UNet


@pytest.mark.parametrize("size", [32, 40, 36])
def test_unet_keeps_any_size(size):
    """Sizes that do not halve evenly down to the bottleneck (40 -> 20 -> 10 -> 5 -> 2) still come back whole."""
    net = UNet(4, 3, base=4, depth=4)
    assert net(torch.rand(2, 4, size, size)).shape == (2, 3, size, size)


def test_detector_output_size_matches_out_size():
    det = Detector(5, base=4, n_down=3, n_up=1)
    for size in (64, 80, 96):
        assert det(torch.rand(1, 3, size, size)).shape[-1] == det.out_size(size)


@pytest.mark.parametrize("size", [8, 9, 20])
def test_fast_halving_is_the_bilinear_halving(size):
    """`_half` (a 2 x 2 mean) and `_conv_half` (one stride-2 4 x 4 convolution) compute what the paper's
    block writes, conv 3 x 3 then bilinear halving, values and gradients, at even and odd sizes."""
    import torch.nn.functional as F

    from lmkcore.nets.blocks import _conv_half, _half

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    x = torch.randn(2, 3, size, size, dtype=torch.double, requires_grad=True)
    grads = lambda out: torch.autograd.grad((out * out).sum(), [x, conv.weight, conv.bias])  # noqa: E731
    ref = F.interpolate(conv(x), scale_factor=0.5, mode="bilinear", align_corners=False)
    g_ref = grads(ref)
    for out in (_half(conv(x)), _conv_half(conv, x)):
        assert out.shape == ref.shape and torch.allclose(out, ref)
        assert all(torch.allclose(a, b) for a, b in zip(grads(out), g_ref))


def test_detector_accepts_either_memory_format():
    """A channels-last detector given an NCHW image (a warped crop) returns the same heatmaps."""
    det = Detector(3, base=4, n_down=2, n_up=1).eval().to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(det(x), det(x.contiguous(memory_format=torch.channels_last)), atol=1e-6)
