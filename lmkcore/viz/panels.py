"""Drawing the inspector's panels: one column per checkpoint, the image with its overlays on top,
then one row per image-like layer (masked input, reconstruction, edge map, features).

Uses a bare `matplotlib.figure.Figure` (no pyplot), so it renders the same in a kernel, a test
or a headless server.
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from .draw import draw_graph, draw_keypoints, keypoint_colours, overlay_heatmap, show_map, to_hwc

PANEL_INCHES = 3.0
ANNOTATION_COLOUR = (0.2, 1.0, 0.3)
REGRESSED_COLOUR = (1.0, 0.2, 0.8)


def _title(p, width: int = 36) -> str:
    lines = textwrap.wrap(p.label, width) or [""]
    if p.image_error is not None:
        lines.append(f"regressed error {p.image_error:.1f}%")
    if p.keypoint_error is not None:
        name, err = p.keypoint_error
        lines.append(f"keypoint -> {name}: {err:.1f}%")
    return "\n".join(lines)


def draw_panels(state, panels, *, panel_inches: float = PANEL_INCHES) -> Figure:
    """A figure of `len(panels)` columns; rows: the image, then each row layer any panel has."""
    rows = [r for r in ("masked", "reconstruction", "edges", "features") if any(r in p.rows for p in panels)]
    n_rows, n_cols = 1 + len(rows), max(1, len(panels))
    titles = [_title(p) for p in panels]
    top = 0.6 + 0.15 * max((t.count("\n") + 1 for t in titles), default=1)  # inches above the first row
    fig = Figure(figsize=(max(panel_inches * n_cols, 5.0), panel_inches * n_rows + top))
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    item = state.item(state.index)
    img = to_hwc(item["image"])
    size = img.shape[0]
    kp_chosen = state.keypoint
    for c, p in enumerate(panels):
        ax = axes[0, c]
        ax.imshow(img, interpolation="nearest")
        ax.set_axis_off()
        if p.heatmap is not None:
            overlay_heatmap(ax, p.heatmap, size)
        if p.graph is not None and p.keypoints is not None:
            draw_graph(ax, p.keypoints, p.graph, size, lw=1.5)
        if "annotations" in p.layers:
            draw_keypoints(ax, item["keypoints"], size, skeleton=state.data.info.skeleton, visible=item["visible"],
                           marker="s", size=14, colours=ANNOTATION_COLOUR, skeleton_colour=ANNOTATION_COLOUR)
        if p.regressed is not None:
            vis = item["visible"] if "visible" in item else None
            draw_keypoints(ax, p.regressed, size, skeleton=state.data.info.skeleton, visible=vis, marker="D", size=14,
                           colours=REGRESSED_COLOUR, skeleton_colour=REGRESSED_COLOUR)
        if "keypoints" in p.layers and p.keypoints is not None:
            draw_keypoints(ax, p.keypoints, size, colours=keypoint_colours(len(p.keypoints)), size=30,
                           highlight=kp_chosen)
        ax.set_title(titles[c], fontsize=8)
        for r, row in enumerate(rows, start=1):
            if row in p.rows:
                show_map(axes[r, c], p.rows[row], title=row, cmap="viridis" if row == "features" else "gray")
            else:
                axes[r, c].set_axis_off()
                axes[r, c].text(0.5, 0.5, f"no {row}", ha="center", va="center", fontsize=8,
                                transform=axes[r, c].transAxes)
    legend = "dots: keypoints" + ("   green squares: annotations   pink diamonds: regressed" if state.annotated else "")
    chosen = "" if kp_chosen is None else f"   (keypoint {kp_chosen})"
    fig.suptitle(f"image {state.index}: {state.name()}{chosen}\n{legend}", fontsize=8,
                 y=1 - 0.06 / fig.get_figheight(), va="top")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - top / fig.get_figheight(),
                        wspace=0.08, hspace=0.25)
    return fig
