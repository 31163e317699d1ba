"""Regressed landmarks and per-image errors for the pictures, through the shared protocol.

Everything numeric comes from `lmkcore.eval` (the forward direction of `eval.protocol.score`):
keypoints -> [0, 1] -> `fit_linear` (no intercept, per-landmark visibility, ridge by CV on the fit
set) -> `normaliser` / `point_errors` / `masked_mean`. This module only adapts shapes for the
inspector and the figures, which work with normalised [-1, 1] points of single images.

Shapes: keypoints `(N, K, 2)`, landmarks `(N, L, 2)` normalised [-1, 1], visible `(N, L)` bool.
Errors are in percent of the data set's normaliser, as in the reports.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..data import InMemory
from ..eval import LinearFit, discover, few_shot_indices, fit_linear, normaliser, point_errors
from ..eval.metrics import masked_mean
from ..methods import Method
from ..ops import norm_to_unit, unit_to_norm


@dataclass
class Regressor:
    """The protocol's forward map of one method, fitted on `n_fit` images of a fit set."""

    fit: LinearFit
    n_fit: int

    def __call__(self, kp: Tensor) -> Tensor:
        """Discovered keypoints `(N, K, 2)` -> regressed landmarks `(N, L, 2)`, both normalised."""
        x = norm_to_unit(kp.double()).reshape(kp.shape[0], -1)  # (N, 2K)
        return unit_to_norm(self.fit.predict(x)).float()


def fit_subset(fit_data: Dataset, n_fit: int | None = 500, seed: int = 0) -> Dataset:
    """The protocol's seeded subset of `n_fit` fit images (None: all), held in memory so that
    several checkpoints are fitted without decoding or rendering the images again."""
    n_total = len(fit_data)
    idx = few_shot_indices(n_total, None if n_fit is None or n_fit >= n_total else n_fit, seed)
    return InMemory(fit_data, idx)


def fit_on(method: Method, fit_data: Dataset, n_fit: int | None = None, seed: int = 0) -> Regressor:
    """Fit the forward map on `n_fit` images of `fit_data` (see `fit_subset`; None: all of them)."""
    data = fit_data if n_fit is None else fit_subset(fit_data, n_fit, seed)
    kp, ann = discover(method, data)
    x = norm_to_unit(kp.double()).reshape(len(data), -1)  # (N, 2K)
    return Regressor(fit_linear(x, ann.keypoints, ann.visible, "cv", seed=seed, names=ann.names), len(data))


def _resolution(data: Dataset) -> int:
    return int(getattr(data, "resolution", None) or getattr(data, "size", None) or data[0]["image"].shape[-1])


def landmark_errors(pred: Tensor, landmarks: Tensor, visible: Tensor, box: Tensor, data: Dataset) -> Tensor:
    """Normalised error of each predicted landmark `(N, L)`, percent; NaN where not annotated."""
    res = _resolution(data)
    gt = norm_to_unit(landmarks.double())
    norm = normaliser(data.info.normalisation, gt, visible.bool(), box.double(), res)  # (N,) pixels
    err = 100.0 * point_errors(norm_to_unit(pred.double()), gt, norm, res)
    return err.masked_fill(~visible.bool(), float("nan"))


def image_errors(per_landmark: Tensor) -> Tensor:
    """Mean over the visible landmarks of each image `(N,)` (as the protocol's per-image errors)."""
    visible = ~per_landmark.isnan()
    return masked_mean(per_landmark.nan_to_num(0.0), visible, 1)


def nearest_landmark(kp: Tensor, landmarks: Tensor, visible: Tensor, box: Tensor, data: Dataset) -> tuple[int, float]:
    """One keypoint `(2,)` against one image's landmarks `(L, 2)`: (nearest visible landmark, its
    normalised distance in percent)."""
    d = landmark_errors(kp.expand_as(landmarks)[None], landmarks[None], visible[None], box[None], data)[0]
    j = int(d.nan_to_num(float("inf")).argmin())
    return j, float(d[j])


def evaluate_images(method: Method, regressor: Regressor, data: Dataset, indices) -> dict[str, Tensor]:
    """Per-image errors `(N,)` (percent) of `method` on items `indices` of annotated `data`, with the
    per-landmark errors `(N, L)`, keypoints and regressed landmarks; images without a visible
    landmark are dropped (as in the protocol)."""
    kp, ann = discover(method, data, torch.as_tensor(list(indices), dtype=torch.long))
    pred = regressor(kp)
    per = landmark_errors(pred, unit_to_norm(ann.keypoints), ann.visible, ann.boxes, data)
    has = ann.visible.any(1)
    return {"error": image_errors(per)[has], "per_landmark": per[has], "keypoints": kp[has],
            "regressed": pred[has], "indices": ann.indices[has]}
