import math

import torch
import torch.nn.functional as F
from torch import nn

from lmkcore.ops.contrast import dense_nce, enqueue, info_nce, lighting, momentum_update, random_resized_crop
from lmkcore.ops.coords import grid
from lmkcore.ops.warp import random_tps, tps_points


def test_info_nce_closed_form():
    e = torch.eye(2)
    q, k, queue = e[:1], e[:1], -e[:1].T  # q.k = 1, q.queue = -1
    loss, acc = info_nce(q, k, queue, t=1.0)
    assert math.isclose(loss.item(), math.log(1 + math.exp(-2)), rel_tol=1e-6)  # -log(e / (e + e^-1))
    assert acc.item() == 1.0
    loss_t, _ = info_nce(q, k, queue, t=0.5)  # logits [2, -2]
    assert math.isclose(loss_t.item(), math.log(1 + math.exp(-4)), rel_tol=1e-5)


def test_enqueue_is_fifo_and_the_pointer_wraps():
    queue, ptr = torch.zeros(2, 5), torch.zeros((), dtype=torch.long)
    keys = torch.arange(1.0, 7.0)[:, None].expand(6, 2)  # key i is (i, i), i = 1..6
    enqueue(queue, ptr, keys[:3])
    assert queue[0].tolist() == [1, 2, 3, 0, 0] and ptr.item() == 3
    enqueue(queue, ptr, keys[3:])  # columns 3, 4, then 0: the oldest (key 1) is replaced
    assert queue[0].tolist() == [6, 2, 3, 4, 5] and queue[1].tolist() == [6, 2, 3, 4, 5] and ptr.item() == 1


def test_enqueue_refuses_a_batch_larger_than_the_queue():
    try:
        enqueue(torch.zeros(2, 3), torch.zeros((), dtype=torch.long), torch.ones(4, 2))
    except ValueError as e:
        assert "nce_k" in str(e)
    else:
        raise AssertionError("no error")


def test_momentum_update_hand_computed():
    q, k = nn.Linear(2, 2), nn.Linear(2, 2)
    for p in q.parameters():
        nn.init.constant_(p, 1.0)
    for p in k.parameters():
        nn.init.constant_(p, 0.0)
    momentum_update(k, q, 0.9)
    assert torch.allclose(k.weight, torch.full((2, 2), 0.1))  # 0.9 * 0 + 0.1 * 1
    momentum_update(k, q, 0.9)
    assert torch.allclose(k.bias, torch.full((2,), 0.19))  # 0.9 * 0.1 + 0.1 * 1


def test_random_resized_crop_stays_inside_and_flips():
    theta = random_resized_crop(500, scale=(0.2, 1.0), generator=torch.Generator().manual_seed(0))  # (B, 2, 3)
    corners = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    pts = corners @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]  # (B, 4, 2)
    assert pts.abs().max() <= 1 + 1e-6
    area = (theta[:, 0, 0] * theta[:, 1, 1]).abs()  # fraction of the image area
    assert area.min() >= 0.2 * 0.74 and area.max() <= 1 + 1e-6  # clamping a side can only shrink it
    flipped = (theta[:, 0, 0] < 0).float().mean()
    assert 0.4 < flipped < 0.6
    assert (random_resized_crop(50, flip=False)[:, 0, 0] > 0).all()


def test_lighting_adds_one_rgb_offset_per_image():
    x = torch.rand(3, 3, 4, 4)
    y = lighting(x, 0.1, generator=torch.Generator().manual_seed(0))
    d = y - x
    assert torch.allclose(d, d[:, :, :1, :1].expand_as(d)) and d.abs().max() > 0
    assert torch.equal(lighting(x, 0.0), x)


def _smooth_features(b, d, s, seed=0):
    g = torch.Generator().manual_seed(seed)
    f = F.interpolate(torch.randn(b, d, 6, 6, generator=g), size=(s, s), mode="bicubic", align_corners=True)
    return F.normalize(f, dim=1)  # (B, D, s, s)


def test_dense_nce_is_lower_for_aligned_than_for_shuffled_correspondences():
    torch.manual_seed(0)
    b, d, s, p = 4, 16, 24, 64
    za = _smooth_features(b, d, s)  # view a
    warp = random_tps(b, shift=0.05)
    g = grid(s, s).reshape(1, s * s, 2)
    zb = F.grid_sample(za, tps_points(warp, g).reshape(b, s, s, 2), align_corners=True)  # view b at p = a at T(p)
    zb = F.normalize(zb, dim=1)
    idx = torch.randint(s * s, (b, p))
    pts = grid(s, s).reshape(-1, 2)[idx]  # (B, P, 2)
    zb_p = zb.flatten(2).gather(2, idx[:, None].expand(-1, d, -1)).transpose(1, 2)  # (B, P, D)
    src = tps_points(warp, pts)
    aligned = dense_nce(zb_p, za, src, 0.1)
    shuffled = dense_nce(zb_p, za, src[:, torch.randperm(p)], 0.1)
    assert aligned < 0.5 * shuffled, (aligned, shuffled)
    assert aligned < math.log(p)  # better than chance


def test_dense_nce_gradient_reaches_both_views():
    za = _smooth_features(2, 8, 8).requires_grad_()
    zb = F.normalize(torch.randn(2, 5, 8), dim=-1).requires_grad_()
    dense_nce(zb, za, torch.rand(2, 5, 2) * 2 - 1, 0.1).backward()
    assert za.grad.abs().sum() > 0 and zb.grad.abs().sum() > 0
