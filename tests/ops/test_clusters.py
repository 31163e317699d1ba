"""Clustering descriptors into landmark classes (ops/clusters.py)."""
import pytest
import torch
import torch.nn.functional as F

from lmkcore.ops.clusters import assign, cluster_thresholds, kmeans, merge_channels, outlier_mask

pytest.importorskip("faiss")


def blobs(n_per: int = 30, k: int = 4, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(k, d, generator=g), dim=1) * 3
    x = centres.repeat_interleave(n_per, 0) + 0.1 * torch.randn(k * n_per, d, generator=g)
    return x, torch.arange(k).repeat_interleave(n_per)


def test_kmeans_is_deterministic_by_seed_and_finds_the_blobs():
    x, truth = blobs()
    a, b = kmeans(x, 4, seed=0), kmeans(x, 4, seed=0)
    assert torch.equal(a, b)
    member = torch.cdist(x, a).argmin(1)
    for t in range(4):  # each blob falls in one cluster
        assert member[truth == t].unique().numel() == 1
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(x[:3], 4)


def test_assign_gives_each_cluster_at_most_once_per_image_and_respects_thresholds():
    x, truth = blobs()
    c = kmeans(x, 4, seed=0)
    thr = cluster_thresholds(x, c)
    image = torch.arange(len(x)) % 10  # 10 images, 12 points each (3 per blob)
    lab = assign(x, image, c, thr)
    for i in range(10):
        got = lab[(image == i) & (lab >= 0)]
        assert got.unique().numel() == got.numel()  # at most once per image
    assert (lab >= 0).sum() >= 20  # most images keep most clusters
    none = assign(x, image, c, torch.zeros(4))  # nothing is closer than 0
    assert (none == -1).all()
    assert torch.equal(assign(x, image, c, thr), lab)


def test_cluster_thresholds_are_mean_plus_std_of_member_distances():
    x = torch.tensor([[0.0, 1.0], [0.0, 3.0], [10.0, 0.0]])
    c = torch.tensor([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]])
    thr = cluster_thresholds(x, c)
    assert thr[0] == pytest.approx(2.0 + 2**0.5)  # distances 1, 3: mean 2, std sqrt(2)
    assert thr[1] == pytest.approx(0.0) and thr[2] == float("inf")


def test_outlier_mask_drops_the_far_descriptors():
    x, _ = blobs(n_per=20)
    far = torch.full((5, x.shape[1]), 40.0) + torch.arange(5.0)[:, None] * 10
    keep = outlier_mask(torch.cat([x, far]), k=10, drop=0.4)
    assert not keep[-5:].any() and keep.float().mean() == pytest.approx(0.6, abs=0.02)


def test_merge_channels_absorbs_a_channel_that_fires_with_a_more_populated_one():
    n = 10
    pos = torch.zeros(n, 3, 2)
    pos[:, 1] = 0.01  # channel 1 always beside channel 0
    pos[:, 2] = 0.5  # channel 2 elsewhere
    conf = torch.ones(n, 3)
    into = merge_channels(pos, conf, torch.tensor([50, 80, 20]), torch.ones(3, dtype=torch.bool))
    assert into.tolist() == [1, 1, 2]  # 0 goes into the more populated 1
    low = merge_channels(pos, conf * 0.1, torch.tensor([50, 80, 20]), torch.ones(3, dtype=torch.bool))
    assert low.tolist() == [0, 1, 2]  # peaks below the threshold never merge
