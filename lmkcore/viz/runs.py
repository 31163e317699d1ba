"""Figures of one training run: loss curves, keypoints, the learned graph, reconstructions, and
detections drawn over a whole folder of images (AutoLink's `gen_detection`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .draw import show_graph_matrix, show_keypoints, to_hwc


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg",) and "inline" not in matplotlib.get_backend().lower():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path=None, title: str | None = None, dpi: int = 100):
    """Title, tight layout and (where `path` is given) the PNG of a run figure; returns the figure."""
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=dpi)
    return fig


def loss_curve(history: list[dict], path=None, keys=("loss",)):
    """Training curves from a run's history (`RunResult.history` or history.jsonl lines)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    steps = [h["step"] for h in history]
    for k in keys:
        ax.plot(steps, [h.get(k, np.nan) for h in history], label=k)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


@torch.no_grad()
def keypoint_grid(method, images: torch.Tensor, path=None, *, cols: int = 8, graph: bool = True,
                  max_edges: int | None = None, title: str | None = None):
    """Predicted keypoints on images `(B, 3, H, W)`, linked by the learned graph where the method
    has one (edge opacity = weight)."""
    plt = _plt()
    kp = method.keypoints(images)
    g = method.graph() if graph else None  # (K, K), or None: the method offers no graph
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax, img, k in zip(axes.flat, images, kp):
        show_keypoints(ax, img, k, graph=g, max_edges=max_edges or (len(k) - 1 if g is not None else None), size=10)
    for ax in axes.flat[n:]:
        ax.set_axis_off()
    return save_figure(fig, path, title)


def graph_matrix(graph: torch.Tensor, path=None, names=None):
    """The learned K x K edge weights as a colour matrix."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 3.4))
    show_graph_matrix(ax, graph, labels=names, title="learned graph (edge weight)")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


@torch.no_grad()
def reconstructions(method, images: torch.Tensor, path=None, n: int = 6):
    """Rows: the input, then every pane-kind layer the method declares (image, map, features through
    `layers.pca_rgb` fitted on the shown batch), in its declared order (AutoLink: edge map, masked
    input, reconstruction)."""
    from .layers import PANE_KINDS, pca_rgb

    plt = _plt()
    n = min(n, len(images))
    vis = method.visuals(images[:n])
    panes = [(name, kind) for name, kind in method.layers.items() if kind in PANE_KINDS and name in vis]
    rows = [("input", images[:n])] + [(name, pca_rgb(vis[name].float()) if kind == "features" else vis[name])
                                      for name, kind in panes]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.5 * n, 1.5 * len(rows)), squeeze=False)
    for r, (name, ims) in enumerate(rows):
        for c in range(n):
            im = ims[c]
            axes[r, c].imshow(to_hwc(im.expand(3, -1, -1)) if im.shape[0] == 1 else to_hwc(im))
            axes[r, c].set_axis_off()
        axes[r, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


@torch.no_grad()
def draw_detections(method, dataset, out_dir, *, batch_size: int = 64, limit: int | None = None) -> int:
    """Save one PNG per image with the detected keypoints (and graph) drawn; returns the count.

    `dataset`: any dataset with "image" items (a store, procedural data, an image folder store).
    """
    from PIL import Image, ImageDraw

    from .draw import GRAPH_COLOUR, keypoint_colours, to_pixels

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    g = method.graph()  # (K, K), or None: the method offers no graph
    g = None if g is None else torch.maximum(g, g.T).float().cpu()
    names = dataset.arrays("names") if hasattr(dataset, "arrays") else None
    count = 0
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        images = torch.stack([it["image"] for it in items])
        kps = method.keypoints(images).cpu()
        for pos, (img, kp) in enumerate(zip(images, kps), start):
            size = img.shape[-1]
            scale = max(1, 256 // size)
            pil = Image.fromarray((to_hwc(img) * 255).astype(np.uint8)).resize((size * scale,) * 2, Image.NEAREST)
            d = ImageDraw.Draw(pil)
            p = (to_pixels(kp, size) + 0.5) * scale
            if g is not None:
                i, j = np.triu_indices(len(p), 1)
                w = g[i, j].numpy()
                top = np.argsort(-w)[: len(p) - 1]
                for e in top:
                    d.line([tuple(p[i[e]]), tuple(p[j[e]])], fill=tuple(int(255 * v) for v in GRAPH_COLOUR), width=2)
            for c, (x, y) in zip(keypoint_colours(len(p)), p):
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=tuple(int(v * 255) for v in c), outline=(0, 0, 0))
            name = Path(str(names[pos])).stem if names is not None else f"{pos:06d}"
            pil.save(out / f"{name}.png")
            count += 1
    return count
