"""The figures researchers look at, written to `reports/figures/` (notebook 08 calls `make_all`).

    skeleton_figure   the learned graph (a graph-kind layer) drawn on images and as a colour
                      matrix, beside the ground-truth skeleton where the data has one
    layers_figure     one image, a row per checkpoint: the image with every overlay layer the
                      method declares, then a column per pane layer (the inspector's grid)
    side_by_side      the same test images: annotations, then every checkpoint's keypoints
    failure_gallery   the test images with the largest error under the shared protocol
    error_curves      cumulative error curves of every evaluated checkpoint, one plot per data set
                      (read from `reports/*/metrics.json`)

Every function draws on a bare `matplotlib.figure.Figure` of a fixed size (`PANEL` inches per
image, `TOP` inches of titles, `dpi`), saves a PNG and returns its path, so that sizes are known
in advance: e.g. `side_by_side` is `(1 + M) * PANEL * dpi` by `(n * PANEL + TOP) * dpi` pixels.
"""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from ..methods import Method
from .regressor import fit_on, evaluate_images, fit_subset
from .draw import adjacency, draw_graph, draw_keypoints, keypoint_colours, show_graph_matrix, to_hwc
from .layers import per_image
from .panels import draw_grid
from .sources import (Checkpoint, InMemory, batch, find_checkpoints, has_annotations, method_label,
                     method_resolution, open_images, resolve_checkpoints, run_checkpoints, workbook_path)

PANEL = 2.0  # inches per image panel
TOP = 0.8  # inches above the panels for titles
DPI = 100
ANNOTATION = (0.2, 1.0, 0.3)
REGRESSED = (1.0, 0.2, 0.8)


def _save(fig: Figure, path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _wrap(label: str, width: int = 26) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


def _top(fig: Figure, height: float, title: str) -> None:
    fig.suptitle(title, fontsize=8, y=1 - 0.05 / height, va="top")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - TOP / height, wspace=0.06, hspace=0.25)


def safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", label).strip("_").replace("@", "_step")


@torch.no_grad()
def skeleton_figure(method: Method, data: Dataset, path, *, n: int = 4, label: str | None = None,
                    dpi: int = DPI) -> Path:
    """Row of `n` images with keypoints linked by the learned graph, the graph as a matrix, and the
    ground-truth skeleton (on the first image and as a matrix) where the data has one.
    Size: `(n + 1 + 2 * has_skeleton) * PANEL` by `PANEL + TOP` inches."""
    label = label or method_label(method)
    skeleton = list(getattr(data.info, "skeleton", []) or []) if has_annotations(data) else []
    n = min(n, len(data))
    b = batch(data, range(n))
    kp = method.keypoints(b["image"]).float().cpu()
    graph_layer = next((name for name, kind in method.layers.items() if kind == "graph"), None)  # the first declared
    graph = per_image("graph", method.visuals(b["image"][:1])[graph_layer], 0) if graph_layer else None
    cols = n + (graph is not None) + 2 * bool(skeleton)
    width, height = PANEL * max(cols, 2), PANEL + TOP
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, max(cols, 2), squeeze=False)[0]
    size = b["image"].shape[-1]
    for c in range(n):
        ax = axes[c]
        ax.imshow(to_hwc(b["image"][c]), interpolation="nearest")
        ax.set_axis_off()
        if graph is not None:
            draw_graph(ax, kp[c], graph, size, lw=1.5)
        draw_keypoints(ax, kp[c], size, size=16)
        ax.set_title(f"item {c}", fontsize=7)
    c = n
    if graph is not None:
        show_graph_matrix(axes[c], graph, title="learned graph (edge weight)")
        c += 1
    if skeleton:
        ax = axes[c]
        ax.imshow(to_hwc(b["image"][0]), interpolation="nearest")
        ax.set_axis_off()
        draw_keypoints(ax, b["keypoints"][0], size, skeleton=skeleton, visible=b["visible"][0], marker="s", size=10,
                       colours=ANNOTATION, skeleton_colour=ANNOTATION)
        ax.set_title("ground-truth skeleton", fontsize=7)
        k = len(data.info.keypoint_names)
        show_graph_matrix(axes[c + 1], adjacency(skeleton, k), labels=[str(i) for i in range(k)],
                          title="ground-truth edges", cmap="Greens")
        c += 2
    for ax in axes[c:]:
        ax.set_axis_off()
    what = f"keypoints linked by the learned graph ({graph_layer})" if graph_layer else "keypoints (no graph declared)"
    fig.suptitle(f"{_wrap(label, 80)}: {what}", fontsize=8, y=1 - 0.05 / height,
                 va="top")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.12, top=1 - TOP / height, wspace=0.35)
    return _save(fig, path, dpi)


@torch.no_grad()
def side_by_side(methods: dict[str, Method], data: Dataset, path, *, n: int = 6, dpi: int = DPI) -> Path:
    """`n` images (rows): the annotations, then each checkpoint's keypoints (columns).
    Size: `(1 + len(methods)) * PANEL` by `n * PANEL + TOP` inches."""
    n = min(n, len(data))
    b = batch(data, range(n))
    kps = {lb: m.keypoints(b["image"]).float().cpu() for lb, m in methods.items()}
    cols = 1 + len(methods)
    width, height = PANEL * cols, PANEL * n + TOP
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(n, cols, squeeze=False)
    size = b["image"].shape[-1]
    skeleton = data.info.skeleton if has_annotations(data) else []
    titles = ["annotations"] + [_wrap(lb) for lb in methods]
    for r in range(n):
        img = to_hwc(b["image"][r])
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(img, interpolation="nearest")
            ax.set_axis_off()
            if c == 0 and "keypoints" in b:
                draw_keypoints(ax, b["keypoints"][r], size, skeleton=skeleton, visible=b["visible"][r], marker="s",
                               size=10, colours=ANNOTATION, skeleton_colour=ANNOTATION)
            elif c > 0:
                kp = kps[list(methods)[c - 1]][r]
                draw_keypoints(ax, kp, size, colours=keypoint_colours(len(kp)), size=14)
            if r == 0:
                ax.set_title(titles[c], fontsize=6)
    _top(fig, height, f"{data.info.dataset}: the same {n} images, annotations and every checkpoint")
    return _save(fig, path, dpi)


@torch.no_grad()
def layers_figure(methods: dict[str, Method], data: Dataset, path, *, index: int = 0, panel_inches: float = PANEL,
                  dpi: int = DPI) -> Path:
    """Image `index` of `data`, a row per checkpoint: the image with its keypoints, the annotations
    and every overlay layer the method declares, then a column per pane layer (`panels.draw_grid`,
    the inspector's drawing; layers by kind). Size: `(1 + panes) * panel_inches` wide."""
    from .state import Panel, compose_layers, declared_layers

    item = data[int(index)]
    image = item["image"][None]  # (1, 3, H, W)
    annotated = has_annotations(data) and "keypoints" in item
    panels = []
    for label, m in methods.items():
        kinds = declared_layers(m)
        vis = {n: per_image(kinds[n], v.detach().float().cpu(), 0) for n, v in m.visuals(image).items() if n in kinds}
        p = Panel(_wrap(label, 36), keypoints=m.keypoints(image)[0].float().cpu())
        p.shown = compose_layers(kinds, vis, kinds)
        p.layers = [*(["annotations"] if annotated else []), "keypoints", *p.shown]
        panels.append(p)
    fig = draw_grid(item["image"], panels, item=item if annotated else None,
                    skeleton=data.info.skeleton if annotated else None, panel_inches=panel_inches,
                    title=f"{data.info.dataset}: item {index}, every declared layer of every checkpoint")
    return _save(fig, path, dpi)


def failure_gallery(method: Method, fit_data: Dataset, test_data: Dataset, path, *, n: int = 8, cols: int = 4,
                    n_fit: int | None = 500, max_test: int | None = 200, label: str | None = None,
                    dpi: int = DPI) -> Path:
    """The `n` test images (of the first `max_test`) with the largest error under the protocol:
    annotations, regressed landmarks and keypoints. Size: `cols * PANEL` by `rows * PANEL + TOP`."""
    reg = fit_on(method, fit_data, n_fit)
    m = min(max_test or len(test_data), len(test_data))
    ev = evaluate_images(method, reg, test_data, range(m))
    worst = torch.argsort(ev["error"], descending=True)[:n]
    rows = max(1, -(-len(worst) // cols))
    width, height = PANEL * cols, PANEL * rows + TOP
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, w in zip(axes.flat, worst.tolist()):
        i = int(ev["indices"][w])
        item = test_data[i]
        size = item["image"].shape[-1]
        ax.imshow(to_hwc(item["image"]), interpolation="nearest")
        ax.set_axis_off()
        skel = test_data.info.skeleton
        draw_keypoints(ax, item["keypoints"], size, skeleton=skel, visible=item["visible"], marker="s", size=10,
                       colours=ANNOTATION, skeleton_colour=ANNOTATION)
        draw_keypoints(ax, ev["regressed"][w], size, skeleton=skel, visible=item["visible"], marker="D", size=10,
                       colours=REGRESSED, skeleton_colour=REGRESSED)
        draw_keypoints(ax, ev["keypoints"][w], size, size=12)
        ax.set_title(f"item {i}: {float(ev['error'][w]):.1f}%", fontsize=7)
    for ax in axes.flat[len(worst):]:
        ax.set_axis_off()
    _top(fig, height, f"{_wrap(label or method_label(method), 60)}\nlargest errors of {m} test images (fit on "
                      f"{reg.n_fit}); green: annotation, pink: regressed")
    return _save(fig, path, dpi)


# cumulative error curves from reports/*/metrics.json

def read_metrics(report_dir, who: str = "reports"):
    """(path, dict) of every readable `report_dir/*/metrics.json` holding a mapping, in name order; a file
    that cannot be read is skipped with a note naming it (and `who` reads it)."""
    for p in sorted(Path(report_dir).glob("*/metrics.json")):
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            print(f"{who}: skipping {p} ({type(e).__name__}: {e})")
            continue
        if isinstance(m, dict):
            yield p, m


def read_curves(report_dir) -> list[dict]:
    """Curves found in `report_dir/*/metrics.json`: {dataset, label, x (thresholds, %), y (fraction)}.

    Reads the protocol's `curves` {"thresholds", "forward"}; tolerates older or partial files: a
    curve given as [[x, y], ...], or only per-image errors (their empirical distribution). Files
    that cannot be read are skipped with a note."""
    out = []
    for p, m in read_metrics(report_dir, "error_curves"):
        dataset = str(m.get("dataset") or m.get("data") or "unknown")
        split = m.get("split")
        label = str(m.get("run") or m.get("method") or p.parent.name)
        if m.get("steps") is not None and m.get("run"):
            label += f"@{m['steps']}"
        if m.get("kind") in ("floor", "untrained"):
            label = f"{m.get('method', label)} ({m['kind']})"
        if m.get("n_fit") not in (None, "all", "None"):
            label += f", fit {m['n_fit']}"
        x, y = _curve(m)
        if x is not None:
            out.append({"dataset": dataset + (f" ({split})" if split else ""), "label": label, "x": x, "y": y,
                        "report": p.parent.name, "normalisation": m.get("normalisation", ""),
                        "nme": (m.get("metrics") or {}).get("nme")})
    return out


def curve_labels(labels: list[str], values: list) -> tuple[str, list[str]]:
    """Legend labels of curves: what the run names share shown once (the returned title line), each label
    shortened to what tells it apart (`runs.short_labels`) and carrying its number (NME %)."""
    from ..runs import short_labels

    shared, short = short_labels(labels)
    out = [short[lb] + (f"  {v:.2f} %" if isinstance(v, (int, float)) else "") for lb, v in zip(labels, values)]
    return (f"run {shared}" if shared and len(set(labels)) > 1 else ""), out


def legend_outside(ax, fontsize: int = 6, title: str | None = None) -> None:
    """The legend beside the axes, never over the curves."""
    ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title=title or None, title_fontsize=fontsize)


def _numbers(v) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(t, (int, float)) for t in v)


def _curve(m: dict):
    c = m.get("curves") or m.get("curve") or {}
    if isinstance(c, dict):
        x = c.get("thresholds")
        y = c.get("forward", c.get("fraction", c.get("y")))
        if _numbers(x) and _numbers(y) and len(x) == len(y):
            return np.asarray(x, float), np.asarray(y, float)
    if isinstance(c, list) and c and all(isinstance(t, (list, tuple)) and len(t) == 2 for t in c):
        a = np.asarray(c, float)
        return a[:, 0], a[:, 1]
    per = m.get("per_image")
    per = per.get("forward") if isinstance(per, dict) else per
    if _numbers(per):
        e = np.sort(np.asarray(per, float))
        return e, np.arange(1, len(e) + 1) / len(e)
    return None, None


def error_curves(report_dir="reports", out_dir=None, *, dpi: int = DPI, width: float = 6.4,
                 height: float = 4.0) -> list[Path]:
    """One PNG per data set (`error_curves_<dataset>.png`, `width` x `height` inches): the cumulative
    error curves of every report on it. Returns [] (and says so) when there is none."""
    import pandas as pd
    import seaborn as sns

    curves = read_curves(report_dir)
    if not curves:
        print(f"error_curves: no cumulative curves in {report_dir}/*/metrics.json yet")
        return []
    out_dir = Path(out_dir or Path(report_dir) / "figures")
    paths = []
    for dataset in sorted({c["dataset"] for c in curves}):
        cs = [c for c in curves if c["dataset"] == dataset]
        shared, labels = curve_labels([c["label"] for c in cs], [c.get("nme") for c in cs])
        df = pd.DataFrame([{"error (%)": x, "fraction of images": y, "checkpoint": lb}
                           for c, lb in zip(cs, labels) for x, y in zip(c["x"], c["y"])])
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.subplots()
        sns.lineplot(df, x="error (%)", y="fraction of images", hue="checkpoint", ax=ax, drawstyle="steps-post",
                     errorbar=None, estimator=None, lw=1.6)
        norm = cs[0]["normalisation"] or "normalised"
        ax.set(ylim=(0, 1.02), xlim=(0, max(float(c["x"].max()) for c in cs)),
               xlabel=f"error t (% of {norm})", ylabel="fraction of test images with error <= t",
               title=f"cumulative error: {dataset}")
        ax.grid(alpha=0.3)
        legend_outside(ax, title=f"{shared}\n(NME)" if shared else "NME")
        paths.append(_save(fig, out_dir / f"error_curves_{safe_name(dataset)}.png", dpi))
    return paths


# everything, for notebook 08

def figure_checkpoints(checkpoints: str = "", runs_dir: str = "runs") -> list[Checkpoint]:
    """"" = the newest snapshot of every run under `runs_dir`; else as `inputs.resolve_checkpoints`."""
    if (checkpoints or "").strip():
        return resolve_checkpoints(checkpoints, runs_dir)[1]
    runs = list(dict.fromkeys(c.path.parent for c in find_checkpoints(runs_dir)))
    return [run_checkpoints(r)[-1] for r in runs]


def make_all(runs_dir: str = "runs", checkpoints: str = "", data: str = "procedural", split: str = "test",
             report_dir: str = "reports", *, n: int = 6, fit_split: str = "fit", n_fit: int | None = 500,
             max_test: int | None = 200, dpi: int = DPI) -> dict[str, list[Path]]:
    """Every figure into `report_dir/figures`; without checkpoints, only the error curves (and a
    note: viz never picks a method by name). Returns {figure kind: paths}."""
    from ..checkpoint import load_method

    report_dir = workbook_path(report_dir)
    out = report_dir / "figures"
    cks = figure_checkpoints(checkpoints, runs_dir)
    methods = {c.label: load_method(c.path) for c in cks}
    if not methods:
        print(f"no checkpoint under {runs_dir!r} (checkpoints={checkpoints!r}): no checkpoint figures, only the "
              "error curves; train one (python -m lmkcore.train ...) or pass checkpoints=")
    by_res: dict[int, dict[str, Method]] = {}
    for lb, m in methods.items():
        by_res.setdefault(method_resolution(m), {})[lb] = m
    made: dict[str, list[Path]] = {"skeletons": [], "side_by_side": [], "layers": [], "failures": [],
                                   "error_curves": []}
    for res, group in by_res.items():
        test = open_images(data, split, res)
        fit = gallery = None
        if has_annotations(test):  # read the fit subset and the scored test images once for all checkpoints
            fit = fit_subset(open_images(data, fit_split, res), n_fit)
            gallery = InMemory(test, range(min(max_test or len(test), len(test))))
        made["side_by_side"].append(side_by_side(group, test, out / f"side_by_side_{res}px.png", n=n, dpi=dpi))
        made["layers"].append(layers_figure(group, test, out / f"layers_{res}px.png", dpi=dpi))
        for lb, m in group.items():
            if any(k == "graph" for k in m.layers.values()):
                made["skeletons"].append(skeleton_figure(m, test, out / f"skeleton_{safe_name(lb)}.png", label=lb,
                                                         dpi=dpi))
            if fit is not None:
                made["failures"].append(failure_gallery(m, fit, gallery, out / f"failures_{safe_name(lb)}.png",
                                                        n_fit=None, max_test=None, label=lb, dpi=dpi))
    made["error_curves"] = error_curves(report_dir, out, dpi=dpi)
    return made


def skeleton_check_figure(check: dict, data: Dataset, path, *, dpi: int = DPI) -> Path:
    """The skeleton check drawn on the data's mean shape: the true skeleton in light grey, the learned graph's
    strongest edges (mapped to joints) in green where they are skeleton edges and red where not, joints named."""
    from ..eval import annotations

    ann = annotations(data, torch.arange(min(len(data), 500)))
    vis = ann.visible[..., None]
    mean = (torch.where(vis, ann.keypoints, 0.0).sum(0) / vis.sum(0).clamp_min(1)).numpy()  # (J, 2) in [0, 1]
    names = list(data.info.keypoint_names)
    truth = {frozenset(e) for e in check.get("skeleton", data.info.skeleton)}
    fig = Figure(figsize=(4.2, 4.4))
    ax = fig.subplots()
    for a, b in (sorted(e) for e in truth if len(e) == 2):
        ax.plot(mean[[a, b], 0], mean[[a, b], 1], "-", color="0.85", lw=6, solid_capstyle="round", zorder=1)
    for e in check["edges"]:
        a, b = (e + e)[:2]
        right = frozenset(e) in truth
        ax.plot(mean[[a, b], 0], mean[[a, b], 1], "-", color=(0.1, 0.65, 0.2) if right else (0.85, 0.1, 0.1),
                lw=2, zorder=2)
    ax.scatter(mean[:, 0], mean[:, 1], s=14, c="black", zorder=3)
    for j, (x, y) in enumerate(mean):
        ax.annotate(names[j], (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(1.05, -0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"strongest edges on the mean shape: green = skeleton edge, red = not\n"
                 f"precision {100 * check['precision']:.0f} %, recall {100 * check['recall']:.0f} % "
                 "(grey: the true skeleton)", fontsize=7)
    return _save(fig, path, dpi)
