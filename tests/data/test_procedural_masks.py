"""The procedural figures' true foreground, and the two-frame pairs (same figure and background, two poses)."""
import torch

from lmkcore.data.procedural import (ProceduralFigures, ProceduralPairs, _item_seed, figure_masks, figures,
                                     sample_poses)


def test_mask_is_the_figure():
    data = ProceduralFigures(6, 32, seed=5)
    for i in range(3):
        m, kp = data.mask(i), data[i]["keypoints"]
        assert m.shape == (1, 32, 32) and 0 <= m.min() and m.max() <= 1
        assert 0.02 < (m > 0.5).float().mean() < 0.5  # a figure, not the whole image
        torso = ((kp[2] + kp[3] + kp[8] + kp[9]) / 4 + 1) / 2 * 31  # the torso's centre, in pixels
        x, y = torso.round().long().tolist()
        assert m[0, y, x] > 0.9  # soft edges: 1 px of blur at 32 px
        far = (torch.stack(torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="xy"), -1)
               [:, :, None] - kp).norm(dim=-1).amin(-1) > 0.4  # (32, 32): pixels far from every joint
        assert far.any() and m[0][far].max() < 1e-3


def test_figure_masks_match_the_batched_renderer():
    g = torch.Generator().manual_seed(3)
    joints, scale = sample_poses(4, g)
    m = figure_masks(joints, scale, 24, "stick")
    assert m.shape == (4, 1, 24, 24)
    images, kp = figures(4, 24, 3, "stick")
    torch.testing.assert_close(kp, joints)
    # a pixel on a bone's axis is covered
    mid = ((kp[:, 2] + kp[:, 3]) / 2 + 1) / 2 * 23  # between the hips, in pixels
    for b in range(4):
        x, y = mid[b].round().long().tolist()
        assert m[b, 0, y, x] > 0.5


def test_pairs_share_figure_and_background_and_move_the_pose():
    pairs, single = ProceduralPairs(5, 32, seed=2, motion=0.1), ProceduralFigures(5, 32, seed=2)
    for i in range(3):
        item = pairs[i]
        torch.testing.assert_close(item["image"], single[i]["image"])  # frame 1 is the figure data set's item
        assert item["image2"].shape == (3, 32, 32) and item["keypoints2"].shape == (14, 2)
        assert (item["keypoints2"] - item["keypoints"]).norm(dim=-1).mean() > 0.05  # another pose
        g = torch.Generator().manual_seed(_item_seed(2, i))
        _, scale = sample_poses(1, g)
        m1 = pairs.mask(i)[0]
        m2 = figure_masks(item["keypoints2"][None], scale, 32)[0, 0]
        off = (m1 < 1e-4) & (m2 < 1e-4)  # off both figures: the still background
        assert off.float().mean() > 0.3
        torch.testing.assert_close(item["image"][:, off], item["image2"][:, off], atol=1e-4, rtol=0)
    assert torch.equal(pairs[1]["image2"], ProceduralPairs(5, 32, seed=2, motion=0.1)[1]["image2"])  # deterministic
