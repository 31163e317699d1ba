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
