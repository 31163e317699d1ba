import pytest
import torch

from lmkcore.ops import block_mask, reconstruction_loss
from lmkcore.ops.losses import laplacian_pyramid, ssim


def test_block_mask_ratio_and_blocks():
    g = torch.Generator().manual_seed(0)
    m = block_mask(64, 32, block=8, missing=0.8, generator=g)
    assert m.shape == (64, 1, 32, 32) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert abs(m.mean().item() - 0.2) < 0.03  # 20 % kept
    cells = m[:, :, ::4, ::4]  # constant on 4 x 4 pixel cells
    assert torch.equal(torch.nn.functional.interpolate(cells, size=32, mode="nearest"), m)


def test_block_mask_rejects_bad_ratio():
    with pytest.raises(ValueError, match="missing"):
        block_mask(1, 8, 4, 1.0)


def test_pyramid_reconstructs_and_ssim_identity():
    x = torch.rand(2, 3, 32, 32)
    pyr = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyr] == [32, 16, 8]
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("kind", ["pyramid", "l1"])
def test_weight_free_losses(kind):
    loss = reconstruction_loss(kind)
    x = torch.rand(2, 3, 32, 32)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert loss(x, 1 - x).item() > 0.1


def test_vgg_without_weights_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pyramid"):
        reconstruction_loss("vgg16")


def test_ssim_weight_belongs_to_the_pyramid_loss():
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert reconstruction_loss("pyramid", ssim=0.0)(x, y) < reconstruction_loss("pyramid")(x, y)
    with pytest.raises(ValueError, match="ssim"):
        reconstruction_loss("l1", ssim=0.0)


def test_separation_loss_is_high_for_collapsed_keypoints_and_low_for_spread_ones():
    from lmkcore.ops import separation_loss, spread_points

    collapsed = torch.zeros(2, 6, 2)
    spread = spread_points(6, radius=0.8)[None].expand(2, -1, -1)
    assert separation_loss(collapsed, 0.08) == pytest.approx(1.0)
    assert separation_loss(spread, 0.08) < 0.01
    kp = (collapsed + 0.01 * torch.randn(2, 6, 2)).requires_grad_()
    separation_loss(kp, 0.08).backward()
    assert kp.grad.abs().sum() > 0  # it pushes the keypoints apart
