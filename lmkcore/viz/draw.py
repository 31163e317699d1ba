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
    drawn by `draw_graph` (the strongest `max_edges`, default K - 1)."""
    img = to_hwc(image)
    ax.imshow(img, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    if kp is None or len(kp) == 0:
        return ax
    if graph is not None:
        draw_graph(ax, kp, graph, img.shape[0], max_edges=max_edges)
    draw_keypoints(ax, kp, img.shape[0], skeleton=skeleton, visible=visible, marker=marker, size=size,
                   colours=colours)
    return ax


GRAPH_COLOUR = (0.0, 0.9, 1.0)  # cyan: a learned graph, distinct from the green / pink annotation skeletons


def draw_graph(ax, kp, graph, image_size: int, *, max_edges: int | None = None, colour=GRAPH_COLOUR, lw: float = 2.0):
    """A learned graph `(K, K)` as segments between keypoints `(K, 2)` (one `LineCollection`, returned;
    None without edges). The strongest `max_edges` pairs (default K - 1, as many as a spanning tree;
    K * K: all), each with width and opacity proportional to its weight (of the symmetrised graph)."""
    from matplotlib.collections import LineCollection

    p = to_pixels(kp, image_size)  # (K, 2)
    g = graph.detach().float().cpu().numpy() if torch.is_tensor(graph) else np.asarray(graph, float)
    g = np.maximum(g, g.T)  # an edge is drawn once, with its stronger direction
    i, j = np.triu_indices(len(p), 1)
    w = g[i, j]
    n = len(p) - 1 if max_edges is None else max_edges
    order = np.argsort(-w, kind="stable")[: max(n, 0)]
    if len(order) == 0:
        return None
    rel = np.clip(w[order] / max(float(w.max()), 1e-8), 0.05, 1.0)  # (E,)
    rgba = np.concatenate([np.broadcast_to(np.asarray(colour, float)[:3], (len(order), 3)), rel[:, None]], 1)
    segments = np.stack([p[i[order]], p[j[order]]], 1)  # (E, 2, 2)
    coll = LineCollection(segments, colors=rgba, linewidths=lw * (0.3 + 0.7 * rel), capstyle="round")
    ax.add_collection(coll)
    return coll


def draw_keypoints(ax, kp, image_size: int, *, skeleton=None, visible=None, marker="o", size: float = 18,
                   colours=None, edge_colour="black", skeleton_colour="white", highlight: int | None = None):
    """Keypoints `(K, 2)` (normalised) over an image already drawn on `ax`, with an optional
    ground-truth `skeleton` of (i, j) pairs; `highlight` draws one keypoint larger."""
    p = to_pixels(kp, image_size)
    k = len(p)
    vis = np.ones(k, bool) if visible is None else np.asarray(visible, bool)
    colours = keypoint_colours(k) if colours is None else np.asarray(colours, float)
    if colours.ndim == 1:  # one colour for all
        colours = np.broadcast_to(colours, (k, len(colours)))
    for a, b in skeleton or []:
        if vis[a] and vis[b]:
            ax.plot(p[[a, b], 0], p[[a, b], 1], "-", color=skeleton_colour, lw=1.5, alpha=0.8)
    sizes = np.full(k, size, float)
    if highlight is not None and 0 <= highlight < k:
        sizes[highlight] = size * 4
    ax.scatter(p[vis, 0], p[vis, 1], s=sizes[vis], c=colours[vis], marker=marker, edgecolors=edge_colour,
               linewidths=0.5)
    return ax


def overlay_heatmap(ax, heatmap, image_size: int, *, cmap: str = "inferno", alpha: float = 0.55):
    """A map `(h, w)` (any resolution) stretched over an `image_size` image, scaled to its maximum."""
    h = heatmap.detach().float().cpu().numpy() if torch.is_tensor(heatmap) else np.asarray(heatmap, float)
    h = h / max(float(h.max()), 1e-12)
    ax.imshow(h, cmap=cmap, alpha=alpha, vmin=0, vmax=1, interpolation="bilinear",
              extent=(-0.5, image_size - 0.5, image_size - 0.5, -0.5))
    return ax


def show_map(ax, tensor, title: str | None = None, cmap: str = "gray"):
    """An image-like layer: `(3, H, W)` as colour, `(1, H, W)` or `(H, W)` as a map."""
    t = tensor.detach().float().cpu()
    if t.dim() == 3 and t.shape[0] == 3:
        ax.imshow(to_hwc(t), interpolation="nearest")
    else:
        ax.imshow(t.reshape(t.shape[-2:]).numpy(), cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
    return ax


def adjacency(skeleton, k: int) -> np.ndarray:
    """Ground-truth edges (i, j) -> symmetric `(K, K)` 0/1 matrix."""
    a = np.zeros((k, k))
    for i, j in skeleton or []:
        a[i, j] = a[j, i] = 1.0
    return a


def show_graph_matrix(ax, graph, *, labels=None, title: str | None = None, cmap: str = "viridis"):
    """A `(K, K)` edge-weight matrix as a seaborn heatmap (diagonal masked)."""
    import seaborn as sns

    g = graph.detach().float().cpu().numpy() if torch.is_tensor(graph) else np.asarray(graph, float)
    k = len(g)
    labels = list(labels) if labels is not None else [str(i) for i in range(k)]
    sns.heatmap(g, ax=ax, mask=np.eye(k, dtype=bool), cmap=cmap, square=True, cbar=True,
                xticklabels=labels, yticklabels=labels, cbar_kws={"shrink": 0.7})
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=8)
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
