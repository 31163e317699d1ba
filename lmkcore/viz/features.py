"""Figures of dense features and of landmarks read from them (the contrastive-landmarks notebook).

    pca_maps(features, n)            joint PCA of every position of a batch (B, C, h, w) -> (B, n, h, w)
    feature_pca_grid(images, feats)  images over their features' first 3 components as RGB (`layers.pca_rgb`,
                                     card section 4: the same part gets the same colour in every image)
    component_grid(images, feats)    one image beside its first n component maps (the seed's --vis_PCA)
    landmark_grid(images, pred)      predicted landmarks (and the annotated ones) on images
    few_shot_curve(points)           error against the number of annotated fit images
"""
from __future__ import annotations

import torch
from torch import Tensor

from .draw import show_keypoints, to_hwc
from .layers import pca_rgb
from .runs import _plt, save_figure


def pca_maps(features: Tensor, n: int = 3) -> Tensor:
    """(B, C, h, w) -> (B, n, h, w): every position of the batch is a C-dimensional sample, centred
    and projected on the batch's first `n` principal directions (one PCA for the batch, so a
    component means the same in every image), each component's sign fixed so that its largest
    loading is positive. Components beyond the rank are 0."""
    if features.dim() != 4:
        raise ValueError(f"pca_maps expects features (B, C, h, w), got {tuple(features.shape)}")
    b, c, h, w = features.shape
    x = features.detach().double().permute(0, 2, 3, 1).reshape(-1, c)  # (B h w, C)
    x = x - x.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)  # vh (r, C)
    v = vh[:n].T  # (C, <= n)
    v = v * torch.where(v.gather(0, v.abs().argmax(0, keepdim=True)) < 0, -1.0, 1.0)
    y = torch.where(s[: v.shape[1]] > 1e-9 * s[:1].clamp_min(1e-300), x @ v, 0.0)  # (B h w, <= n)
    y = torch.cat([y, y.new_zeros(len(y), n - y.shape[1])], 1)
    return y.reshape(b, h, w, n).permute(0, 3, 1, 2).float()


def _unit(maps: Tensor) -> Tensor:
    """Each channel min-max scaled to [0, 1] over the whole batch: (B, n, h, w)."""
    lo = maps.amin((0, 2, 3), keepdim=True)
    hi = maps.amax((0, 2, 3), keepdim=True)
    return (maps - lo) / (hi - lo).clamp_min(1e-12)


def feature_pca_grid(images: Tensor, features: Tensor, path=None, *, cols: int = 8, title: str | None = None):
    """Images (B, 3, H, W) in [0, 1], each above its features' (B, C, h, w) first three joint principal
    components as RGB."""
    plt = _plt()
    rgb = pca_rgb(features.float())  # (B, 3, h, w): one PCA for the batch (viz.layers)
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.5 * cols, 3.0 * rows), squeeze=False)
    for i in range(rows * cols):
        top, bottom = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
        top.set_axis_off()
        bottom.set_axis_off()
        if i < n:
            top.imshow(to_hwc(images[i]))
            bottom.imshow(to_hwc(rgb[i]), interpolation="nearest")
    return save_figure(fig, path, title)


def component_grid(images: Tensor, features: Tensor, path=None, *, n: int = 25, rows: int = 4):
    """For the first `rows` images: the image, then its first `n` joint principal components (fitted
    on the whole batch, as the seed's `--vis_PCA` with 25 components), each in its own panel."""
    plt = _plt()
    maps = _unit(pca_maps(features, n))  # (B, n, h, w)
    rows = min(rows, len(images))
    fig, axes = plt.subplots(rows, n + 1, figsize=(0.9 * (n + 1), 0.95 * rows), squeeze=False)
    for r in range(rows):
        axes[r, 0].imshow(to_hwc(images[r]))
        for j in range(n):
            axes[r, j + 1].imshow(maps[r, j].numpy(), cmap="viridis", interpolation="nearest")
            if r == 0:
                axes[r, j + 1].set_title(str(j + 1), fontsize=6)
        for ax in axes[r]:
            ax.set_axis_off()
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


def landmark_grid(images: Tensor, pred: Tensor, target: Tensor | None = None, path=None, *, cols: int = 8,
                  title: str | None = None):
    """Predicted landmarks pred (B, J, 2) normalised (dots, a colour per landmark) on images (B, 3, H, W),
    and the annotated ones target (B, J, 2) where given (squares)."""
    plt = _plt()
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        show_keypoints(ax, images[i], pred[i], size=10)
        if target is not None:
            show_keypoints(ax, images[i], target[i], marker="s", size=8)
    return save_figure(fig, path, title)


def few_shot_curve(points: list[tuple], path=None, *, metric: str = "nme", label: str | None = None):
    """Error against the number of annotated fit images: points [(n_fit images, value), ...] (log x)."""
    plt = _plt()
    pts = sorted((float(a), float(b)) for a, b in points)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("annotated fit images")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if label:
        ax.legend()
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
    return fig


__all__ = ["pca_maps", "feature_pca_grid", "component_grid", "landmark_grid", "few_shot_curve"]
