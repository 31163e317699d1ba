"""Drawing the inspector's panels as a grid: one row per checkpoint; columns: the image with its
overlays (keypoints, annotations, regressed landmarks and the overlay-kind layers), then one
column per pane-kind layer any row shows (image, map, features). A legend names what is drawn.

Layers are drawn by kind (`lmkcore.viz.layers`); nothing here knows a method's layer names. Uses a
bare `matplotlib.figure.Figure` (no pyplot), so it renders the same in a kernel, a test or a
headless server. `figures.layers_figure` draws the same grid for a report.
"""
from __future__ import annotations

import textwrap

import numpy as np
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..runs import short_labels
from .draw import GRAPH_COLOUR, draw_keypoints, keypoint_colours, to_hwc, to_pixels
from .layers import ELLIPSE_COLOUR, GREY, draw_overlay, draw_pane

PANEL_INCHES = 3.0
ANNOTATION_COLOUR = (0.2, 1.0, 0.3)
REGRESSED_COLOUR = (1.0, 0.2, 0.8)
MAX_SWATCHES = 20  # keypoint colours named in the legend (tab20 repeats after 20)

# how each overlay kind looks in the legend: (what it shows, Line2D style)
KIND_LEGEND = {
    "heatmaps": ("heatmap", dict(marker="s", linestyle="none", markerfacecolor=(0.99, 0.6, 0.2),
                                 markeredgecolor=(0.3, 0.0, 0.3), markersize=7)),
    "graph": ("graph edges (width, opacity: weight)", dict(color=GRAPH_COLOUR, lw=2)),
    "covariances": ("2-sigma ellipses", dict(marker="o", linestyle="none", markerfacecolor="none",
                                            markeredgecolor=ELLIPSE_COLOUR, markersize=9)),
    "points": ("points, colour: label", dict(marker=".", linestyle="none", color=GREY, markersize=8)),
}


def error_unit(normalisation: str) -> str:
    """The unit of a normalised error, for labels: '% IOD', '% box', '% image'."""
    kind = (normalisation or "").split(":")[0]
    return {"interocular": "% IOD", "bbox": "% box", "image_size": "% image"}.get(kind, "%")


def _title(p, label: str, width: int = 36, unit: str = "%") -> str:
    """A row's title: its (short) label wrapped at `_` boundaries, never mid-token, then its errors with units."""
    lines = [ln.replace("_ ", "_") for ln in textwrap.wrap(label.replace("_", "_ "), width)] or [""]
    if p.image_error is not None:
        lines.append(f"regressed error {p.image_error:.1f} {unit}")
    if p.keypoint_error is not None:
        name, err = p.keypoint_error
        lines.append(f"keypoint -> {name}: {err:.1f} {unit}")
    return "\n".join(lines)


def pane_columns(panels) -> list[str]:
    """The pane layers' names over all rows, in first-seen order: the grid's columns after the image."""
    cols: list[str] = []
    for p in panels:
        cols += [n for n in p.panes() if n not in cols]
    return cols


def legend_items(panels, *, all_edges: bool = False) -> list[tuple[str, dict]]:
    """(text, `Line2D` style) for what the panels draw over the image and nothing else: keypoint
    colour swatches, annotations, regressed landmarks, then each drawn overlay layer by name and kind."""
    items: list[tuple[str, dict]] = []
    drawn = [ly for p in panels for ly in p.layers]
    if "keypoints" in drawn:
        k = max((len(p.keypoints) for p in panels if "keypoints" in p.layers and p.keypoints is not None), default=0)
        for i, c in enumerate(keypoint_colours(k)[:MAX_SWATCHES]):
            items.append((f"kp {i}", dict(marker="o", linestyle="none", markerfacecolor=tuple(c),
                                          markeredgecolor="black", markersize=6)))
    if "annotations" in drawn:
        items.append(("annotations", dict(marker="s", linestyle="none", color=ANNOTATION_COLOUR, markersize=6)))
    if "regressed" in drawn:
        items.append(("regressed", dict(marker="D", linestyle="none", color=REGRESSED_COLOUR, markersize=6)))
    seen = set()
    for p in panels:
        for name, layer in p.overlays().items():
            if name in seen:
                continue
            seen.add(name)
            what, style = KIND_LEGEND[layer.kind]
            if layer.kind == "graph":
                what = "graph, all edges" if all_edges else "graph, strongest K-1 edges"
            items.append((f"{name} ({what})", style))
    return items


def draw_grid(image, panels, *, item: dict | None = None, skeleton=None, keypoint: int | None = None,
              title: str = "", all_edges: bool = False, panel_inches: float = PANEL_INCHES,
              unit: str = "%", crop: bool = False, numbers: bool = False) -> Figure:
    """The grid for one image `(3, H, W)`: a row per panel (checkpoint); columns: the image with the
    overlays, then `pane_columns(panels)`. `item` (annotations: keypoints, visible) and `skeleton`
    draw the ground truth where a panel lists "annotations"; `keypoint` is the chosen one."""
    cols = pane_columns(panels)
    n_rows, n_cols = max(1, len(panels)), 1 + len(cols)
    shared, short = short_labels([p.label for p in panels])  # the shared run name once, in the figure's title
    titles = [_title(p, short[p.label], unit=unit) for p in panels]
    if shared and len(panels) > 1:
        title = f"{title}\nrun {shared}" if title else f"run {shared}"
    title_in = 0.14 * max((t.count("\n") + 1 for t in titles), default=1) + 0.1  # above each row
    legend = legend_items(panels, all_edges=all_edges)
    per_line = max(4, int(n_cols * panel_inches / 1.1))  # legend entries per line
    legend_in = 0.2 * -(-len(legend) // per_line)
    top = 0.1 + 0.15 * (title.count("\n") + 1) + legend_in + title_in  # inches above the first row's axes
    width, height = max(panel_inches * n_cols, 5.0), top + n_rows * panel_inches + (n_rows - 1) * title_in + 0.1
    fig = Figure(figsize=(width, height))
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    img = to_hwc(image)
    size = img.shape[0]
    for r, p in enumerate(panels):
        ax = axes[r, 0]
        ax.imshow(img, interpolation="nearest")
        ax.set_axis_off()
        for layer in p.overlays().values():
            draw_overlay(ax, layer, size, p.keypoints, all_edges=all_edges, keypoint=keypoint)
        if "annotations" in p.layers and item is not None:
            draw_keypoints(ax, item["keypoints"], size, skeleton=skeleton, visible=item["visible"], marker="s", size=14,
                           colours=ANNOTATION_COLOUR, skeleton_colour=ANNOTATION_COLOUR)
        if p.regressed is not None:
            vis = item["visible"] if item is not None and "visible" in item else None
            draw_keypoints(ax, p.regressed, size, skeleton=skeleton, visible=vis, marker="D", size=14,
                           colours=REGRESSED_COLOUR, skeleton_colour=REGRESSED_COLOUR)
        if "keypoints" in p.layers and p.keypoints is not None:
            draw_keypoints(ax, p.keypoints, size, colours=keypoint_colours(len(p.keypoints)), size=30,
                           highlight=keypoint)
            if numbers:
                for i, (x, y) in enumerate(to_pixels(p.keypoints, size)):
                    ax.annotate(str(i), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6, color="white",
                                path_effects=[patheffects.withStroke(linewidth=1.5, foreground="black")])
        x0, y0, x1, y1 = subject_box(p, item, size) if crop else (-0.5, -0.5, size - 0.5, size - 0.5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)  # overlays may reach outside the image: keep its frame (or the subject's)
        ax.set_title(titles[r], fontsize=7)
        panes = p.panes()
        for c, name in enumerate(cols, start=1):
            if name in panes:
                draw_pane(axes[r, c], panes[name], title=name)
            else:
                axes[r, c].set_axis_off()
                axes[r, c].text(0.5, 0.5, f"no {name}", ha="center", va="center", fontsize=8,
                                transform=axes[r, c].transAxes)
    fig.suptitle(title, fontsize=8, y=1 - 0.05 / height, va="top")
    if legend:
        n = len(legend)
        ncol = -(-n // -(-n // per_line))  # as few lines as fit, entries spread evenly over them
        order = [i for c in range(ncol) for i in range(c, n, ncol)]  # matplotlib fills columns: read row by row
        handles = [Line2D([], [], **legend[i][1]) for i in order]
        fig.legend(handles, [legend[i][0] for i in order], loc="upper center", ncol=ncol, fontsize=6,
                   frameon=False, handlelength=1.5, columnspacing=0.8,
                   bbox_to_anchor=(0.5, 1 - (0.1 + 0.15 * (title.count("\n") + 1)) / height))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1 / height, top=1 - top / height, wspace=0.08,
                        hspace=title_in / panel_inches)
    return fig


def subject_box(panel, item: dict | None, size: int, margin: float = 0.15) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) pixels of a square around the panel's keypoints and the visible annotations, enlarged by
    `margin` of its side on each side and kept inside the image: the crop-to-subject view."""
    pts = [to_pixels(panel.keypoints, size)] if panel.keypoints is not None else []
    if item is not None and "keypoints" in item:
        vis = np.asarray(item.get("visible", np.ones(len(item["keypoints"]), bool)), bool)
        pts.append(to_pixels(item["keypoints"], size)[vis])
    pts = np.concatenate(pts) if pts else np.zeros((0, 2))
    if len(pts) == 0:
        return -0.5, -0.5, size - 0.5, size - 0.5
    lo, hi = pts.min(0), pts.max(0)
    side = min(max(float((hi - lo).max()) * (1 + 2 * margin), size / 8), size)
    cx, cy = np.clip((lo + hi) / 2, side / 2 - 0.5, size - 0.5 - side / 2)
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def draw_panels(state, panels, *, panel_inches: float = PANEL_INCHES) -> Figure:
    """The inspector's current view (`InspectorState.compose()` panels) as a grid figure."""
    item = state.item(state.index)
    chosen = "" if state.keypoint is None else f"   (keypoint {state.keypoint})"
    skeleton = state.data.info.skeleton if "keypoints" in item else None
    return draw_grid(item["image"], panels, item=item if "keypoints" in item else None, skeleton=skeleton,
                     keypoint=state.keypoint, title=f"image {state.index}: {state.name()}{chosen}",
                     all_edges=state.all_edges, panel_inches=panel_inches,
                     unit=error_unit(getattr(state.data.info, "normalisation", "")),
                     crop=getattr(state, "crop", False), numbers=getattr(state, "numbers", False))
