"""Figures of a pose / appearance / background run (Dundar et al.): what each branch paints.

`factorisation` lays out, per image, the input with its landmarks, the rendered Gaussians, the predicted
foreground mask, the generator's foreground, the background branch's image and their composite, from the
method's typed `visuals` (layers "gaussians", "mask", "foreground", "background", "reconstruction"). Pose
transfer is `viz.parts.part_swaps` (any method with `transfer(pose_images, appearance_images)`).
"""
from __future__ import annotations

import torch

from .draw import draw_keypoints, to_hwc
from .parts import colour_parts
from .runs import _plt, save_figure

COLUMNS = (("input", "input + landmarks"), ("gaussians", "Gaussians"), ("mask", "foreground mask"),
           ("foreground", "foreground"), ("background", "background"), ("reconstruction", "composite"))


@torch.no_grad()
def factorisation(method, images: torch.Tensor, path=None, n: int = 6):
    """One row per image (the first `n`): input with keypoints, Gaussians in keypoint colours, mask,
    foreground, background, composite. Columns a method does not offer (no mask) are left out."""
    plt = _plt()
    ims = images[:n]
    vis = method.visuals(ims)
    kp = method.keypoints(ims)
    cols = [(k, t) for k, t in COLUMNS if k == "input" or k in vis]
    size = ims.shape[-1]
    fig, axes = plt.subplots(len(ims), len(cols), figsize=(1.5 * len(cols), 1.5 * len(ims)), squeeze=False)
    for i in range(len(ims)):
        for j, (key, title) in enumerate(cols):
            ax = axes[i, j]
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=8)
            if key == "input":
                ax.imshow(to_hwc(ims[i]), interpolation="nearest")
                draw_keypoints(ax, kp[i], size, size=10)
            elif key == "gaussians":
                ax.imshow(colour_parts(vis[key][i], size), interpolation="nearest")
            elif key == "mask":
                ax.imshow(vis[key][i, 0].float().cpu().numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(to_hwc(vis[key][i].clamp(0, 1)), interpolation="nearest")
    return save_figure(fig, path, "pose / appearance / background: what each branch paints")


@torch.no_grad()
def mask_overlays(method, images: torch.Tensor, reference: torch.Tensor | None = None, path=None, cols: int = 8,
                  threshold: float = 0.5):
    """Images with the predicted foreground (> `threshold`) tinted red and, if given, the reference foreground
    `(B, 1, H, W)` outlined in green: where the two disagree is where the mask misses or spills."""
    plt = _plt()
    pred = method.mask(images).float().cpu()  # (B, 1, S, S)
    n = len(images)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, ax in enumerate(axes.flat[:n]):
        img = torch.nn.functional.interpolate(images[i:i + 1].float().cpu(), size=pred.shape[-1], mode="bilinear",
                                              align_corners=False)[0]
        tint = img.clone()
        on = pred[i, 0] > threshold
        tint[0][on] = 0.5 * tint[0][on] + 0.5
        ax.imshow(to_hwc(tint), interpolation="nearest")
        if reference is not None:
            ax.contour(reference[i, 0].float().cpu().numpy(), levels=[threshold], colors="lime", linewidths=0.8)
    return save_figure(fig, path, "predicted foreground (red)" + (" and reference (green)" if reference is not None else ""))
