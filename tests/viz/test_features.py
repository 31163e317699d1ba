import torch

from lmkcore.viz.features import component_grid, feature_pca_grid, few_shot_curve, landmark_grid, pca_maps


def test_pca_maps_recovers_a_rank_one_pattern_with_a_fixed_sign():
    torch.manual_seed(0)
    a = torch.randn(2, 1, 5, 5)  # (B, 1, h, w) the pattern
    v = torch.tensor([3.0, -1.0, 0.5])[None, :, None, None]  # one direction, largest loading positive
    maps = pca_maps(a * v, n=3)  # (B, 3, h, w)
    centred = (a - a.mean()) * v.norm()
    assert maps.shape == (2, 3, 5, 5)
    assert torch.allclose(maps[:, 0:1], centred, atol=1e-4)  # first component = the pattern, times |v|
    assert maps[:, 1:].abs().max() < 1e-4  # rank 1: nothing else
    flipped = pca_maps(-(a * v), n=1)
    assert torch.allclose(flipped, -maps[:, :1], atol=1e-4)  # sign follows the largest loading


def test_pca_maps_is_joint_over_the_batch():
    f = torch.zeros(2, 2, 3, 3)
    f[0, 0] = 1.0  # image 0 lies along channel 0, image 1 at the origin
    maps = pca_maps(f, n=1)
    assert maps[0].min() > maps[1].max()  # one component, comparable across images


def test_figures_are_drawn_and_saved(tmp_path):
    images, feats = torch.rand(5, 3, 16, 16), torch.randn(5, 12, 8, 8)
    feature_pca_grid(images, feats, tmp_path / "pca.png", cols=3)
    component_grid(images, feats, tmp_path / "components.png", n=4, rows=2)
    landmark_grid(images, torch.rand(5, 3, 2) * 2 - 1, torch.rand(5, 3, 2) * 2 - 1, tmp_path / "lm.png", cols=3)
    few_shot_curve([(1, 30.0), (10, 12.0), (100, 8.0)], tmp_path / "fs.png", label="head")
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("pca.png", "components.png", "lm.png", "fs.png"))
