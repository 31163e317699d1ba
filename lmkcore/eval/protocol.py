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
6. A method with `confidence()` has a varying number of keypoints: keypoint k of an image counts only
   where confidence >= `method.confidence_threshold` (forward: absent inputs imputed with their fit-set
   mean; backward: a masked least squares per keypoint over present ones; `_score_present`).
7. A method whose `evaluations` include "head": a supervised head on its frozen `features()` (`eval.head`),
   trained on the fit set's annotations (early stopping on a held-out part of the fit set), its test
   predictions scored by the same code (no backward error: it is not defined for a head).
Floors measured by the same code: `mean_shape_floor` and `untrained_floor`. Inputs are keypoints or a
`Method` instance, never a method's name.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor

from ..ops.coords import norm_to_unit, unit_to_norm
from .gather import Annotations, annotations, check_keypoints, open_test_set, run_method
from .graph import GRAPH_FIT, graph_skeleton
from .head import HeadConfig, fit_head, predict_head, tps_copies
from .masks import foreground_scores
from .metrics import masked_mean, normaliser, pck_thresholds, point_errors, summarise
from .regression import few_shot_indices, fit_linear

THRESHOLDS = torch.linspace(0.0, 0.5, 101, dtype=torch.float64)  # cumulative curves, fractions
N_EXAMPLES = 8  # test images whose predictions are kept for figures


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


def _present(kp: Tensor, present: Tensor | None, what: str) -> tuple[Tensor, Tensor | None]:
    """Keypoints with absent entries zeroed (they may hold anything, NaN included) and the (N, K) bool mask."""
    if present is None:
        return kp, None
    present = torch.as_tensor(present).to(torch.bool).cpu()
    if present.shape != kp.shape[:2]:
        raise ValueError(f"{what}: presence mask {tuple(present.shape)} does not match keypoints {tuple(kp.shape)}")
    return torch.where(present[..., None], kp, 0.0), present


def score(fit_kp: Tensor, fit: Annotations, test_kp: Tensor, test: Annotations, *, ridge="cv", seed: int = 0,
          folds: int = 5, fit_present: Tensor | None = None, test_present: Tensor | None = None) -> dict:
    """Forward and backward errors of keypoints against annotations, in percent.

    fit_kp (N, K, 2) and test_kp (M, K, 2) normalised [-1, 1], for the N images of `fit` and the
    M images of `test` (in order). The regressors see only the fit set (CV included).
    fit_present (N, K) / test_present (M, K): where a method's confidence says keypoint k of an image
    is there (None: always); absent keypoints have no coordinates (`_score_present`).
    """
    if (fit_present is None) != (test_present is None):
        raise ValueError("fit_present and test_present: give both (a method with confidence) or neither")
    fit_kp, fit_present = _present(torch.as_tensor(fit_kp), fit_present, "fit set")
    test_kp, test_present = _present(torch.as_tensor(test_kp), test_present, "test set")
    fit_kp, test_kp = check_keypoints(fit_kp, fit, "fit set"), check_keypoints(test_kp, test, "test set")
    if fit_kp.shape[1] != test_kp.shape[1] or fit.keypoints.shape[1] != test.keypoints.shape[1]:
        raise ValueError(f"fit and test sets differ: K {fit_kp.shape[1]} vs {test_kp.shape[1]}, "
                         f"landmarks {fit.keypoints.shape[1]} vs {test.keypoints.shape[1]}")
    if fit_present is not None:
        return _score_present(fit_kp, fit, test_kp, test, fit_present, test_present, ridge=ridge, seed=seed,
                              folds=folds)
    (n, k), m, j, res = fit_kp.shape[:2], len(test), fit.keypoints.shape[1], test.resolution
    xf, xt = norm_to_unit(fit_kp.double()).reshape(n, 2 * k), norm_to_unit(test_kp.double()).reshape(m, 2 * k)
    norm, fwd, pred, forward = _forward(xf, xt, fit, test, ridge=ridge, seed=seed, folds=folds)
    gin = _annotation_inputs(fit)  # backward: annotations -> each discovered keypoint
    bwd = fit_linear(gin(fit), xf.view(n, k, 2), None, ridge, folds=folds, seed=seed)
    kp_t = xt.view(m, k, 2)
    all_k = torch.ones(m, k, dtype=torch.bool)
    backward = summarise(point_errors(bwd.predict(gin(test)), kp_t, norm, res), all_k, THRESHOLDS)
    spread = point_errors(xf.view(n, k, 2).mean(0).expand(m, k, 2), kp_t, norm, res).mean()
    return _result(fit, test, test_kp, k, pred, forward, backward, spread, fwd, bwd)


def _forward(xf: Tensor, xt: Tensor, fit: Annotations, test: Annotations, *, ridge, seed, folds):
    """The forward direction: keypoint inputs `(N, 2K)` / `(M, 2K)` in [0, 1] -> each visible annotated
    landmark; (the test images' normaliser (M,) in pixels, the fit, its predictions (M, J, 2), the summary)."""
    norm = normaliser(test.normalisation, test.keypoints, test.visible, test.boxes, test.resolution)
    fwd = fit_linear(xf, fit.keypoints, fit.visible, ridge, folds=folds, seed=seed, names=fit.names)
    pred = fwd.predict(xt)  # (M, J, 2) in [0, 1]
    forward = summarise(point_errors(pred, test.keypoints, norm, test.resolution), test.visible, THRESHOLDS,
                        pck_thresholds(test.normalisation))
    return norm, fwd, pred, forward


def _annotation_inputs(fit: Annotations):
    """The backward direction's inputs: annotations `(len, 2J)`, invisible ones imputed with the fit set's
    mean of that landmark (a function of an `Annotations`)."""
    vis = fit.visible[..., None]
    mean_gt = torch.where(vis, fit.keypoints, 0.0).sum(0) / vis.sum(0).clamp_min(1)  # (J, 2)
    return lambda a: torch.where(a.visible[..., None], a.keypoints, mean_gt).reshape(len(a), -1)


def _result(fit, test, test_kp, k, pred, forward, backward, spread, fwd, bwd) -> dict:
    """The JSON-ready dict of `score` (percent); `backward` / `bwd` None where no backward error exists."""
    m, j, res = len(test), fit.keypoints.shape[1], test.resolution
    f_scalars, f_lists = _direction(forward)
    b_scalars, b_lists = _direction(backward) if backward is not None else ({"nme": None}, None)
    ex = torch.arange(min(N_EXAMPLES, m))
    return {
        "evaluation": "keypoints",
        "normalisation": test.normalisation, "resolution": res, "K": k, "J": j, "landmarks": test.names,
        "fit_images": len(fit), "test_images": m, "test_points": forward["points"],
        "metrics": {**f_scalars, "backward_nme": b_scalars["nme"], "keypoint_spread": _pct(float(spread))},
        "per_landmark": f_lists["per_landmark"],
        "per_keypoint_backward": b_lists["per_landmark"]["nme"] if b_lists else [None] * k,
        "curves": {"thresholds": _pct(THRESHOLDS.tolist()), "forward": f_lists["curve"],
                   "backward": b_lists["curve"] if b_lists else None},
        "per_image": {"forward": f_lists["per_image"], "backward": b_lists["per_image"] if b_lists else None},
        "ridge": {"forward": fwd.ridge, "backward": bwd.ridge if bwd else None, "cv_forward": _cv(fwd.cv_error),
                  "cv_backward": _cv(bwd.cv_error) if bwd else []},
        "examples": {"indices": test.indices[ex].tolist(), "pred": unit_to_norm(pred[ex]).tolist(),
                     "gt": unit_to_norm(test.keypoints[ex]).nan_to_num(0.0).tolist(),
                     "visible": test.visible[ex].tolist(),
                     "keypoints": test_kp[ex].tolist()},
    }


def _min_samples(ridge, d: int) -> int:
    """Samples `fit_linear` needs per target for a map from `d` inputs (see its ValueError)."""
    return 2 if ridge == "cv" else (d if float(ridge) == 0 else 1)


def _score_present(fit_kp, fit, test_kp, test, fit_present, test_present, *, ridge, seed, folds) -> dict:
    """`score` for keypoints that are present only where a method's confidence says so (Mallis et al.).

    Forward (keypoints -> annotations): the regressor needs all 2K inputs of every image, so an absent
    keypoint is imputed by the fit set's mean position of that keypoint over the images where it is
    present (the image centre if it never is), in fit and test images alike. This is Mallis et al.'s
    test-time imputation; for the fit set they first complete the matrix by singular value
    thresholding, which we leave out: mean imputation keeps every fit image (a complete-case fit would
    lose most images once K is large) and adds no information the test images could not have.
    Backward (annotations -> keypoints): each keypoint is regressed over the fit images where it is
    present (a masked least squares per keypoint, `fit_linear`'s mask) and scored on the test images
    where it is present; a keypoint present in too few fit images to fit is left out (None).
    keypoint_spread: the same error for predicting each keypoint's mean present position.
    """
    (n, k), m, j, res = fit_kp.shape[:2], len(test), fit.keypoints.shape[1], test.resolution
    kf, kt = norm_to_unit(fit_kp.double()), norm_to_unit(test_kp.double())  # (N, K, 2), (M, K, 2) in [0, 1]
    fp = fit_present[..., None]
    mean_kp = torch.where(fp, kf, 0.0).sum(0) / fp.sum(0).clamp_min(1)  # (K, 2) over present fit images
    mean_kp = torch.where(fp.any(0), mean_kp, 0.5)
    xf = torch.where(fp, kf, mean_kp).reshape(n, 2 * k)
    xt = torch.where(test_present[..., None], kt, mean_kp).reshape(m, 2 * k)
    norm, fwd, pred, forward = _forward(xf, xt, fit, test, ridge=ridge, seed=seed, folds=folds)
    gin = _annotation_inputs(fit)
    keep = fit_present.sum(0) >= _min_samples(ridge, 2 * j)  # (K,) keypoints the backward map can be fit for
    scored = test_present & keep[None]  # (M, K)
    backward, bwd = None, None
    if keep.any() and scored.any():
        bwd = fit_linear(gin(fit), kf[:, keep], fit_present[:, keep], ridge, folds=folds, seed=seed)
        pred_kp = torch.zeros(m, k, 2, dtype=torch.float64)
        pred_kp[:, keep] = bwd.predict(gin(test))  # (M, K', 2) -> (M, K, 2); left-out keypoints unscored
        backward = summarise(point_errors(pred_kp, kt, norm, res), scored, THRESHOLDS)
    seen = test_present & fp.any(0).T  # spread: keypoints with a fit-set mean, where present in the test
    spread = masked_mean(point_errors(mean_kp.expand(m, k, 2), kt, norm, res), seen)
    r = _result(fit, test, test_kp, k, pred, forward, backward, spread, fwd, bwd)
    r["per_keypoint_presence"] = test_present.double().mean(0).tolist()  # fraction of test images
    r["fit_keypoint_presence"] = fit_present.double().mean(0).tolist()
    return r


def resolve_device(device: str) -> str:
    """"auto": cuda if present, else cpu; anything else as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def data_skeleton(data) -> list | None:
    """The skeleton (joint pairs) of a data set's source, or None."""
    return getattr(getattr(data, "info", None), "skeleton", None)


def graph_fit_indices(n_total: int, seed: int = 0) -> Tensor:
    """The fit images (drawn by `seed`) on which keypoints are mapped to joints for the skeleton check."""
    return few_shot_indices(n_total, min(GRAPH_FIT, n_total), seed)


EVALUATIONS = ("keypoints", "head")  # the kinds of evaluation (`Method.evaluations`)


def _split_input(method_or_keypoints):
    """(method or None, keypoint tensors or None) of `evaluate`'s first argument; a name is refused."""
    if isinstance(method_or_keypoints, (tuple, list)):
        if len(method_or_keypoints) not in (2, 4):
            raise ValueError("keypoints must be (fit_kp, test_kp) or (fit_kp, test_kp, fit_present, test_present), "
                             f"got {len(method_or_keypoints)} items")
        return None, [torch.as_tensor(t) for t in method_or_keypoints]
    if isinstance(method_or_keypoints, str) or not callable(getattr(method_or_keypoints, "keypoints", None)):
        raise TypeError(f"evaluate takes a Method (an instance, built by the caller) or keypoint tensors, not "
                        f"{type(method_or_keypoints).__name__} {method_or_keypoints!r:.60}")
    return method_or_keypoints, None


def evaluate(method_or_keypoints, fit_data, test_data, n_fit=None, seed: int = 0, ridge="cv", *,
             few_shot=(), max_test: int | None = None, folds: int = 5, batch_size: int = 64,
             device: str = "cpu", evaluation: str = "keypoints", head: HeadConfig | None = None) -> dict:
    """Every number of the protocol for a method (or keypoints) on a fit set and a test set.

    method_or_keypoints: a `Method`, or `(fit_kp, test_kp)` normalised [-1, 1] of shapes
    (len(fit_data), K, 2) and (len(test_data), K, 2), optionally followed by `(fit_present,
    test_present)` (N, K) / (M, K) bool (what a method's `confidence() >= confidence_threshold` gives).
    fit_data / test_data: data sets or `Annotations`. n_fit: None / 0 = all, a count, a fraction or
    "1%" (drawn by `seed`); few_shot: further sizes, scored into result["few_shot"]; max_test: the first
    N test images. A method is run in eval mode without gradients on `device`, `batch_size` images at a time.
    evaluation: "keypoints" (the linear protocol on the discovered keypoints) or "head" (a supervised
    head on the method's frozen `features`, `eval.head`, configured by `head`; trained per fit-set size).

    Returns a JSON-ready dict (percent): evaluation, metrics {nme, pck@0.2 / pck@0.1 for "bbox" data,
    backward_nme, keypoint_spread (both absent for a head: not defined)}, diagnostics (the method's own,
    on the first test batch), per_landmark, per_keypoint_backward, curves {thresholds, forward, backward},
    per_image, ridge (chosen + CV errors) or head (its training record), examples (a few test
    predictions), fit_images, test_images, K, J, normalisation, resolution, n_fit, seed, few_shot [...];
    skeleton (`eval.graph.graph_skeleton`: precision, recall, edges, keypoint_joints) for a method
    whose `graph()` is not None, on data with a skeleton (keypoints evaluation);
    per_keypoint_presence / fit_keypoint_presence for a method with `confidence()`; masks
    (`eval.masks.evaluate_masks`: IoU and its chance levels) for a method that predicts a foreground, on
    data with a foreground reference (the first 256 test images).
    """
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {EVALUATIONS}, got {evaluation!r}")
    method, given = _split_input(method_or_keypoints)
    n_total = len(fit_data)
    sizes = [n_fit] + [s for s in few_shot]
    subsets = {str(s): few_shot_indices(n_total, s, seed) for s in sizes}
    test_idx = torch.arange(min(max_test or len(test_data), len(test_data)))
    if evaluation == "head":
        if method is None:
            raise TypeError("evaluation='head' needs a Method with features(), not keypoint tensors")
        return _evaluate_head(method, fit_data, test_data, subsets, test_idx, n_fit=n_fit, few_shot=few_shot,
                              seed=seed, batch_size=batch_size, device=device, config=head)
    skeleton = data_skeleton(fit_data)
    graph = method.graph() if method is not None and skeleton else None  # (K, K) or None: no graph
    if graph is not None:
        subsets["graph"] = graph_fit_indices(n_total, seed)
    union = torch.unique(torch.cat(list(subsets.values())))  # sorted item positions
    fit_pr = test_pr = None  # (N, K) / (M, K) presence, None: every keypoint always there
    if method is None:
        fit_all, test_kp = given[:2]
        if fit_all.shape[0] != n_total:
            raise ValueError(f"{fit_all.shape[0]} fit keypoint sets for a fit set of {n_total} images")
        if test_kp.shape[0] != len(test_data):
            raise ValueError(f"{test_kp.shape[0]} test keypoint sets for a test set of {len(test_data)} images")
        fit_kp, test_kp = fit_all[union], test_kp[test_idx]
        if len(given) == 4:
            fit_pr, test_pr = given[2].bool()[union], given[3].bool()[test_idx]
        fit_ann, test_ann = annotations(fit_data, union), annotations(test_data, test_idx)
        diagnostics = {}
    else:
        dev = resolve_device(device)
        reads = {"kp": method.keypoints, "conf": method.confidence}
        fit_out, fit_ann = run_method(method, fit_data, union, reads, batch_size=batch_size, device=dev)
        test_out, test_ann = run_method(method, test_data, test_idx, reads, batch_size=batch_size, device=dev)
        fit_kp, test_kp = fit_out["kp"], test_out["kp"]
        if fit_out["conf"] is not None and test_out["conf"] is not None:  # (N, K) confidence -> presence
            fit_pr = fit_out["conf"] >= method.confidence_threshold
            test_pr = test_out["conf"] >= method.confidence_threshold
        diagnostics = run_diagnostics(method, test_data, test_idx[:batch_size], dev)
    # a predicted foreground against the data's (true, or from the joints): None without either
    masks = None if method is None else foreground_scores(method, test_data, n=min(256, len(test_idx)))
    pos = {s: torch.searchsorted(union, idx) for s, idx in subsets.items()}  # subset -> rows of union
    def present(rows: Tensor) -> dict:  # score's presence masks for these fit rows (none without confidence)
        return {} if fit_pr is None else {"fit_present": fit_pr[rows], "test_present": test_pr}

    result = score(fit_kp[pos[str(n_fit)]], fit_ann.subset(pos[str(n_fit)]), test_kp, test_ann,
                   ridge=ridge, seed=seed, folds=folds, **present(pos[str(n_fit)]))
    result.update(n_fit=str(n_fit or "all"), seed=seed, dataset=test_ann.dataset, fit_pool=n_total,
                  diagnostics=diagnostics)
    result["few_shot"] = []
    for s in few_shot:
        r = score(fit_kp[pos[str(s)]], fit_ann.subset(pos[str(s)]), test_kp, test_ann, ridge=ridge, seed=seed,
                  folds=folds, **present(pos[str(s)]))
        result["few_shot"].append({"n_fit": str(s or "all"), "fit_images": r["fit_images"], "metrics": r["metrics"],
                                   "per_landmark": r["per_landmark"], "ridge": r["ridge"]})
    if graph is not None:
        g = pos["graph"]
        result["skeleton"] = graph_skeleton(method, fit_kp[g], fit_ann.subset(g), skeleton)
    if masks is not None:
        result["masks"] = masks
    return result


def _evaluate_head(method, fit_data, test_data, subsets: dict, test_idx: Tensor, *, n_fit, few_shot, seed: int,
                   batch_size: int, device: str, config: HeadConfig | None) -> dict:
    """`evaluate(..., evaluation="head")`: a `LandmarkHead` on the method's frozen features, trained per
    fit-set size on those fit images only (early stopping on a held-out part of them), scored on the
    test images by the same code as every prediction (`evaluate_predictions`)."""
    if "head" not in method.evaluations:
        raise ValueError(f"{type(method).__name__}.evaluations = {method.evaluations}: it offers no 'head' "
                         "evaluation (dense features)")
    config = config or HeadConfig()
    dev = resolve_device(device)
    union = torch.unique(torch.cat(list(subsets.values())))  # sorted fit item positions
    reads = {"features": method.features}
    # features once, frozen (eval mode, no gradients): (N_union, C, h, w) and (M, C, h, w), float32 on the CPU
    fit_out, fit_ann = run_method(method, fit_data, union, reads, batch_size=batch_size, device=dev)
    test_out, test_ann = run_method(method, test_data, test_idx, reads, batch_size=batch_size, device=dev)
    diagnostics = run_diagnostics(method, test_data, test_idx[:batch_size], dev)

    def one(size) -> dict:
        rows = torch.searchsorted(union, subsets[str(size)])  # rows of union: this size's fit images
        fit = fit_ann.subset(rows)
        targets = unit_to_norm(fit.keypoints)  # (n, J, 2)

        def augment(train: Tensor, warps: int):  # few-shot tiling: warps of the training images only
            images = torch.stack([fit_data[int(i)]["image"] for i in subsets[str(size)][train]])
            return tps_copies(method.features, images, targets[train], fit.visible[train], warps,
                              generator=torch.Generator().manual_seed(seed), batch_size=batch_size, device=dev)

        hf = fit_head(fit_out["features"][rows], targets, fit.visible, config, seed=seed, device=dev,
                      augment=augment)
        pred = predict_head(hf.head, test_out["features"], batch_size=batch_size, device=dev)  # (M, J, 2)
        r = _score_predictions(pred, test_ann, fit_images=len(fit))
        r["head"] = {"train_images": len(hf.train_rows), "warped_copies": hf.augmented, "val_images": len(hf.val_rows),
                     "val_items": fit.indices[hf.val_rows].tolist(), "best_step": hf.best_step, "steps": hf.steps,
                     "val_error": None if hf.val_error is None else _pct(hf.val_error / 2),  # % of the image side
                     "history": hf.history}
        return r

    result = one(n_fit)
    try:
        k = method.n_keypoints
    except (AttributeError, NotImplementedError):
        k = None
    result.update(evaluation="head", K=k, n_fit=str(n_fit or "all"), seed=seed, fit_pool=len(fit_data),
                  diagnostics=diagnostics, head_config=config.to_dict(), per_keypoint_backward=None)
    result["few_shot"] = []
    for s in few_shot:
        r = one(s)
        result["few_shot"].append({"n_fit": str(s or "all"), "fit_images": r["fit_images"], "metrics": r["metrics"],
                                   "per_landmark": r["per_landmark"], "head": {**r["head"], "history": None}})
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
    return _score_predictions(pred, test, fit_images=fit_images)


def _score_predictions(pred: Tensor, test: Annotations, *, fit_images: int | None = None) -> dict:
    """Forward numbers of predictions (M, J, 2) normalised [-1, 1] for the M images of `test` (percent)."""
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


def untrained_floor(method, fit_data, test_data, n_fit=None, seed: int = 0, *, evaluation: str = "keypoints",
                    **kwargs) -> dict:
    """The protocol on a randomly initialised model: `method` is a seeded, untrained `Method` that the
    caller built (e.g. `torch.manual_seed(seed); methods.build(name, **config)`); kwargs go to `evaluate`."""
    if not isinstance(method, torch.nn.Module):
        raise TypeError(f"untrained_floor takes a built Method, not {type(method).__name__} {method!r}")
    if evaluation == "keypoints" and not method.keypoints_ready():
        method.fit_readout(fit_data)  # e.g. clusters of the untrained features, as the recipe fits after training
    r = evaluate(method.eval(), fit_data, test_data, n_fit=n_fit, seed=seed, evaluation=evaluation, **kwargs)
    r.update(method=method.name, kind="untrained", steps=0, config=method.config_dict())
    return r


def evaluate_checkpoint(path: str | os.PathLike, data: str, fit_split: str = "fit", test_split: str | None = "val",
                        test_data: str | None = None, *, report_dir: str | os.PathLike | None = None,
                        profile: str | None = None, evaluation: str | None = None, **kwargs) -> dict:
    """`evaluate` for a trained checkpoint, with the run's metadata (summary.json, config, commit).

    evaluation: one kind ("keypoints" / "head"), or None = every kind in `method.evaluations`, each
    scored (and reported, with `report_dir`) on its own; the first kind's result is returned, the
    others under its "other_evaluations" (a list of results).

    data: a store path or "procedural"; the fit set is its `fit_split`. test_data: a separate test
    store (its `test_split` if it has one, else all of it); default: `test_split` of `data`.
    kwargs go to `evaluate` (n_fit, seed, ridge, few_shot, max_test, batch_size, device).
    report_dir: also write `report_dir/<run>/metrics.json` and figures (`report.write_report`).
    """
    import json

    from ..checkpoint import load_method, method_resolution
    from ..data import open_dataset
    from ..provenance import git_commit

    method = load_method(path)
    kinds = [evaluation] if evaluation else list(method.evaluations)
    bad = [k for k in kinds if k not in method.evaluations]
    if bad:
        raise ValueError(f"evaluation {bad[0]!r}: {method.name} offers {method.evaluations}")
    info = method.checkpoint_info
    res = method_resolution(method)
    fit = open_dataset(data, fit_split, resolution=res)
    test, split = open_test_set(data, test_split, test_data, res)
    run_dir = Path(path).parent
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    recipe = run_dir.parent / "summary.json"  # a stage of a recipe: the train time is the whole recipe's
    if info.get("experiment") and recipe.is_file():
        summary = {**summary, "wall_s_total": json.loads(recipe.read_text()).get("wall_s_total")}
    results = []
    for kind in kinds:
        r = evaluate(method, fit, test, evaluation=kind, **kwargs)
        r.update(method=method.name, kind="trained", run=info.get("run"), experiment=info.get("experiment") or None,
                 train_dataset=info.get("dataset"),
                 resolution=res, steps=info.get("step"), commit=info.get("commit"), eval_commit=git_commit(),
                 checkpoint=str(path), data=data, fit_split=fit_split, split=split, test_data=test_data or None,
                 config=method.config_dict(), wall_s=summary.get("wall_s_total", summary.get("wall_s")),
                 images_per_s=summary.get("images_per_s"), peak_memory_mb=summary.get("peak_memory_mb"),
                 device=summary.get("device"), batch_size=summary.get("batch_size"), bf16=summary.get("bf16"))
        if report_dir is not None:
            from .report import write_report

            r["report"] = str(write_report(r, report_dir, test_data=test, profile=profile))
        results.append(r)
    if len(results) > 1:
        results[0]["other_evaluations"] = results[1:]  # not in its metrics.json: each kind has its own report
    return results[0]


def floor_table(result: dict) -> str:
    """`metrics_table` of a checkpoint's result (`evaluate_checkpoint`) beside the mean-shape floor on the same
    fit and test images: what a notebook shows after training."""
    from ..data import open_dataset
    from .report import metrics_table

    fit = open_dataset(result["data"], result["fit_split"], resolution=result["resolution"])
    test, _ = open_test_set(result["data"], result["split"], result.get("test_data"), result["resolution"])
    n_fit = result.get("n_fit")
    floor = mean_shape_floor(fit, test, n_fit=None if n_fit in (None, "all") else int(n_fit), seed=result.get("seed", 0))
    label = f"{result.get('run') or result.get('method')} ({result.get('evaluation', 'keypoints')})"
    return metrics_table({label: result, "mean shape (floor)": floor})
