import torch

from lmkcore.ops import gaussian_maps, soft_argmax
from lmkcore.ops.colour import adjust_colour
from lmkcore.ops.tps import map_points, warp_with
from lmkcore.ops.views import two_views


def test_keypoints_follow_each_view_and_params_replay_the_view():
    """A batch as a method sees it: keypoints q of the image are at map_points(warp, q) in each view."""
    q = torch.rand(4, 3, 2, generator=torch.Generator().manual_seed(0)) - 0.5  # (B, K, 2)
    bumps = gaussian_maps(q, 80, 80, 0.03)  # (B, K, H, W): one channel per keypoint...
    images = bumps[:, :1].expand(4, 3, 80, 80).contiguous()  # ...the first as a grey image to view
    out = two_views(images, "lorenz", "none", generator=torch.Generator().manual_seed(1))
    assert out["view1"].shape == images.shape and out["colour1"].shape == (4, 4)
    for v in ("1", "2"):
        view = out["view" + v][:, :1]
        found = soft_argmax(view / view.sum((2, 3), keepdim=True))[:, 0]  # (B, 2)
        assert (found - map_points(out["warp" + v], q[:, :1])[:, 0]).abs().max() < 2.0 / 79
    # with colour: the view is exactly adjust_colour(warp(image)) of its params
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    out = two_views(x, "cheng", "dundar", generator=torch.Generator().manual_seed(3))
    warped, _ = warp_with(x, out["warp2"])
    assert torch.allclose(out["view2"], adjust_colour(warped, out["colour2"]), atol=1e-6)


def test_same_generator_same_views():
    x = torch.rand(3, 3, 16, 16)
    a = two_views(x, "dundar", "dundar", generator=torch.Generator().manual_seed(5))
    b = two_views(x, "dundar", "dundar", generator=torch.Generator().manual_seed(5))
    assert torch.equal(a["view1"], b["view1"]) and torch.equal(a["view2"], b["view2"])
    assert (a["view1"] - a["view2"]).abs().mean() > 1e-3
