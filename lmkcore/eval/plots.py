"""Figures of one evaluation result: cumulative error curves, per-landmark errors, predictions.

Built on `matplotlib.figure.Figure` (no pyplot state), so they render headless and in a kernel
alike. Each function takes the dict of `protocol.evaluate` (numbers in percent) and returns the
figure; `save_all` writes the PNGs beside a report.

The keypoint-drawing primitives (`to_hwc`, `to_pixels`, `keypoint_colours`, `draw_keypoints`) live
here because reports need them and `lmkcore.eval` must not import `lmkcore.viz`; `lmkcore.viz.draw`
re-exports them and builds the rest of its drawing on them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .regression import one_thread

# drawing primitives (re-exported by `lmkcore.viz.draw`)

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
    """Normalised `(..., 2)` points in [-1, 1] -> pixel coordinates of a `size` x `size` image."""
    kp = kp.detach().cpu().numpy() if torch.is_tensor(kp) else np.asarray(kp)
    return (kp + 1.0) * 0.5 * (size - 1)


def keypoint_colours(k: int) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps["tab20" if k > 10 else "tab10"](np.arange(k) % 20)[:, :3]


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


# figures of one result

def curves(result: dict) -> Figure:
    """Fraction of test images with error <= t, forward (and backward), against t in percent."""
    c = result["curves"]
    names = [d for d in ("forward", "backward") if c.get(d) is not None]  # no backward where no keypoint counted
    fig = Figure(figsize=(4.2 * len(names), 3.2), layout="constrained")
    for ax, d in zip(fig.subplots(1, len(names), squeeze=False)[0], names):
        ax.plot(c["thresholds"], c[d], lw=1.8)
        ax.set(xlabel=f"normalised error t (%, {result['normalisation']})", ylabel="fraction of test images <= t",
               ylim=(0, 1.02), xlim=(0, c["thresholds"][-1]), title=f"{d} error")
        ax.grid(alpha=0.3)
    return fig


def per_landmark(result: dict) -> Figure:
    """Forward NME per annotated landmark (and backward NME per discovered keypoint)."""
    fwd = result["per_landmark"]["nme"]
    bwd = result.get("per_keypoint_backward")
    fig = Figure(figsize=(4.2 + 4.2 * (bwd is not None), 3.4), layout="constrained")
    axes = fig.subplots(1, 1 + (bwd is not None), squeeze=False)[0]
    names = result.get("landmarks") or [str(i) for i in range(len(fwd))]
    axes[0].bar(np.arange(len(fwd)), [np.nan if v is None else v for v in fwd])
    axes[0].set_xticks(np.arange(len(fwd)), names, rotation=60, ha="right", fontsize=7)
    axes[0].set(ylabel="forward NME (%)", title="per annotated landmark")
    if bwd is not None:
        axes[1].bar(np.arange(len(bwd)), [np.nan if v is None else v for v in bwd], color="tab:orange")
        axes[1].set(xlabel="discovered keypoint", ylabel="backward NME (%)", title="per discovered keypoint")
    return fig


def predictions(result: dict, test_data, n: int = 6) -> Figure:
    """Test images with annotations (circles), regressed landmarks (crosses), keypoints (squares)."""
    ex = result["examples"]
    n = min(n, len(ex["indices"]))
    fig = Figure(figsize=(2.2 * n, 2.5), layout="constrained")
    with one_thread():  # item loading is many tiny ops
        items = [test_data[j] for j in ex["indices"][:n]]
    for i, ax in enumerate(fig.subplots(1, n, squeeze=False)[0]):
        item = items[i]
        img = to_hwc(item["image"])
        ax.imshow(img, interpolation="nearest")
        ax.set_axis_off()
        size = img.shape[0]
        gt, pred = np.asarray(ex["gt"][i]), np.asarray(ex["pred"][i])
        draw_keypoints(ax, gt, size, visible=ex["visible"][i], marker="o", size=22)
        draw_keypoints(ax, pred, size, visible=ex["visible"][i], marker="x", size=26, edge_colour=None)
        if "keypoints" in ex:
            draw_keypoints(ax, np.asarray(ex["keypoints"][i]), size, marker="s", size=10, colours=(1, 1, 1))
        ax.set_title(f"item {ex['indices'][i]}", fontsize=7)
    fig.suptitle("o annotation   x regressed   \u25a1 discovered", fontsize=8)
    return fig


def save_all(result: dict, out_dir: str | Path, test_data=None) -> list[Path]:
    """Write curves.png, per_landmark.png (and predictions.png given the test data) to `out_dir`."""
    out_dir = Path(out_dir)
    figs = {"curves": curves(result), "per_landmark": per_landmark(result)}
    if test_data is not None and "examples" in result:
        figs["predictions"] = predictions(result, test_data)
    paths = []
    for name, fig in figs.items():
        paths.append(out_dir / f"{name}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths
