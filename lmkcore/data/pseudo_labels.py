"""Pseudo-labels of the self-training method: the bootstrap, the re-labelling after each round, the file.

Mallis et al. (card `mallis_self_training.md` sections 3 and 5). A pseudo-label is (x, y, cluster) on
one image; an image carries each cluster at most once, and a varying number of them.

    bootstrap(data, config)            weight-free points (ops.interest) -> outliers out -> k-means ->
                                       per-image Hungarian assignment with per-cluster thresholds
    relabel(method, data, labels, c)   after a Step-1 round: detector > 0.2 + NMS, union with the
                                       previous labels (old points win), the network's descriptors ->
                                       a fresh k-means -> Hungarian + thresholds

Items are keyed by their "index" field: the item's position in the data set it comes from (procedural
figures and stores give it; a store's row is "row"). Labelling and training must therefore see the same
data set object (a `Subset` keeps its parent's positions, which works as well). Labels live in the
experiment folder as `.pt` files loaded with `weights_only=True`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader

from ..ops.clusters import assign, cluster_thresholds, kmeans, outlier_mask
from ..ops.interest import detect_points, in_box, map_nms, sample_descriptors, stamp_maps, superpoint_points


@dataclass
class PseudoLabels:
    """Labels of N images in flat form: P points.

    index (N,) the items' "index" values; points (P, 2) normalised (x, y); image (P,) row of `index`;
    cluster (P,) in [0, M); centroids (M, D) and thresholds (M,) of the clustering that made them."""

    index: Tensor
    points: Tensor
    image: Tensor
    cluster: Tensor
    centroids: Tensor
    thresholds: Tensor

    @property
    def n_clusters(self) -> int:
        return len(self.centroids)

    def counts(self) -> Tensor:
        """Labels per cluster `(M,)`."""
        return torch.bincount(self.cluster, minlength=self.n_clusters)

    def per_image(self) -> Tensor:
        """Labels per image `(N,)`."""
        return torch.bincount(self.image, minlength=len(self.index))

    def select(self, keep: Tensor) -> "PseudoLabels":
        """Only the clusters where `keep` `(M,)` is True, renumbered 0 .. keep.sum() - 1 in order."""
        new_id = torch.cumsum(keep.long(), 0) - 1
        m = keep[self.cluster]
        return PseudoLabels(self.index, self.points[m], self.image[m], new_id[self.cluster[m]],
                            self.centroids[keep], self.thresholds[keep])

    def dense(self) -> tuple[Tensor, Tensor]:
        """Lookup tables by "index" value: points `(R, M, 2)` and present `(R, M)` bool, R = max index + 1
        (exact: a cluster appears at most once per image)."""
        rows = int(self.index.max()) + 1 if len(self.index) else 1
        pts, present = torch.zeros(rows, self.n_clusters, 2), torch.zeros(rows, self.n_clusters, dtype=torch.bool)
        r = self.index[self.image]
        pts[r, self.cluster] = self.points.float()
        present[r, self.cluster] = True
        return pts, present

    @classmethod
    def from_dense(cls, index: Tensor, pts: Tensor, present: Tensor, centroids: Tensor, thresholds: Tensor):
        """The inverse of `dense` for the images `index` (N,)."""
        r, c = torch.nonzero(present[index], as_tuple=True)  # rows of `index`, clusters
        return cls(index.clone(), pts[index[r], c].clone(), r, c, centroids, thresholds)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        torch.save({f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PseudoLabels":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no pseudo-labels at {path}")
        d = torch.load(path, map_location="cpu", weights_only=True)
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


def _cluster(points: Tensor, image: Tensor, desc: Tensor, index: Tensor, n_clusters: int, seed: int) -> PseudoLabels:
    """k-means on the descriptors, thresholds, Hungarian assignment; the unassigned points dropped."""
    centroids = kmeans(desc, n_clusters, seed=seed)
    thr = cluster_thresholds(desc, centroids)
    c = assign(desc, image, centroids, thr)
    ok = c >= 0
    return PseudoLabels(index, points[ok], image[ok], c[ok], centroids, thr)


def bootstrap(data, config) -> PseudoLabels:
    """Step 0: weight-free interest points on every item of `data` (items with "image" (3, H, W), "index",
    and "box" (4,) pixels where `config.in_box`), clustered into `config.n_clusters` landmark classes.
    With `config.superpoint` (a local weights file), SuperPoint finds and describes the points (the paper);
    a missing file is a clear error (nothing is downloaded)."""
    c = config
    if c.superpoint:  # the paper's bootstrap, from the user's local weights (never downloaded)
        from ..nets.superpoint import load_superpoint

        net = load_superpoint(c.superpoint)

        def find(im):
            return superpoint_points(net, im, size=c.bootstrap_size, zooms=tuple(c.zooms), nms=c.bootstrap_nms)
    else:
        def find(im):
            return detect_points(im, size=c.bootstrap_size, detector=c.detector, nms=c.bootstrap_nms,
                                 zooms=tuple(c.zooms), quality=c.corner_quality, desc_size=c.desc_size)
    pts, img, desc, index = [], [], [], []
    for i in range(len(data)):  # one detector call per image (and zoom): the images are the loop, not pixels
        item = data[i]
        p, _, d = find(item["image"])
        if c.in_box and "box" in item:
            keep = in_box(p, torch.as_tensor(item["box"]), item["image"].shape[-1], c.box_margin)
            p, d = p[keep], d[keep]
        p, d = p[: c.max_points], d[: c.max_points]  # strongest first
        pts.append(p)
        desc.append(d)
        img.append(torch.full((len(p),), i, dtype=torch.long))
        index.append(int(item["index"]))
    pts, img, desc = torch.cat(pts), torch.cat(img), torch.cat(desc)
    keep = outlier_mask(desc, k=100, drop=c.outlier_drop)
    return _cluster(pts[keep], img[keep], desc[keep], torch.tensor(index), c.n_clusters, c.seed)


@torch.no_grad()
def relabel(method, data, labels: PseudoLabels, *, batch_size: int = 32, device: str = "cpu") -> PseudoLabels:
    """After a Step-1 round: the detector's points (> `method.config.detect_threshold`, 3 x 3 box-NMS, not
    on the map's border, inside the item's box where `in_box`, at most `max_points` per image) joined with
    `labels`' points (a new point within one map pixel of an old one is dropped), described by the
    network, re-clustered from scratch and re-assigned."""
    c = method.config
    method.eval().to(device)
    old_pts, old_present = labels.dense()
    pts, img, desc, index = [], [], [], []
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    row = 0
    for batch in loader:
        x = method.prepare(batch["image"].to(device))
        feats = method.net.features(x)
        det, dmap = method.net.detect(feats), F.normalize(method.net.describe(feats), dim=1)  # (B,1,h,w), (B,D,h,w)
        b, _, h, w = det.shape
        idx = batch["index"].long()
        inside = idx < len(old_present)
        prev = torch.where(inside[:, None], old_present[idx.clamp_max(len(old_present) - 1)], False)  # (B, M)
        prev_pts = old_pts[idx.clamp_max(len(old_pts) - 1)]  # (B, M, 2)
        # occupancy of the old points, dilated by one pixel: new points there lose the tie
        occ = stamp_maps(prev_pts.to(device), prev.to(device), h, w).amax(1, keepdim=True)  # (B, 1, h, w)
        occ = F.max_pool2d(occ, 3, stride=1, padding=1)
        score = det * (map_nms(det, 1) & (det > c.detect_threshold) & (occ == 0))
        score[..., :1, :] = score[..., -1:, :] = score[..., :, :1] = score[..., :, -1:] = 0  # the border filter
        top = score.flatten(1).topk(min(c.max_points, h * w), dim=1)  # (B, T) strongest new points
        ys, xs = top.indices // w, top.indices % w
        new = torch.stack([xs, ys], -1).float() / torch.tensor([w - 1, h - 1], device=device) * 2 - 1  # (B, T, 2)
        new_ok = top.values > 0
        if c.in_box and "box" in batch:  # the bootstrap's in-box filter, for the new points too
            new_ok &= in_box(new, batch["box"].to(device), batch["image"].shape[-1], c.box_margin)
        allp = torch.cat([prev_pts.to(device), new], 1)  # (B, M + T, 2)
        ok = torch.cat([prev.to(device), new_ok], 1)
        d = F.normalize(sample_descriptors(dmap, allp), dim=-1)  # (B, M + T, D)
        bi, pi = torch.nonzero(ok, as_tuple=True)
        pts.append(allp[bi, pi].cpu())
        desc.append(d[bi, pi].float().cpu())
        img.append((bi + row).cpu())
        index.append(idx)
        row += b
    method.train()
    return _cluster(torch.cat(pts), torch.cat(img), torch.cat(desc), torch.cat(index), c.n_clusters, c.seed)
