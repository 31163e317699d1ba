"""Figures of the self-training method (notebook 03): pseudo-labels coloured by cluster, a gallery of
each cluster's patches, cluster sizes per round, Step-2 landmarks with their confidences.

The seed's three visualisations (`Visualise.py`: Step1_Keypoints, Step1_Clusters, Step2) plus the
cluster counts. Images `(B, 3, H, W)` in [0, 1]; points normalised (x, y) in [-1, 1].
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .draw import to_hwc, to_pixels
from .runs import _plt, save_figure


def cluster_colours(m: int) -> np.ndarray:
    """`(M, 3)` RGB colours for cluster ids 0 .. M-1 (tab20 up to 20, then a hue wheel)."""
    import matplotlib

    if m <= 20:
        return matplotlib.colormaps["tab20"](np.arange(m))[:, :3]
    return matplotlib.colormaps["hsv"](np.arange(m) / m)[:, :3]


def _grid(n: int, cols: int, size: float = 1.8):
    plt = _plt()
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes



def labelled_points(images: Tensor, labels, rows: Tensor | None = None, path=None, *, cols: int = 8,
                    title: str | None = None):
    """Step-1 pseudo-labels of images `(B, 3, H, W)` coloured by cluster. `labels` is a `PseudoLabels`;
    `rows` `(B,)` are the images' rows in it (default 0 .. B-1)."""
    rows = torch.arange(len(images)) if rows is None else rows
    colours = cluster_colours(labels.n_clusters)
    fig, axes = _grid(len(images), cols)
    for ax, img, r in zip(axes.flat, images, rows.tolist()):
        ax.imshow(to_hwc(img), interpolation="nearest")
        sel = labels.image == r
        p = to_pixels(labels.points[sel], img.shape[-1])
        ax.scatter(p[:, 0], p[:, 1], s=14, c=colours[labels.cluster[sel].numpy()], edgecolors="black", linewidths=0.4)
    return save_figure(fig, path, title or "pseudo-labels, coloured by cluster")


def patches(images: Tensor, points: Tensor, size: int = 16, extent: float = 0.25) -> Tensor:
    """Square crops `(N, 3, size, size)` of side `extent` (normalised units) centred on `points` `(N, 2)`
    of `images` `(N, 3, H, W)` (bilinear; zeros outside)."""
    off = torch.linspace(-extent, extent, size)
    gy, gx = torch.meshgrid(off, off, indexing="ij")
    g = points[:, None, None, :] + torch.stack([gx, gy], -1)[None]  # (N, size, size, 2)
    return F.grid_sample(images.float(), g.float(), align_corners=True)


def cluster_gallery(data, labels, path=None, *, clusters: int = 12, per_cluster: int = 8, size: int = 24,
                    extent: float = 0.25, title: str | None = None):
    """The seed's Step1_Clusters as one montage: a row per cluster (the most populated first), patches
    around that cluster's pseudo-label in different images of `data` (rows of `labels` = positions in
    `data`); a good cluster shows the same object part in every patch."""
    counts = labels.counts()
    order = torch.argsort(counts, descending=True)[:clusters]
    order = order[counts[order] > 0]
    picks = []
    for c in order.tolist():  # clusters, not pixels
        sel = torch.nonzero(labels.cluster == c).squeeze(1)[:per_cluster]
        picks.append(sel)
    sel = torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long)
    images = torch.stack([data[int(r)]["image"] for r in labels.image[sel].tolist()]) if len(sel) else None
    crops = patches(images, labels.points[sel], size, extent) if images is not None else None
    plt = _plt()
    fig, axes = plt.subplots(max(1, len(order)), per_cluster, figsize=(0.9 * per_cluster, 0.9 * max(1, len(order))),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    colours = cluster_colours(labels.n_clusters)
    i = 0
    for row, (c, pick) in enumerate(zip(order.tolist(), picks)):
        for col in range(len(pick)):
            ax = axes[row, col]
            ax.imshow(to_hwc(crops[i]), interpolation="nearest")
            ax.plot([size / 2 - 0.5], [size / 2 - 0.5], "+", color=colours[c], ms=6, mew=1.5)
            i += 1
        axes[row, 0].set_title(f"cluster {c} ({int(counts[c])})", fontsize=6, loc="left")
    return save_figure(fig, path, title or "clusters: patches around each cluster's labels")


def cluster_counts(counts: list[Tensor], path=None, *, title: str | None = None):
    """Labels per cluster, sorted, one line per round (round 0: the bootstrap), and the total per round."""
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    cmap = plt.get_cmap("viridis")
    for r, c in enumerate(counts):
        a.plot(np.sort(c.numpy())[::-1], color=cmap(r / max(1, len(counts) - 1)), label=f"round {r}")
    a.set_xlabel("cluster (sorted)")
    a.set_ylabel("labels")
    a.legend(fontsize=6)
    b.plot(range(len(counts)), [int(c.sum()) for c in counts], "o-")
    b.set_xlabel("round")
    b.set_ylabel("labels in all")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return save_figure(fig, path, title or "cluster sizes per round")


@torch.no_grad()
def landmarks(method, images: Tensor, path=None, *, cols: int = 8, title: str | None = None):
    """Step-2 landmarks on images `(B, 3, H, W)`: one colour per channel, the confidence as opacity,
    crossed out (x) below `method.confidence_threshold` (the protocol does not count those)."""
    kp, conf = method.keypoints(images), method.confidence(images)
    colours = cluster_colours(kp.shape[1])
    thr = method.confidence_threshold
    fig, axes = _grid(len(images), cols)
    for ax, img, k, c in zip(axes.flat, images, kp, conf):
        ax.imshow(to_hwc(img), interpolation="nearest")
        p, c = to_pixels(k, img.shape[-1]), c.float().cpu().numpy()
        on = c >= thr
        ax.scatter(p[on, 0], p[on, 1], s=16, c=np.concatenate([colours[on], c[on, None].clip(0.3, 1)], 1),
                   edgecolors="black", linewidths=0.4)
        ax.scatter(p[~on, 0], p[~on, 1], s=10, marker="x", c=colours[~on], alpha=0.35)
        ax.set_title(f"{int(on.sum())}/{len(on)} confident", fontsize=7)
    return save_figure(fig, path, title or f"step 2 landmarks (opacity: confidence; x: below {thr})")
