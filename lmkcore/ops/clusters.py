"""Clustering descriptors into landmark classes (Mallis et al., card `mallis_self_training.md` sections 3, 6).

- `outlier_mask`: score = median L2 distance to the k nearest descriptors, the highest `drop` share out.
- `kmeans`: faiss (CPU) k-means, seeded, so the same descriptors give the same centroids.
- `cluster_thresholds`: per cluster, mean + 1 std of its members' distances to the centroid.
- `assign`: per image, Hungarian matching of points to centroids (each cluster at most once per
  image), a match kept only below its cluster's threshold.
- `merge_channels`: Step 2's merging of landmark channels that fire at the same place.

Descriptors are float32 `(N, D)`, L2-normalised by the caller.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def _faiss():
    import faiss

    return faiss


def outlier_mask(desc: Tensor, k: int = 100, drop: float = 0.4) -> Tensor:
    """Which descriptors `(N, D)` to keep `(N,)` bool: the median L2 distance to their `k` nearest other
    descriptors (exact search) is below the (1 - `drop`) quantile (card section 3: k 100, drop 40 %)."""
    n = len(desc)
    if n < 3 or drop <= 0:
        return torch.ones(n, dtype=torch.bool)
    faiss = _faiss()
    x = np.ascontiguousarray(desc.float().numpy())
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    kk = min(k + 1, n)
    d2, _ = index.search(x, kk)  # (N, kk) squared distances, itself first
    score = np.median(np.sqrt(np.maximum(d2[:, 1:], 0)), axis=1)
    cut = np.quantile(score, 1.0 - drop)
    return torch.from_numpy(score <= cut) if drop < 1 else torch.zeros(n, dtype=torch.bool)


def kmeans(desc: Tensor, k: int, *, seed: int = 0, iters: int = 100, max_points: int = 500_000) -> Tensor:
    """Centroids `(k, D)` of descriptors `(N, D)` (faiss k-means, `iters` iterations, one run,
    `seed`; at most `max_points` descriptors, a seeded random subset). Deterministic by seed."""
    if len(desc) < k:
        raise ValueError(f"kmeans: {len(desc)} descriptors cannot make n_clusters={k} clusters; "
                         "lower n_clusters or give more images")
    faiss = _faiss()
    x = desc.float()
    if len(x) > max_points:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_points]]
    x = np.ascontiguousarray(x.numpy())
    km = faiss.Kmeans(x.shape[1], k, niter=iters, nredo=1, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=max(len(x) // k + 1, 256))
    km.train(x)
    return torch.from_numpy(km.centroids.copy())


def cluster_thresholds(desc: Tensor, centroids: Tensor) -> Tensor:
    """Per cluster, mean + 1 std of the L2 distances of its members (descriptors whose nearest centroid
    it is) to it: `(M,)`; a cluster without members gets +inf (it accepts nothing it would not
    win by Hungarian matching)."""
    d = torch.cdist(desc.float(), centroids.float())  # (N, M)
    dist, member = d.min(1)
    m = len(centroids)
    count = torch.zeros(m).index_add_(0, member, torch.ones_like(dist))
    mean = torch.zeros(m).index_add_(0, member, dist) / count.clamp_min(1)
    var = torch.zeros(m).index_add_(0, member, (dist - mean[member]) ** 2) / (count - 1).clamp_min(1)
    thr = mean + var.sqrt()
    return torch.where(count > 0, thr, torch.full_like(thr, float("inf")))


def assign(desc: Tensor, image: Tensor, centroids: Tensor, thresholds: Tensor) -> Tensor:
    """Cluster of each point `(N,)` (-1: none): per image (`image` (N,) ids), a Hungarian matching of its
    points to the centroids on L2 distance, so that each cluster appears at most once per image; a
    match is kept only where the distance is below the cluster's threshold (card section 3)."""
    d = torch.cdist(desc.float(), centroids.float()).numpy()  # (N, M)
    out = np.full(len(desc), -1, np.int64)
    img = image.numpy()
    order = np.argsort(img, kind="stable")
    bounds = np.flatnonzero(np.diff(img[order])) + 1
    thr = thresholds.numpy()
    for rows in np.split(order, bounds):  # one assignment problem per image
        if len(rows) == 0:
            continue
        r, c = linear_sum_assignment(d[rows])
        ok = d[rows[r], c] < thr[c]
        out[rows[r[ok]]] = c[ok]
    return torch.from_numpy(out)


def merge_channels(pos: Tensor, conf: Tensor, population: Tensor, active: Tensor, *, threshold: float = 0.2,
                   dist: float = 0.045, ratio: float = 0.7, chunk: int = 1024) -> Tensor:
    """Step 2's merging (card section 6): which channel each channel is absorbed into `(K,)` (itself
    where kept; -1 where inactive). `pos` `(N, K, 2)` normalised peak positions on N images, `conf`
    `(N, K)` peak values, `population` `(K,)` labels per channel, `active` `(K,)` bool.

    For each channel pair, `both[i, j]` counts images where both peaks exceed `threshold` and lie closer
    than `dist` (normalised units; the card's 5.7 px at 256 is 0.045); visiting channels from most to
    least populated, a channel is absorbed into the first earlier kept channel with
    `both > ratio * min(confident counts of the two)`."""
    k = pos.shape[1]
    ok = (conf > threshold) & active[None]  # (N, K)
    both = torch.zeros(k, k)
    for s in range(0, len(pos), chunk):  # chunks of images bound the (n, K, K) memory
        p, o = pos[s:s + chunk].float(), ok[s:s + chunk]
        close = torch.cdist(p, p) < dist  # (n, K, K)
        both += (close & o[:, :, None] & o[:, None, :]).sum(0).float()
    count = ok.sum(0).float()  # (K,)
    into = torch.where(active, torch.arange(k), torch.full((k,), -1))
    kept: list[int] = []
    for j in torch.argsort(population.float(), descending=True, stable=True).tolist():  # K channels, not pixels
        if not active[j]:
            continue
        target = next((i for i in kept if both[i, j] > ratio * min(count[i], count[j])), None)
        if target is None:
            kept.append(j)
        else:
            into[j] = target
    return into
