"""Every method side by side, from what the evaluations wrote under `reports/` (notebook 10 calls these).

    read_benchmarks   the rows of `reports/benchmarks.json` (`lmkcore.eval.report.collect`)
    headline_table    one data set's headline rows, one line per report, a column per metric
    read_reports      every `reports/*/metrics.json`, with a short label per report
    curve_figure      forward and backward cumulative error curves of every report on one plot
    few_shot_points   error against the number of fit images (the headline fit and `few_shot`)
    few_shot_figure   those points as one curve per report, per data set
    keypoint_figure   every report's keypoints on the same images, where its checkpoint is present

Nothing here trains or evaluates: a report that lacks a curve, a few-shot fit or a checkpoint is
left out of that figure (the functions that skip say what and why), so a workbook with AutoLink
alone shows AutoLink and the floors, and each new method appears once it has reports.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from .draw import draw_keypoints, keypoint_colours, to_hwc
from .figures import curve_labels, legend_outside, read_metrics
from .sources import batch, has_annotations, open_images, workbook_path

PANEL = 2.0  # inches per image panel
KIND_ORDER = {"trained": 0, "untrained": 1, "floor": 2}
# the headline metrics in the order the table shows them (others follow, diagnostics last)
METRIC_ORDER = ("nme", "pck@0.2", "pck@0.1", "backward_nme", "keypoint_spread")


# the table

def read_benchmarks(report_dir="reports") -> list[dict]:
    """The rows of `report_dir/benchmarks.json` (one per report, fit-set size and metric)."""
    path = workbook_path(report_dir) / "benchmarks.json"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: evaluate a run first (notebook 07) or run "
                                "`python -c \"from lmkcore.eval.report import collect; collect('reports')\"`")
    rows = json.loads(path.read_text())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of rows, got {type(rows).__name__}")
    return rows


def datasets_of(rows: list[dict]) -> list[str]:
    return sorted({str(r["dataset"]) for r in rows})


def row_label(r: dict) -> str:
    """How a report is named in tables and legends: the run for trained models, else the floor;
    " [head]" marks a supervised-head evaluation (`evaluation: "head"`)."""
    if r.get("kind") == "floor":
        label = f"{r.get('method')} (floor)"
    elif r.get("kind") == "untrained":
        label = f"{r.get('method')} (untrained) k{r.get('K')}"
    else:
        label = str(r.get("run") or r.get("report") or r.get("method"))
    return label + (" [head]" if r.get("evaluation") == "head" else "")


def headline_table(rows: list[dict], dataset: str, *, methods=None, diagnostics: bool = False):
    """One data set's headline rows (the full fit set, not few-shot) as a DataFrame: a line per
    report (trained first, then untrained models, then the mean shape), a column per metric in
    percent, beside method, kind, K, resolution, steps, train minutes and img/s."""
    import pandas as pd

    sel = [r for r in rows if r.get("dataset") == dataset and not r.get("few_shot")
           and (diagnostics or not str(r.get("metric", "")).startswith("diag:"))
           and (not methods or r.get("method") in methods)]
    if not sel:
        return pd.DataFrame()
    by_report: dict[tuple, dict] = {}
    for r in sel:  # a line per (report, evaluation): keypoints and a supervised head may share a report
        line = by_report.setdefault((r["report"], r.get("evaluation") or "keypoints"), {
            "method": r.get("method"), "kind": r.get("kind"), "report": row_label(r),
            "evaluation": r.get("evaluation") or "keypoints", "K": r.get("K"),
            "res": r.get("resolution"), "steps": r.get("steps"), "fit images": r.get("fit_images"),
            "train min": None if r.get("wall_s") is None else round(r["wall_s"] / 60, 1),
            "img/s": r.get("images_per_s"), "profile": r.get("profile"), "commit": r.get("commit")})
        line[r["metric"]] = r["value"]
    metrics = sorted({r["metric"] for r in sel},
                     key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m))
    df = pd.DataFrame(list(by_report.values()))
    df["_kind"] = df["kind"].map(KIND_ORDER).fillna(len(KIND_ORDER))
    df = df.sort_values(["_kind", "method", "K", "report"], na_position="last").drop(columns="_kind")
    for col in ("K", "res", "steps", "fit images"):  # integers with gaps (a floor has no K, no steps)
        df[col] = pd.to_numeric(df[col], errors="coerce").round().astype("Int64")
    df[metrics] = df[metrics].astype(float).round(2)
    head = ["method", "kind", "report"] + (["evaluation"] if set(df["evaluation"]) != {"keypoints"} else [])
    head += ["K", "res", "steps", "fit images"]
    tail = ["train min", "img/s", "profile", "commit"]
    return df[head + metrics + tail].reset_index(drop=True)


# curves from each report's metrics.json

def read_reports(report_dir="reports", *, methods=None) -> list[dict]:
    """Every `report_dir/*/metrics.json` as a dict, plus `report` (its folder) and `label`
    (`row_label`). Unreadable files are skipped with a note; `methods` keeps only those methods."""
    out = []
    for p, m in read_metrics(workbook_path(report_dir), "compare"):
        if methods and m.get("method") not in methods:
            continue
        out.append({**m, "report": p.parent.name, "label": row_label({**m, "report": p.parent.name})})
    return out


def _dataset(m: dict) -> str:
    return str(m.get("dataset") or "unknown")


def curves_of(m: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"forward" / "backward": (thresholds %, fraction of images)} of one report, where present."""
    c = m.get("curves")
    if not isinstance(c, dict) or not isinstance(c.get("thresholds"), list):
        return {}
    x = np.asarray(c["thresholds"], float)
    return {d: (x, np.asarray(c[d], float)) for d in ("forward", "backward")
            if isinstance(c.get(d), list) and len(c[d]) == len(x)}


def curve_figure(reports: list[dict], dataset: str, *, width: float = 7.0, height: float = 4.2) -> Figure | None:
    """Cumulative error curves of every report on `dataset`: forward (keypoints -> annotations)
    solid, backward (annotations -> keypoints) dashed, one colour per report. None without curves."""
    cs = [(m, curves_of(m)) for m in reports if _dataset(m) == dataset]
    cs = [(m, c) for m, c in cs if c]
    if not cs:
        return None
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    colours = _colours(len(cs))
    shared, labels = curve_labels([m["label"] for m, _ in cs], [(m.get("metrics") or {}).get("nme") for m, _ in cs])
    for (m, c), colour, label in zip(cs, colours, labels):
        for direction, style in (("forward", "-"), ("backward", "--")):
            if direction in c:
                x, y = c[direction]
                ax.step(x, y, where="post", ls=style, color=colour, lw=1.4,
                        label=label if direction == "forward" else None)
    norm = str(cs[0][0].get("normalisation") or "normalised").partition(":")[0]
    xmax = max(float(x.max()) for _, c in cs for x, _ in c.values())
    ax.set(xlim=(0, xmax), ylim=(0, 1.02), xlabel=f"error t (% of {norm})",
           ylabel="fraction of test images with error <= t",
           title=f"{dataset}: cumulative error, forward (solid) and backward (dashed)")
    ax.grid(alpha=0.3)
    legend_outside(ax, title=f"{shared}\n(forward NME)" if shared else "forward NME")
    return fig


# few-shot

def few_shot_points(m: dict, metric: str = "nme") -> list[tuple[int, float]]:
    """(fit images, `metric`) of one report: its headline fit and each `few_shot` fit, fewest
    images first. Empty when the report has no such metric."""
    fits = [m] + [f for f in (m.get("few_shot") or []) if isinstance(f, dict)]
    pts = {int(f["fit_images"]): float(f["metrics"][metric]) for f in fits
           if f.get("fit_images") is not None and metric in (f.get("metrics") or {})}
    return sorted(pts.items())


def few_shot_figure(reports: list[dict], dataset: str, metric: str = "nme", *, width: float = 7.0,
                    height: float = 4.2) -> Figure | None:
    """`metric` against the number of fit images (log scale), a line per report on `dataset` with
    at least two fits. None when no report has a few-shot fit."""
    pts = [(m, few_shot_points(m, metric)) for m in reports if _dataset(m) == dataset]
    pts = [(m, p) for m, p in pts if len(p) > 1]
    if not pts:
        return None
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    shared, labels = curve_labels([m["label"] for m, _ in pts], [None] * len(pts))
    for (m, p), colour, label in zip(pts, _colours(len(pts)), labels):
        n, v = zip(*p)
        ax.plot(n, v, "o-", color=colour, lw=1.4, ms=4, label=label)
    norm = str(pts[0][0].get("normalisation") or "normalised").partition(":")[0]
    ax.set(xscale="log", xlabel="fit images (log scale)", ylabel=f"{metric} (% of {norm})",
           title=f"{dataset}: few-shot fits of the linear map")
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax, title=shared)
    return fig


# keypoints

def checkpoint_path(m: dict, root=".") -> Path | None:
    """The checkpoint a report names, resolved against `root` (the workbook root), if the file exists."""
    ck = m.get("checkpoint")
    if not ck:
        return None
    p = Path(ck)
    p = p if p.is_absolute() else workbook_path(Path(root) / p)
    return p if p.is_file() else None


@torch.no_grad()
def keypoint_figure(reports: list[dict], data: str, *, split: str = "val", n: int = 4, root=".",
                    notes: list[str] | None = None) -> Figure | None:
    """The first `n` images of `data`'s `split` (rows): the annotations, then the keypoints of every
    trained report evaluated on `data` whose checkpoint is present (columns), each at its own
    resolution. Reports whose checkpoint is absent are skipped, and said so in `notes` (appended)."""
    from ..checkpoint import load_method

    notes = [] if notes is None else notes
    loaded = []
    for m in reports:
        if m.get("kind") != "trained" or m.get("data") != data:
            continue
        path = checkpoint_path(m, root)
        if path is None:
            notes.append(f"{m['label']}: checkpoint {m.get('checkpoint')!r} not found under {root!r}; skipped")
            continue
        try:
            loaded.append((m["label"], load_method(path)))
        except (ValueError, KeyError, RuntimeError) as e:  # another lmkcore version, unknown method
            notes.append(f"{m['label']}: {path} does not load ({type(e).__name__}: {e}); skipped")
    if not loaded:
        return None
    images: dict[int, dict] = {}
    for _, method in loaded:  # one batch per resolution, the same items
        res = int(method.checkpoint_info.get("resolution") or getattr(method.config, "resolution", 64))
        if res not in images:
            ds = open_images(data, split, res)
            b = batch(ds, range(min(n, len(ds))))
            b["skeleton"] = list(getattr(ds.info, "skeleton", []) or []) if has_annotations(ds) else []
            images[res] = b
    first = next(iter(images.values()))
    rows, cols = first["image"].shape[0], 1 + len(loaded)
    fig = Figure(figsize=(PANEL * cols, PANEL * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for c, (label, method) in enumerate([(None, None)] + loaded):
        b = first if method is None else images[int(method.checkpoint_info.get("resolution")
                                                    or getattr(method.config, "resolution", 64))]
        kp = None if method is None else method.keypoints(b["image"]).float().cpu()  # (B, K, 2) in [-1, 1]
        size = b["image"].shape[-1]
        for r in range(rows):
            ax = axes[r, c]
            ax.imshow(to_hwc(b["image"][r]), interpolation="nearest")
            ax.set_axis_off()
            if kp is None and "keypoints" in b:
                draw_keypoints(ax, b["keypoints"][r], size, skeleton=b["skeleton"], visible=b["visible"][r],
                               marker="s", size=10, colours=(0.2, 1.0, 0.3), skeleton_colour=(0.2, 1.0, 0.3))
            elif kp is not None:
                draw_keypoints(ax, kp[r], size, colours=keypoint_colours(kp.shape[1]), size=14)
            if r == 0:
                ax.set_title("annotations" if label is None else label, fontsize=5, wrap=True)
    fig.suptitle(f"{data} ({split}): the same {rows} images, every method's keypoints", fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.5 / (PANEL * rows + 0.6), wspace=0.06)
    return fig


def report_data(reports: list[dict], dataset: str) -> list[str]:
    """The data specs (`procedural-stick`, `data/mtfl-80.h5`, ...) the trained reports on `dataset` used."""
    return sorted({str(m["data"]) for m in reports
                   if _dataset(m) == dataset and m.get("kind") == "trained" and m.get("data")})


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]
