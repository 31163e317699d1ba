"""Foreground masks against a foreground estimate: how well a method's predicted mask separates figure from
background (Dundar et al. 2020 report foreground IoU; card section 10).

The reference is the true figure on the procedural data (`ProceduralFigures.mask`: the coverage its renderer
composites) and, on data with joints only (LSPET), an estimate: thick capsules along the skeleton's bones
(`skeleton_masks`). Two chance levels come with every score: the constant all-foreground mask (its IoU is
the figure's share of the image) and the method's own masks given to the wrong images (a random permutation:
a mask that does not follow its image scores no better than that).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..ops.coords import grid
from ..ops.edges import segment_distance2

__all__ = ["evaluate_masks", "foreground_scores", "has_reference", "mask_iou", "reference_masks", "skeleton_masks",
           "soft_iou"]


def mask_iou(pred: Tensor, true: Tensor, threshold: float = 0.5) -> Tensor:
    """Intersection over union of binarised masks, per image: `(B, 1, H, W), (B, 1, H, W) -> (B,)`.
    Both are binarised at `threshold`; an image where both are empty scores 1."""
    if pred.shape != true.shape:
        raise ValueError(f"mask_iou: pred {tuple(pred.shape)} and true {tuple(true.shape)} differ")
    p, t = (pred > threshold).flatten(1), (true > threshold).flatten(1)
    inter, union = (p & t).sum(1).float(), (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def soft_iou(pred: Tensor, true: Tensor) -> Tensor:
    """Fuzzy IoU sum min(p, t) / sum max(p, t) per image, `(B, 1, H, W), (B, 1, H, W) -> (B,)`: no threshold,
    so a mask still close to 0.5 (early in training) is scored by where its weight lies."""
    if pred.shape != true.shape:
        raise ValueError(f"soft_iou: pred {tuple(pred.shape)} and true {tuple(true.shape)} differ")
    p, t = pred.float().flatten(1), true.float().flatten(1)
    return torch.minimum(p, t).sum(1) / torch.maximum(p, t).sum(1).clamp_min(1e-12)


def skeleton_masks(keypoints: Tensor, visible: Tensor, skeleton: list[tuple[int, int]], size: int,
                   thickness: float = 0.08) -> Tensor:
    """A foreground estimate from joints: capsules along the bones whose both ends are visible, of radius
    `thickness` x the extent of the visible joints (the larger side of their bounding box).
    keypoints `(B, J, 2)` normalised, visible `(B, J)` bool -> `(B, 1, size, size)` in {0, 1}."""
    if not skeleton:
        raise ValueError("skeleton_masks needs a skeleton (the data set's info.skeleton)")
    a, b = (torch.tensor([e[i] for e in skeleton]) for i in (0, 1))
    vis = visible.bool()
    kp = keypoints.float()
    big = torch.where(vis[..., None], kp, torch.full_like(kp, float("nan")))
    extent = (big.nan_to_num(-9.0).amax(1) - big.nan_to_num(9.0).amin(1)).amax(-1).clamp(0.0, 2.0)  # (B,)
    d2 = segment_distance2(grid(size, size).reshape(-1, 2), kp[:, a], kp[:, b])  # (B, E, P)
    d2 = torch.where((vis[:, a] & vis[:, b])[..., None], d2, torch.full_like(d2, float("inf")))
    inside = d2.amin(1) <= (thickness * extent)[:, None] ** 2  # (B, P)
    return inside.float().reshape(-1, 1, size, size)


def reference_masks(data: Dataset, indices: list[int], size: int, thickness: float = 0.08) -> tuple[Tensor, str]:
    """The reference foreground of items `indices` at `size`, and its kind: "true" where the data set draws its
    figures (`mask(i)`), else "skeleton" (`skeleton_masks` from the items' joints and `data.info.skeleton`)."""
    if hasattr(data, "mask"):
        m = torch.stack([data.mask(i) for i in indices])  # (N, 1, s, s)
        if m.shape[-1] != size:
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        return m, "true"
    info = getattr(data, "info", None)
    items = [data[i] for i in indices]
    kp = torch.stack([it["keypoints"] for it in items])
    vis = torch.stack([it["visible"] for it in items]) if "visible" in items[0] else torch.ones(kp.shape[:2], dtype=torch.bool)
    return skeleton_masks(kp, vis, list(getattr(info, "skeleton", []) or []), size, thickness), "skeleton"


@torch.no_grad()
def evaluate_masks(method, data: Dataset, n: int = 256, batch_size: int = 32, threshold: float = 0.5,
                   seed: int = 0) -> dict:
    """A method's predicted foreground (`method.mask(images)` `(B, 1, S, S)`) against the reference on the
    first `n` items of `data`: mean IoU at `threshold`, and the chance levels "iou_constant" (all foreground)
    and "iou_permuted" (the masks of other images: a fixed random derangement of the items); the same as
    `soft_iou` ("soft_iou", "soft_iou_constant": a constant mask of the predictions' mean value,
    "soft_iou_permuted"). Eval mode."""
    was_training = method.training
    method.eval()
    idx = list(range(min(n, len(data))))
    if len(idx) < 2:
        raise ValueError(f"evaluate_masks needs at least 2 items, data has {len(data)}")
    preds = []
    for s in range(0, len(idx), batch_size):
        images = torch.stack([data[i]["image"] for i in idx[s:s + batch_size]])
        dev = next(method.parameters()).device
        preds.append(method.mask(images.to(dev)).float().cpu())
    pred = torch.cat(preds)  # (N, 1, S, S)
    true, kind = reference_masks(data, idx, pred.shape[-1])
    g = torch.Generator().manual_seed(seed)
    perm = (torch.arange(len(idx)) + torch.randint(1, len(idx), (1,), generator=g)) % len(idx)  # no item keeps its own
    method.train(was_training)
    return {"iou": float(mask_iou(pred, true, threshold).mean()),
            "iou_constant": float(mask_iou(torch.ones_like(true), true, threshold).mean()),
            "iou_permuted": float(mask_iou(pred[perm], true, threshold).mean()),
            "soft_iou": float(soft_iou(pred, true).mean()),
            "soft_iou_constant": float(soft_iou(torch.full_like(pred, float(pred.mean())), true).mean()),
            "soft_iou_permuted": float(soft_iou(pred[perm], true).mean()),
            "mask_mean": float((pred > threshold).float().mean()), "reference_mean": float((true > threshold).float().mean()),
            "reference": kind, "n": len(idx)}


def has_reference(data: Dataset) -> bool:
    """Whether `data` gives a foreground reference: its drawn figures (`mask(i)`), or the joints of a skeleton
    (bodies, whatever their normalisation: LSPET's box, BBC pose's or H3.6M's image size). Faces' inner
    landmarks (eyes, nose, mouth) outline no foreground, so face data (normalised by the inter-ocular
    distance) has none."""
    if hasattr(data, "mask"):
        return True
    info = getattr(data, "info", None)
    faces = (getattr(info, "normalisation", "") or "").startswith("interocular")
    return bool(getattr(info, "skeleton", None)) and not faces


def foreground_scores(method, data: Dataset, n: int = 256, batch_size: int = 32) -> dict | None:
    """`evaluate_masks` for a method that predicts a foreground (it declares a "mask" layer and has `mask`),
    on data with a reference (`has_reference`); None otherwise."""
    if "mask" not in getattr(method, "layers", {}) or not callable(getattr(method, "mask", None)):
        return None
    if not has_reference(data) or len(data) < 2:
        return None
    return evaluate_masks(method, data, n=n, batch_size=batch_size)
