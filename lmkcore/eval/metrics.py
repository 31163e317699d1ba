"""Landmark errors: normalisers, NME, PCK, per-landmark errors and cumulative error curves.

Everything here takes points in [0, 1] (`ops.coords.norm_to_unit`) of a square image of
`resolution` pixels and measures float distances in pixels of that image (unit * (R - 1), the
inverse of the store's convention), so that each normaliser is exact:

    "interocular:i,j"  distance between ground-truth landmarks i and j of the image
    "image_size"       the image side R
    "bbox"             max(w, h) of the item's box (x0, y0, x1, y1 in pixels: w = x1 - x0)

Means run over visible points only (pooled over images and landmarks). Fractions come back as
fractions; the protocol multiplies by 100 when it reports.
"""
from __future__ import annotations

import torch
from torch import Tensor

PCK_THRESHOLDS = (0.2, 0.1)  # of the box size, for "bbox" data


def parse_normalisation(spec: str) -> tuple[str, tuple[int, int] | None]:
    """'interocular:0,1' -> ('interocular', (0, 1)); 'bbox' / 'image_size' -> (spec, None)."""
    kind, _, arg = spec.partition(":")
    if kind == "interocular":
        try:
            i, j = (int(v) for v in arg.split(","))
        except ValueError:
            raise ValueError(f"normalisation {spec!r}: expected 'interocular:i,j' with two landmark indices")
        return kind, (i, j)
    if kind in ("bbox", "image_size") and not arg:
        return kind, None
    raise ValueError(f"unknown normalisation {spec!r}; expected 'interocular:i,j', 'bbox' or 'image_size'")


def normaliser(spec: str, gt: Tensor, visible: Tensor, boxes: Tensor, resolution: int) -> Tensor:
    """Per-image normalising length in pixels, `(N,)`.

    gt (N, J, 2) in [0, 1], visible (N, J) bool, boxes (N, 4) pixels. Raises if a length is not a
    positive finite number (naming the samples) rather than returning inf / NaN errors.
    """
    kind, pair = parse_normalisation(spec)
    n = gt.shape[0]
    if kind == "image_size":
        return torch.full((n,), float(resolution), dtype=torch.float64)
    if kind == "bbox":
        wh = (boxes[:, 2:] - boxes[:, :2]).double()  # (N, 2)
        length = wh.max(1).values
    else:
        i, j = pair
        if max(i, j) >= gt.shape[1]:
            raise ValueError(f"normalisation {spec!r} names landmark {max(i, j)} but there are {gt.shape[1]}")
        hidden = ~(visible[:, i] & visible[:, j])
        if hidden.any():
            raise ValueError(f"inter-ocular normalisation needs landmarks {i} and {j} visible; they are not in "
                             f"{int(hidden.sum())} image(s), e.g. {hidden.nonzero().flatten()[:10].tolist()}")
        length = ((gt[:, i] - gt[:, j]).double() * (resolution - 1)).norm(dim=-1)
    bad = ~(torch.isfinite(length) & (length > 0))
    if bad.any():
        raise ValueError(f"{kind} normaliser is zero or non-finite in {int(bad.sum())} image(s), "
                         f"e.g. {bad.nonzero().flatten()[:10].tolist()}")
    return length


def point_errors(pred: Tensor, gt: Tensor, norm: Tensor, resolution: int) -> Tensor:
    """Normalised Euclidean errors `(N, J)`: pred, gt (N, J, 2) in [0, 1], norm (N,) pixels."""
    if pred.shape != gt.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and targets {tuple(gt.shape)} differ in shape")
    return ((pred.double() - gt.double()) * (resolution - 1)).norm(dim=-1) / norm[:, None]


def masked_mean(err: Tensor, visible: Tensor, dim=None) -> Tensor:
    """Mean of `err` over visible entries (all of them, or along `dim`); NaN-free (0 where none)."""
    v = visible.to(torch.bool)
    e = torch.where(v, err, 0.0)  # hidden entries may hold NaN
    if dim is None:
        return e.sum() / v.sum().clamp_min(1)
    return e.sum(dim) / v.sum(dim).clamp_min(1)


def pck(err: Tensor, visible: Tensor, thr: float, dim=None) -> Tensor:
    """Fraction of visible points with normalised error <= thr (`err`, `visible` (N, J))."""
    return masked_mean((err <= thr).double(), visible, dim)


def cumulative_curve(per_image: Tensor, thresholds: Tensor) -> Tensor:
    """Fraction of images with error <= t for each t: per_image (N,), thresholds (T,) -> (T,)."""
    return (per_image[None, :] <= thresholds[:, None]).double().mean(1)


def pck_thresholds(spec: str) -> tuple[float, ...]:
    """The PCK thresholds reported for a normalisation: `PCK_THRESHOLDS` for "bbox", none otherwise."""
    return PCK_THRESHOLDS if parse_normalisation(spec)[0] == "bbox" else ()


def summarise(err: Tensor, visible: Tensor, thresholds: Tensor, pck_at: tuple[float, ...] = ()) -> dict:
    """All numbers of one direction (forward or backward): err, visible (N, J) -> dict of fractions.

    Returns nme, pck@t for t in `pck_at`, per_landmark nme (J,) (None for a landmark never visible),
    per-image errors of the images with a visible point, and the cumulative curve over `thresholds`
    (T,). Raises if no point is visible at all.
    """
    visible = visible.to(torch.bool)
    if not visible.any():
        raise ValueError("no visible point to score")
    has = visible.any(1)  # images with at least one visible point
    seen = visible.any(0)  # landmarks visible somewhere; None in per-landmark lists otherwise
    per_image = masked_mean(err, visible, 1)[has]  # (N',)

    def per_landmark(v: Tensor) -> list:
        return [float(x) if s else None for x, s in zip(v.tolist(), seen.tolist())]

    out = {"nme": float(masked_mean(err, visible)),
           "per_landmark": {"nme": per_landmark(masked_mean(err, visible, 0))},
           "per_image": per_image.tolist(),
           "curve": cumulative_curve(per_image, thresholds).tolist(),
           "points": int(visible.sum()), "images": int(has.sum())}
    for t in pck_at:
        out[f"pck@{t:g}"] = float(pck(err, visible, t))
        out["per_landmark"][f"pck@{t:g}"] = per_landmark(pck(err, visible, t, 0))
    return out
