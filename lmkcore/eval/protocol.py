"""The evaluation protocol every method goes through (issue 3).

1. Discovered keypoints `(N, K, 2)` (method.keypoints, eval mode, no grad) -> [0, 1].
2. Forward: a linear map without intercept from the 2K keypoint coordinates to each annotated
   landmark, fit on the fit set only where that landmark is visible (`regression.fit_linear`,
   ridge by k-fold CV on the fit set), scored on visible test landmarks.
3. Backward (Mallis et al.): the same regressor from the 2J annotation coordinates to each
   discovered keypoint (invisible annotations imputed with their fit-set mean), scored with the
   same normaliser - low when keypoints are a stable function of the object. Keypoints that never
   move also score low: `keypoint_spread` (error of predicting the fit-set mean keypoints) is
   reported beside it.
4. Metrics chosen by the data's normalisation attribute (`metrics`), reported in percent.
5. For a method with a learned graph on data with a skeleton (AutoLink on figures, people): how many
   skeleton edges its strongest K - 1 edges recover (`eval.graph`), keypoints mapped to joints on
   `GRAPH_FIT` fit images.
Floors measured by the same code: `mean_shape_floor` and `untrained_floor`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor

from ..ops.coords import norm_to_unit, unit_to_norm
from .graph import graph_skeleton
from .inputs import Annotations, annotations, check_keypoints, discover
from .metrics import normaliser, pck_thresholds, point_errors, summarise
from .regression import few_shot_indices, fit_linear

THRESHOLDS = torch.linspace(0.0, 0.5, 101, dtype=torch.float64)  # cumulative curves, fractions
N_EXAMPLES = 8  # test images whose predictions are kept for figures
GRAPH_FIT = 1000  # fit images (drawn by the seed) on which keypoints are mapped to joints for the skeleton check


def _pct(x):
    if isinstance(x, list):
        return [None if v is None else 100.0 * v for v in x]
    return 100.0 * x


def _direction(s: dict) -> tuple[dict, dict]:
    """Split a `metrics.summarise` dict into its scalars and its lists, in percent."""
    scalars = {k: _pct(v) for k, v in s.items() if k == "nme" or k.startswith("pck@")}
    return scalars, {"per_landmark": {k: _pct(v) for k, v in s["per_landmark"].items()},
                     "per_image": _pct(s["per_image"]), "curve": s["curve"]}


def _cv(errors: dict[float, float]) -> list:
    """CV errors as JSON-safe [ridge, error] pairs (None where a fold was singular)."""
    return [[r, e if math.isfinite(e) else None] for r, e in sorted(errors.items())]


def score(fit_kp: Tensor, fit: Annotations, test_kp: Tensor, test: Annotations, *, ridge="cv", seed: int = 0,
          folds: int = 5) -> dict:
    """Forward and backward errors of keypoints against annotations, in percent.

    fit_kp (N, K, 2) and test_kp (M, K, 2) normalised [-1, 1], for the N images of `fit` and the
    M images of `test` (in order). The regressors see only the fit set (CV included).
    """
    fit_kp, test_kp = check_keypoints(fit_kp, fit, "fit set"), check_keypoints(test_kp, test, "test set")
    if fit_kp.shape[1] != test_kp.shape[1] or fit.keypoints.shape[1] != test.keypoints.shape[1]:
        raise ValueError(f"fit and test sets differ: K {fit_kp.shape[1]} vs {test_kp.shape[1]}, "
                         f"landmarks {fit.keypoints.shape[1]} vs {test.keypoints.shape[1]}")
    (n, k), m, j, res = fit_kp.shape[:2], len(test), fit.keypoints.shape[1], test.resolution
    xf, xt = norm_to_unit(fit_kp.double()).reshape(n, 2 * k), norm_to_unit(test_kp.double()).reshape(m, 2 * k)
    norm = normaliser(test.normalisation, test.keypoints, test.visible, test.boxes, res)  # (M,) pixels
    # forward: keypoints -> each visible annotated landmark
    fwd = fit_linear(xf, fit.keypoints, fit.visible, ridge, folds=folds, seed=seed, names=fit.names)
    pred = fwd.predict(xt)  # (M, J, 2) in [0, 1]
    forward = summarise(point_errors(pred, test.keypoints, norm, res), test.visible, THRESHOLDS,
                        pck_thresholds(test.normalisation))
    # backward: annotations (invisible ones imputed with the fit-set mean) -> each discovered keypoint
    vis = fit.visible[..., None]
    mean_gt = torch.where(vis, fit.keypoints, 0.0).sum(0) / vis.sum(0).clamp_min(1)  # (J, 2)
    gin = lambda a: torch.where(a.visible[..., None], a.keypoints, mean_gt).reshape(len(a), 2 * j)  # noqa: E731
    bwd = fit_linear(gin(fit), xf.view(n, k, 2), None, ridge, folds=folds, seed=seed)
    kp_t = xt.view(m, k, 2)
    all_k = torch.ones(m, k, dtype=torch.bool)
    backward = summarise(point_errors(bwd.predict(gin(test)), kp_t, norm, res), all_k, THRESHOLDS)
    spread = point_errors(xf.view(n, k, 2).mean(0).expand(m, k, 2), kp_t, norm, res).mean()
    f_scalars, f_lists = _direction(forward)
    b_scalars, b_lists = _direction(backward)
    ex = torch.arange(min(N_EXAMPLES, m))
    return {
        "normalisation": test.normalisation, "resolution": res, "K": k, "J": j, "landmarks": test.names,
        "fit_images": n, "test_images": m, "test_points": forward["points"],
        "metrics": {**f_scalars, "backward_nme": b_scalars["nme"], "keypoint_spread": _pct(float(spread))},
        "per_landmark": f_lists["per_landmark"], "per_keypoint_backward": b_lists["per_landmark"]["nme"],
        "curves": {"thresholds": _pct(THRESHOLDS.tolist()), "forward": f_lists["curve"],
                   "backward": b_lists["curve"]},
        "per_image": {"forward": f_lists["per_image"], "backward": b_lists["per_image"]},
        "ridge": {"forward": fwd.ridge, "backward": bwd.ridge, "cv_forward": _cv(fwd.cv_error),
                  "cv_backward": _cv(bwd.cv_error)},
        "examples": {"indices": test.indices[ex].tolist(), "pred": unit_to_norm(pred[ex]).tolist(),
                     "gt": unit_to_norm(test.keypoints[ex]).nan_to_num(0.0).tolist(),
                     "visible": test.visible[ex].tolist(),
                     "keypoints": test_kp[ex].tolist()},
    }


def resolve_device(device: str) -> str:
    """"auto": cuda if present, else cpu; anything else as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def data_skeleton(data) -> list | None:
    """The skeleton (joint pairs) of a data set's source, or None."""
    return getattr(getattr(data, "info", None), "skeleton", None)


def graph_fit_indices(n_total: int, seed: int = 0) -> Tensor:
    """The fit images (drawn by `seed`) on which keypoints are mapped to joints for the skeleton check."""
    return few_shot_indices(n_total, min(GRAPH_FIT, n_total), seed)


def evaluate(method_or_keypoints, fit_data, test_data, n_fit=None, seed: int = 0, ridge="cv", *,
             few_shot=(), max_test: int | None = None, folds: int = 5, batch_size: int = 64,
             device: str = "cpu") -> dict:
    """Every number of the protocol for a method (or keypoints) on a fit set and a test set.

    method_or_keypoints: a `Method`, or `(fit_kp, test_kp)` normalised [-1, 1] of shapes
    (len(fit_data), K, 2) and (len(test_data), K, 2). fit_data / test_data: data sets or
    `Annotations`. n_fit: None / 0 = all, a count, a fraction or "1%" (drawn by `seed`);
    few_shot: further sizes, scored into result["few_shot"]; max_test: the first N test images.
    A method is run in eval mode without gradients on `device`, `batch_size` images at a time.

    Returns a JSON-ready dict (percent): metrics {nme, pck@0.2 / pck@0.1 for "bbox" data,
    backward_nme, keypoint_spread}, diagnostics (the method's own, on the first test batch),
    per_landmark, per_keypoint_backward, curves {thresholds, forward, backward}, per_image, ridge
    (chosen + CV errors), examples (a few test predictions), fit_images, test_images, K, J, normalisation, resolution, n_fit, seed, few_shot [...];
    skeleton (`eval.graph.graph_skeleton`: precision, recall, edges, keypoint_joints) for a method
    with a `graph()` on data with a skeleton.
    """
    n_total = len(fit_data)
    sizes = [n_fit] + [s for s in few_shot]
    subsets = {str(s): few_shot_indices(n_total, s, seed) for s in sizes}
    skeleton = data_skeleton(fit_data)
    graph = getattr(method_or_keypoints, "graph", None) if skeleton else None
    if graph is not None and graph() is None:  # Method.graph's default: no graph offered
        graph = None
    if graph is not None:
        subsets["graph"] = graph_fit_indices(n_total, seed)
    union = torch.unique(torch.cat(list(subsets.values())))  # sorted item positions
    test_idx = torch.arange(min(max_test or len(test_data), len(test_data)))
    if isinstance(method_or_keypoints, (tuple, list)):
        fit_all, test_kp = (torch.as_tensor(t) for t in method_or_keypoints)
        if fit_all.shape[0] != n_total:
            raise ValueError(f"{fit_all.shape[0]} fit keypoint sets for a fit set of {n_total} images")
        if test_kp.shape[0] != len(test_data):
            raise ValueError(f"{test_kp.shape[0]} test keypoint sets for a test set of {len(test_data)} images")
        fit_kp, test_kp = fit_all[union], test_kp[test_idx]
        fit_ann, test_ann = annotations(fit_data, union), annotations(test_data, test_idx)
        diagnostics = {}
    else:
        dev = resolve_device(device)
        fit_kp, fit_ann = discover(method_or_keypoints, fit_data, union, batch_size=batch_size, device=dev)
        test_kp, test_ann = discover(method_or_keypoints, test_data, test_idx, batch_size=batch_size, device=dev)
        diagnostics = run_diagnostics(method_or_keypoints, test_data, test_idx[:batch_size], dev)
    pos = {s: torch.searchsorted(union, idx) for s, idx in subsets.items()}  # subset -> rows of union
    result = score(fit_kp[pos[str(n_fit)]], fit_ann.subset(pos[str(n_fit)]), test_kp, test_ann,
                   ridge=ridge, seed=seed, folds=folds)
    result.update(n_fit=str(n_fit or "all"), seed=seed, dataset=test_ann.dataset, fit_pool=n_total,
                  diagnostics=diagnostics)
    result["few_shot"] = []
    for s in few_shot:
        r = score(fit_kp[pos[str(s)]], fit_ann.subset(pos[str(s)]), test_kp, test_ann, ridge=ridge, seed=seed,
                  folds=folds)
        result["few_shot"].append({"n_fit": str(s or "all"), "fit_images": r["fit_images"], "metrics": r["metrics"],
                                   "per_landmark": r["per_landmark"], "ridge": r["ridge"]})
    if graph is not None:
        g = pos["graph"]
        result["skeleton"] = graph_skeleton(method_or_keypoints, fit_kp[g], fit_ann.subset(g), skeleton)
    return result


def run_diagnostics(method, data, indices: Tensor, device: str = "cpu") -> dict[str, float]:
    """`method.diagnostics` on the test images at `indices` (one batch; a method's own checks, e.g.
    whether AutoLink's decoder uses the edge map); {} for fewer than two images."""
    if len(indices) < 2:
        return {}
    with torch.no_grad():
        images = torch.stack([data[int(i)]["image"] for i in indices]).to(device)
        return {k: float(v) for k, v in method.eval().diagnostics(images).items()}


def evaluate_predictions(pred: Tensor, test_data, *, fit_images: int | None = None,
                         max_test: int | None = None) -> dict:
    """Score landmarks predicted directly (e.g. a supervised head on frozen features).

    pred: (len(test_data) or max_test, J, 2) normalised [-1, 1] for the test items in order; the
    head must have been fit on the fit split (`few_shot_indices` gives the same few-shot subsets).
    """
    test = annotations(test_data, torch.arange(min(max_test or len(test_data), len(test_data))))
    pred = check_keypoints(torch.as_tensor(pred), test, "predicted")
    norm = normaliser(test.normalisation, test.keypoints, test.visible, test.boxes, test.resolution)
    s = summarise(point_errors(norm_to_unit(pred.double()), test.keypoints, norm, test.resolution), test.visible,
                  THRESHOLDS, pck_thresholds(test.normalisation))
    scalars, lists = _direction(s)
    ex = torch.arange(min(N_EXAMPLES, len(test)))
    examples = {"indices": test.indices[ex].tolist(), "pred": pred[ex].tolist(),
                "gt": unit_to_norm(test.keypoints[ex]).nan_to_num(0.0).tolist(), "visible": test.visible[ex].tolist()}
    return {"normalisation": test.normalisation, "resolution": test.resolution, "K": None,
            "J": test.keypoints.shape[1], "landmarks": test.names,
            "fit_images": fit_images, "test_images": len(test), "test_points": s["points"], "dataset": test.dataset,
            "metrics": scalars, "per_landmark": lists["per_landmark"],
            "curves": {"thresholds": _pct(THRESHOLDS.tolist()), "forward": lists["curve"]},
            "per_image": {"forward": lists["per_image"]}, "examples": examples}


def mean_shape_floor(fit_data, test_data, n_fit=None, seed: int = 0, *, few_shot=(),
                     max_test: int | None = None) -> dict:
    """Predict the fit set's mean annotation (per landmark, over visible samples) for every test image;
    `few_shot` sizes as in `evaluate` (the same seeded subsets)."""
    n_total, m = len(fit_data), min(max_test or len(test_data), len(test_data))
    pool = annotations(fit_data, torch.unique(torch.cat([few_shot_indices(n_total, s, seed)
                                                         for s in [n_fit, *few_shot]])))
    test = annotations(test_data, torch.arange(m))

    def floor(size) -> dict:
        fit = pool.subset(torch.searchsorted(pool.indices, few_shot_indices(n_total, size, seed)))
        if not fit.visible.any(0).all():
            raise ValueError(f"landmarks {[fit.names[j] for j in (~fit.visible.any(0)).nonzero().flatten()]} are "
                             "never visible in the fit set")
        vis = fit.visible[..., None]
        mean = torch.where(vis, fit.keypoints, 0.0).sum(0) / vis.sum(0)  # (J, 2) in [0, 1]
        return evaluate_predictions(unit_to_norm(mean).expand(m, *mean.shape), test, fit_images=len(fit))

    r = floor(n_fit)
    r.update(method="mean-shape", kind="floor", n_fit=str(n_fit or "all"), seed=seed, fit_pool=n_total)
    r["few_shot"] = [{"n_fit": str(s or "all"), **{k: f[k] for k in ("fit_images", "metrics", "per_landmark")}}
                     for s, f in ((s, floor(s)) for s in few_shot)]
    return r


def untrained_floor(name: str, config: dict, fit_data, test_data, n_fit=None, seed: int = 0, **kwargs) -> dict:
    """The protocol on a randomly initialised (seeded) model of method `name` with `config`."""
    from ..methods import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        method = build(name, **config).eval()
    r = evaluate(method, fit_data, test_data, n_fit=n_fit, seed=seed, **kwargs)
    r.update(method=name, kind="untrained", steps=0, config=config)
    return r


def open_test_set(data: str, test_split: str | None, test_data: str | None = None, resolution: int = 64):
    """(test data set, split name): `test_split` of `data`, or of the separate store `test_data`
    (all of it, named by its file stem, when it has no such split)."""
    from ..data import LandmarkStore, open_dataset

    if not test_data:
        return open_dataset(data, test_split, resolution=resolution), test_split
    store = LandmarkStore(test_data)
    if test_split and "splits" in store.file and test_split in store.file["splits"]:
        return LandmarkStore(test_data, test_split), test_split
    return store, Path(test_data).stem


def evaluate_checkpoint(path: str | os.PathLike, data: str, fit_split: str = "fit", test_split: str | None = "val",
                        test_data: str | None = None, *, report_dir: str | os.PathLike | None = None,
                        profile: str | None = None, **kwargs) -> dict:
    """`evaluate` for a trained checkpoint, with the run's metadata (summary.json, config, commit).

    data: a store path or "procedural"; the fit set is its `fit_split`. test_data: a separate test
    store (its `test_split` if it has one, else all of it); default: `test_split` of `data`.
    kwargs go to `evaluate` (n_fit, seed, ridge, few_shot, max_test, batch_size, device).
    report_dir: also write `report_dir/<run>/metrics.json` and figures (`report.write_report`).
    """
    import json

    from ..checkpoint import git_commit, load_method, method_resolution
    from ..data import open_dataset

    method = load_method(path)
    info = method.checkpoint_info
    res = method_resolution(method)
    fit = open_dataset(data, fit_split, resolution=res)
    test, split = open_test_set(data, test_split, test_data, res)
    r = evaluate(method, fit, test, **kwargs)
    run_dir = Path(path).parent
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    r.update(method=method.name, kind="trained", run=info.get("run"), train_dataset=info.get("dataset"),
             resolution=res, steps=info.get("step"), commit=info.get("commit"), eval_commit=git_commit(),
             checkpoint=str(path), data=data, fit_split=fit_split, split=split, test_data=test_data or None,
             config=method.config_dict(), wall_s=summary.get("wall_s_total", summary.get("wall_s")),
             images_per_s=summary.get("images_per_s"), peak_memory_mb=summary.get("peak_memory_mb"),
             device=summary.get("device"), batch_size=summary.get("batch_size"))
    if report_dir is not None:
        from .report import write_report

        r["report"] = str(write_report(r, report_dir, test_data=test, profile=profile))
    return r
