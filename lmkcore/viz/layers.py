"""A method's visual layers drawn by their kind (`lmkcore.methods.base.LAYER_KINDS`), never by their name.

A method declares `layers = {name: kind}` and `visuals(images)` returns a tensor per name. Here a
layer of one image becomes a `Layer(kind, data)` (`per_image`, `prepare`) and is drawn by kind:

    overlays, on the image:   heatmaps     (h, w) one keypoint's map or the max of the normalised maps
                              graph        (K, K) segments between keypoints, strongest K-1 by default
                              covariances  (K, 2, 2) ellipses (2 sigma) at the keypoints
                              points       (N, 3) dots coloured by label (-1: grey, no label)
    panes, a panel of their own:  image (3, H, W), map (1, H, W), features (C, h, w) -> PCA to RGB

Coordinates are normalised (x, y) in [-1, 1] (`lmkcore.ops.coords`); pixels of a shown image of
side `size` are `(p + 1) / 2 * (size - 1)`, so a normalised length `l` is `l * (size - 1) / 2` pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..methods.base import LAYER_KINDS
from .draw import draw_graph, overlay_heatmap, show_map, to_pixels

OVERLAY_KINDS = ("heatmaps", "graph", "covariances", "points")  # drawn over the image, in this order
PANE_KINDS = ("image", "map", "features")  # each in a panel of its own
assert set(OVERLAY_KINDS) | set(PANE_KINDS) == set(LAYER_KINDS), "every kind is drawn"

ELLIPSE_COLOUR = (1.0, 0.85, 0.0)
GREY = (0.6, 0.6, 0.6)


@dataclass
class Layer:
    """One declared layer of one image, ready to draw: its kind and its tensor (shapes above)."""

    kind: str
    data: Tensor


# helpers: pure tensor functions

def per_image(kind: str, tensor: Tensor, j: int) -> Tensor:
    """Image `j` of a block's layer: the graph `(K, K)` is shared by all images (a `(B, K, K)`
    graph is indexed), every other kind has the images first."""
    if kind == "graph" and tensor.dim() == 2:
        return tensor
    return tensor[j]


def pca_rgb(features: Tensor) -> Tensor:
    """Dense features `(C, h, w)` or a batch `(B, C, h, w)` -> `(3, h, w)` / `(B, 3, h, w)` in [0, 1].

    The 3 principal components are fitted on the given map's (or batch's) own pixels (centred),
    each component's sign fixed so its largest loading is positive (deterministic colours), the
    projections min-max scaled to [0, 1] per channel over all given pixels. With fewer than 3
    channels (or a rank below 3) the missing channels are 0.
    """
    single = features.dim() == 3
    f = features[None] if single else features  # (B, C, h, w)
    if f.dim() != 4:
        raise ValueError(f"pca_rgb: features must be (C, h, w) or (B, C, h, w), got {tuple(features.shape)}")
    b, c, h, w = f.shape
    x = f.detach().double().permute(0, 2, 3, 1).reshape(-1, c)  # (N, C)
    x = x - x.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)  # vh (r, C), r = min(N, C)
    v = vh[:3].T  # (C, <=3)
    v = v * torch.where(v.gather(0, v.abs().argmax(0, keepdim=True)) < 0, -1.0, 1.0)  # sign: largest loading > 0
    y = x @ v  # (N, <=3)
    y = torch.where(s[: y.shape[1]] > 1e-9 * s[:1].clamp_min(1e-300), y, torch.zeros_like(y))  # drop null directions
    lo, hi = y.amin(0), y.amax(0)
    y = (y - lo) / (hi - lo).clamp_min(1e-12)
    y = torch.cat([y, y.new_zeros(len(y), 3 - y.shape[1])], 1)  # (N, 3)
    out = y.reshape(b, h, w, 3).permute(0, 3, 1, 2).to(features.dtype if features.is_floating_point() else torch.float)
    return out[0] if single else out


def covariance_ellipses(cov: Tensor, image_size: int, n_sigma: float = 2.0) -> tuple[Tensor, Tensor, Tensor]:
    """Covariances `(K, 2, 2)` in normalised units -> the `n_sigma` ellipses' full axis lengths in
    pixels of an `image_size` image, `(K,)` major and `(K,)` minor, and the major axis' angle `(K,)` in
    degrees from +x towards +y (image rows, downwards). E.g. diag(s^2, t^2), s > t: major
    `2 * n_sigma * s * (size - 1) / 2`, angle 0."""
    c = 0.5 * (cov.detach().double() + cov.detach().double().transpose(-1, -2))  # symmetric
    evals, evecs = torch.linalg.eigh(c)  # ascending, (K, 2), (K, 2, 2) columns
    scale = (image_size - 1) / 2  # normalised length -> pixels
    axes = 2 * n_sigma * evals.clamp_min(0).sqrt() * scale  # full lengths, (K, 2)
    major = evecs[..., :, 1]  # (K, 2) eigenvector of the larger eigenvalue
    angle = torch.rad2deg(torch.atan2(major[:, 1], major[:, 0]))
    angle = (angle + 90) % 180 - 90  # an axis has no direction: [-90, 90)
    return axes[:, 1].float(), axes[:, 0].float(), angle.float()


def prepare(kind: str, data: Tensor, keypoint: int | None = None) -> Tensor:
    """One image's layer as it is drawn: heatmaps `(K, h, w)` -> the chosen keypoint's map, or the
    max over the maps each scaled to its own max; features -> PCA RGB; the rest unchanged."""
    if kind == "heatmaps":
        if keypoint is not None and keypoint < len(data):
            return data[keypoint]
        return (data / data.amax((1, 2), keepdim=True).clamp_min(1e-12)).amax(0)
    if kind == "features":
        return pca_rgb(data)
    return data


# drawing, by kind

def draw_covariances(ax, kp, cov, image_size: int, *, n_sigma: float = 2.0, colour=ELLIPSE_COLOUR, lw: float = 1.0,
                     highlight: int | None = None):
    """`n_sigma` ellipses of covariances `(K, 2, 2)` centred at keypoints `(K, 2)` (one collection)."""
    from matplotlib.collections import EllipseCollection

    major, minor, angle = covariance_ellipses(torch.as_tensor(cov), image_size, n_sigma)
    widths = np.full(len(major), lw)
    if highlight is not None and 0 <= highlight < len(major):
        widths[highlight] = 2.5 * lw
    coll = EllipseCollection(major.numpy(), minor.numpy(), angle.numpy(), units="xy",
                             offsets=to_pixels(kp, image_size), offset_transform=ax.transData,
                             facecolors="none", edgecolors=[colour], linewidths=widths)
    ax.add_collection(coll)
    return coll


def label_colours(labels: np.ndarray) -> np.ndarray:
    """`(N,)` integer labels -> `(N, 3)` colours (tab20 by label; -1, no label, grey)."""
    import matplotlib

    cols = matplotlib.colormaps["tab20"](np.clip(labels, 0, None) % 20)[:, :3]
    cols[labels < 0] = GREY
    return cols


def draw_points(ax, points, image_size: int, *, size: float = 24):
    """Points `(N, 3)`: (x, y) normalised and a label, as dots coloured by label."""
    p = points.detach().float().cpu().numpy() if torch.is_tensor(points) else np.asarray(points, float)
    xy = to_pixels(p[:, :2], image_size)
    return ax.scatter(xy[:, 0], xy[:, 1], s=size, c=label_colours(np.round(p[:, 2]).astype(int)), marker=".",
                      linewidths=0)


def draw_overlay(ax, layer: Layer, image_size: int, keypoints: Tensor | None = None, *, all_edges: bool = False,
                 keypoint: int | None = None):
    """An overlay layer over the image already on `ax` (graph and covariances need the keypoints)."""
    if layer.kind == "heatmaps":
        return overlay_heatmap(ax, layer.data, image_size)
    if layer.kind == "points":
        return draw_points(ax, layer.data, image_size)
    if keypoints is None:
        raise ValueError(f"a {layer.kind} layer is drawn at the keypoints: keypoints=None")
    if layer.kind == "graph":
        return draw_graph(ax, keypoints, layer.data, image_size, max_edges=len(keypoints) ** 2 if all_edges else None)
    if layer.kind == "covariances":
        return draw_covariances(ax, keypoints, layer.data, image_size, highlight=keypoint)
    raise ValueError(f"kind {layer.kind!r} is not an overlay; overlays: {OVERLAY_KINDS}")


def draw_pane(ax, layer: Layer, title: str | None = None):
    """A pane layer in its own axes: image / features (already RGB) in colour, a map in grey."""
    if layer.kind not in PANE_KINDS:
        raise ValueError(f"kind {layer.kind!r} is not a pane; panes: {PANE_KINDS}")
    return show_map(ax, layer.data, title=title, cmap="gray")
