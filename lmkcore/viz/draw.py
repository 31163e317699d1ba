"""Drawing keypoints, skeletons and learned graphs on images (matplotlib).

Keypoints are normalised (x, y) in [-1, 1] (see `lmkcore.ops.coords`); images `(3, H, W)` in
[0, 1] or `(H, W, 3)` arrays. The primitives the evaluation reports also draw with (`to_hwc`,
`to_pixels`, `keypoint_colours`, `draw_keypoints`) are `lmkcore.eval.plots`', re-exported here.
"""
from __future__ import annotations

import numpy as np
import torch

from ..eval.plots import draw_keypoints, keypoint_colours, to_hwc, to_pixels  # noqa: F401  (re-exported)


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
    a, b, rel = strongest_edges(graph, max_edges)
    if len(a) == 0:
        return None
    rgba = np.concatenate([np.broadcast_to(np.asarray(colour, float)[:3], (len(a), 3)), rel[:, None]], 1)
    segments = np.stack([p[a], p[b]], 1)  # (E, 2, 2)
    coll = LineCollection(segments, colors=rgba, linewidths=lw * (0.3 + 0.7 * rel), capstyle="round")
    ax.add_collection(coll)
    return coll


def strongest_edges(graph, max_edges: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The workbook's one graph convention: the strongest `max_edges` pairs of the symmetrised `(K, K)` graph
    (default K - 1, as many as a spanning tree; K * K: all), as (i, j, weight relative to the strongest,
    clipped to [0.05, 1]), strongest first."""
    g = graph.detach().float().cpu().numpy() if torch.is_tensor(graph) else np.asarray(graph, float)
    g = np.maximum(g, g.T)  # an edge is drawn once, with its stronger direction
    i, j = np.triu_indices(len(g), 1)
    w = g[i, j]
    n = len(g) - 1 if max_edges is None else max_edges
    order = np.argsort(-w, kind="stable")[: max(n, 0)]
    rel = np.clip(w[order] / max(float(w.max()) if len(w) else 1.0, 1e-8), 0.05, 1.0)
    return i[order], j[order], rel


def annotate(image: np.ndarray, points: np.ndarray, *, visible=None, graph=None, numbers: bool = False,
             colours=None) -> np.ndarray:
    """A copy of `image` `(H, W, 3)` uint8 with keypoints `(K, 2)` in its pixels drawn on it (OpenCV: fast at
    any size, for `lmkcore.detect` and uploaded photos): the graph's strongest K - 1 edges in `GRAPH_COLOUR`
    (width and opacity by weight), then the keypoints in their colours with a dark rim, numbered on demand."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    k = len(points)
    vis = np.ones(k, bool) if visible is None else np.asarray(visible, bool)
    colours = keypoint_colours(k) if colours is None else np.asarray(colours, float)
    unit = max(1, round(min(h, w) / 160))  # line width and radius grow with the image
    if graph is not None:
        a, b, rel = strongest_edges(graph)
        for i, j, r in zip(a, b, rel):
            if vis[i] and vis[j]:
                layer = out.copy()
                cv2.line(layer, tuple(int(v) for v in np.rint(points[i])), tuple(int(v) for v in np.rint(points[j])),
                         tuple(int(255 * c) for c in GRAPH_COLOUR), max(1, round(2 * unit * (0.3 + 0.7 * r))),
                         cv2.LINE_AA)
                out = cv2.addWeighted(layer, float(r), out, 1 - float(r), 0)
    for n, (p, c) in enumerate(zip(points, colours)):
        if not vis[n]:
            continue
        centre = tuple(int(v) for v in np.rint(p))
        cv2.circle(out, centre, 3 * unit + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(out, centre, 3 * unit, tuple(int(255 * v) for v in c[:3]), -1, cv2.LINE_AA)
        if numbers:
            cv2.putText(out, str(n), (centre[0] + 3 * unit + 2, centre[1] - 3 * unit), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3 * unit + 0.1, (255, 255, 255), max(1, unit // 2), cv2.LINE_AA)
    return out


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
