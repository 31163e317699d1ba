"""Figures of a part-based run (Lorenz et al.): part maps, keypoints with covariance ellipses, part swaps.

Each takes a trained method (`PartBased`, or any method with `visuals` / `covariances` / `transfer` as
named below) and a batch of images `(B, 3, H, W)` in [0, 1], draws a matplotlib figure, saves it to
`path` if given, and returns it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .draw import draw_keypoints, keypoint_colours, to_hwc, to_pixels
from .runs import _plt, save_figure



def colour_parts(maps: torch.Tensor, size: int) -> np.ndarray:
    """Part maps `(K, h, w)` as one RGB image `(size, size, 3)`: part k in keypoint colour k, each map
    scaled to its maximum, the brightest part winning where they overlap."""
    m = F.interpolate(maps[None].float(), size=size, mode="bilinear", align_corners=False)[0]  # (K, S, S)
    m = m / m.amax((1, 2), keepdim=True).clamp_min(1e-12)
    top, idx = m.max(0)  # (S, S)
    colours = torch.tensor(keypoint_colours(len(maps)), dtype=torch.float32)  # (K, 3)
    return (colours[idx] * top[..., None]).numpy()


@torch.no_grad()
def part_maps(method, images: torch.Tensor, path=None, *, cols: int = 8, alpha: float = 0.6):
    """Images with their K part maps laid over them in keypoint colours (layer "parts")."""
    plt = _plt()
    maps = method.visuals(images)["parts"]  # (B, K, h, w)
    n, size = len(images), images.shape[-1]
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax, img, m in zip(axes.flat, images, maps):
        ax.imshow((1 - alpha) * to_hwc(img) + alpha * colour_parts(m, size), interpolation="nearest")
    for ax in axes.flat:
        ax.set_axis_off()
    return save_figure(fig, path, "part maps (colour = part, brightness = weight)")


def draw_ellipses(ax, kp: torch.Tensor, cov: torch.Tensor, image_size: int, *, n_std: float = 2.0, colours=None):
    """Covariance ellipses `(K, 2, 2)` (normalised units) at keypoints `(K, 2)`, `n_std` standard deviations."""
    from matplotlib.patches import Ellipse

    colours = keypoint_colours(len(kp)) if colours is None else colours
    p = to_pixels(kp, image_size)
    px = (image_size - 1) / 2.0  # normalised units -> pixels
    vals, vecs = np.linalg.eigh(cov.detach().double().cpu().numpy())  # (K, 2), (K, 2, 2) ascending
    for k in range(len(p)):
        w, h = 2 * n_std * np.sqrt(np.clip(vals[k, ::-1], 0, None)) * px  # major, minor diameters
        angle = np.degrees(np.arctan2(vecs[k, 1, 1], vecs[k, 0, 1]))  # direction of the major axis
        ax.add_patch(Ellipse(tuple(p[k]), w, h, angle=angle, fill=False, ec=colours[k], lw=1.2))
    return ax


@torch.no_grad()
def covariance_ellipses(method, images: torch.Tensor, path=None, *, cols: int = 8, n_std: float = 2.0):
    """Keypoints (part means) with the parts' covariance ellipses at `n_std` standard deviations."""
    plt = _plt()
    kp, cov = method.keypoints(images), method.covariances(images)  # (B, K, 2), (B, K, 2, 2)
    n, size = len(images), images.shape[-1]
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax, img, k, c in zip(axes.flat, images, kp, cov):
        ax.imshow(to_hwc(img), interpolation="nearest")
        draw_ellipses(ax, k, c, size, n_std=n_std)
        draw_keypoints(ax, k, size, size=10)
    for ax in axes.flat:
        ax.set_axis_off()
    return save_figure(fig, path, f"keypoints and part covariances ({n_std:g} sd)")


@torch.no_grad()
def part_swaps(method, images: torch.Tensor, path=None, n: int = 5):
    """A grid of generated images: row i keeps the SHAPE (parts) of image i (left column), column j takes the
    APPEARANCE of image j (top row), through `method.transfer(shape_images, appearance_images)`."""
    plt = _plt()
    ims = images[:n]
    n = len(ims)
    shape_src = ims.repeat_interleave(n, 0)  # (n n, 3, H, W): row i
    app_src = ims.repeat(n, 1, 1, 1)  # column j
    out = method.transfer(shape_src, app_src)  # (n n, 3, R, R)
    out = out.reshape(n, n, *out.shape[1:])
    fig, axes = plt.subplots(n + 1, n + 1, figsize=(1.3 * (n + 1), 1.3 * (n + 1)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for j in range(n):
        axes[0, j + 1].imshow(to_hwc(ims[j]), interpolation="nearest")
        axes[j + 1, 0].imshow(to_hwc(ims[j]), interpolation="nearest")
        for i in range(n):
            axes[i + 1, j + 1].imshow(to_hwc(out[i, j]), interpolation="nearest")
    axes[0, 1].set_title("appearance ->", fontsize=8, loc="left")
    axes[1, 0].set_title("shape", fontsize=8, loc="left")
    return save_figure(fig, path, "part swaps: shape of the row's image, appearance of the column's")
