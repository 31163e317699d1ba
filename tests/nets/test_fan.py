"""The FAN-style network of the self-training method (nets/fan.py)."""
import pytest
import torch

from lmkcore.nets.fan import FAN, ConvBlock


def test_conv_block_keeps_size_and_sets_channels():
    assert ConvBlock(8, 16)(torch.rand(2, 8, 8, 8)).shape == (2, 16, 8, 8)


@pytest.mark.parametrize("stride", [2, 4])
def test_heads_at_input_over_stride(stride):
    net = FAN(stem=8, width=16, depth=2, descriptor_dim=6, n_landmarks=5, stride=stride)
    f = net.features(torch.rand(2, 3, 32, 32))
    s = 32 // stride
    assert f.shape == (2, 16, s, s)
    det = net.detect(f)
    assert det.shape == (2, 1, s, s) and ((det > 0) & (det < 1)).all()
    assert net.describe(f).shape == (2, 6, s, s) and net.heatmaps(f).shape == (2, 5, s, s)
    with pytest.raises(RuntimeError, match="landmark"):
        FAN(stem=8, width=16, depth=2).heatmaps(f)
    with pytest.raises(ValueError, match="stride"):
        FAN(stride=8)
