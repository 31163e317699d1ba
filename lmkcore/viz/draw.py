"""Drawing keypoints, skeletons and learned graphs on images (matplotlib).

Keypoints are normalised (x, y) in [-1, 1] (see `lmkcore.ops.coords`); images `(3, H, W)` in
[0, 1] or `(H, W, 3)` arrays.
"""
from __future__ import annotations

import numpy as np
import torch


def to_hwc(image) -> np.ndarray:
    """`(3, H, W)` tensor in [0, 1] or `(H, W, 3)` array -> `(H, W, 3)` float array."""
    if torch.is_tensor(image):
        image = image.detach().float().cpu()
        image = image.permute(1, 2, 0).numpy() if image.dim() == 3 and image.shape[0] in (1, 3) else image.numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image / 255.0
    return np.clip(image, 0, 1)


def to_pixels(kp, size: int) -> np.ndarray:
    kp = kp.detach().cpu().numpy() if torch.is_tensor(kp) else np.asarray(kp)
    return (kp + 1.0) * 0.5 * (size - 1)


def keypoint_colours(k: int) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps["tab20" if k > 10 else "tab10"](np.arange(k) % 20)[:, :3]


def show_keypoints(ax, image, kp=None, *, skeleton=None, graph=None, visible=None, marker="o",
                   size: float = 18, colours=None, title: str | None = None, max_edges: int | None = None):
    """Image with keypoints; `skeleton` as (i, j) pairs, or a learned `graph` (K, K) of edge weights
    drawn with opacity proportional to weight (strongest `max_edges` only, if given)."""
    img = to_hwc(image)
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    if kp is None or len(kp) == 0:
        return ax
    p = to_pixels(kp, img.shape[0])
    k = len(p)
    vis = np.ones(k, bool) if visible is None else np.asarray(visible, bool)
    colours = keypoint_colours(k) if colours is None else colours
    if graph is not None:
        g = graph.detach().cpu().numpy() if torch.is_tensor(graph) else np.asarray(graph)
        i, j = np.triu_indices(k, 1)
        w = g[i, j]
        order = np.argsort(-w)[: max_edges or len(w)]
        wmax = max(float(w.max()), 1e-8)
        for e in order:
            ax.plot(p[[i[e], j[e]], 0], p[[i[e], j[e]], 1], "-", color="white", lw=2.0,
                    alpha=float(np.clip(w[e] / wmax, 0.05, 1.0)))
    for a, b in skeleton or []:
        if vis[a] and vis[b]:
            ax.plot(p[[a, b], 0], p[[a, b], 1], "-", color="white", lw=1.5, alpha=0.8)
    ax.scatter(p[vis, 0], p[vis, 1], s=size, c=colours[vis], marker=marker, edgecolors="black", linewidths=0.5)
    return ax


def contact_sheet(dataset, path, n: int = 32, cols: int = 8, title: str | None = None, seed: int = 0):
    """A grid of `n` samples of a dataset (store or procedural) with annotations and skeleton drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = min(n, len(dataset))
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    skeleton = dataset.info.skeleton
    for ax, i in zip(axes.flat, idx):
        item = dataset[i]
        show_keypoints(ax, item["image"], item["keypoints"], skeleton=skeleton, visible=item["visible"], size=8)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    fig.suptitle(title or f"{dataset.info.dataset}: {n} of {len(dataset)} samples", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
