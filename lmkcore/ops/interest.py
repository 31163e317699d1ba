"""Interest points without learned weights, and the point / map helpers of the self-training method.

Mallis et al. (NeurIPS 2020, card `mallis_self_training.md` sections 3, 5, 6) bootstrap from
SuperPoint; the card's weight-free substitute (section 11) is used here: Shi-Tomasi corners (or
OpenCV's SIFT detector) on the grey image at three zooms, box-NMS, and SIFT descriptors at the
points, L2-normalised. Points are normalised (x, y) in [-1, 1] (`ops.coords`) everywhere except
inside `detect_points`, which works in pixels of the image it is given.

Also here: box-NMS on point sets and on score maps (max-pool), the stamped training targets of
both steps (a one-hot pixel in Step 1, the 3 x 3 Gaussian in Step 2), and the arg-max read-out
of heatmaps with a sub-pixel 3 x 3 refinement.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .coords import norm_to_pixels, pixels_to_norm

# exp(-d^2 / (2 sigma^2)) with sigma = 0.75 px: 1 at the centre, 0.41 at the 4-neighbours and 0.17 at
# the corners, the card's Step-2 stamp (section 6)
STAMP_SIGMA = 0.75


# helpers: maps

def map_nms(scores: Tensor, radius: int) -> Tensor:
    """Box-NMS on score maps `(B, 1, H, W)`: True where a pixel is positive and the maximum of its
    (2 radius + 1)^2 box (SuperPoint's max-pool NMS, one pass). Equal maxima within one box (a plateau)
    keep only the last pixel: two maxima in each other's box are equal, so a second max-pool over their
    pixel numbers settles it. `(B, 1, H, W)` bool."""
    b, _, h, w = scores.shape
    k = 2 * radius + 1
    cand = (scores == F.max_pool2d(scores, k, stride=1, padding=radius)) & (scores > 0)
    num = torch.arange(h * w, device=scores.device, dtype=torch.float32).view(1, 1, h, w).expand(b, 1, h, w)
    num = torch.where(cand, num, torch.full_like(num, -1.0))  # exact in float32 below 2^24 pixels
    return cand & (num == F.max_pool2d(num, k, stride=1, padding=radius))


def points_nms(points: Tensor, scores: Tensor, size: tuple[int, int], radius: int) -> Tensor:
    """Box-NMS on one point set: `points` (N, 2) pixel (x, y) of an image of `size` = (H, W), `scores`
    (N,). Points are ranked (ties: the earlier point first), rounded to pixels and splatted (the best
    rank per pixel) onto a map; a point survives where it holds the best rank of its (2 radius + 1)^2
    box (one max-pool pass). Returns the kept indices, best score first.
    Example: two points 3 px apart with radius 2 keep only the stronger; 6 px apart, both."""
    n = len(points)
    if n == 0:
        return torch.zeros(0, dtype=torch.long)
    h, w = size
    order = torch.from_numpy(np.lexsort((np.arange(n)[::-1].copy(), scores.numpy())))  # ascending score
    rank = torch.empty(n, dtype=torch.float32)
    rank[order] = torch.arange(1, n + 1, dtype=torch.float32)  # 1 (worst) .. n (best)
    px = points.round().long()
    px[:, 0].clamp_(0, w - 1)
    px[:, 1].clamp_(0, h - 1)
    flat = px[:, 1] * w + px[:, 0]  # (N,)
    best = torch.zeros(h * w).scatter_reduce(0, flat, rank, "amax")
    peak = F.max_pool2d(best.view(1, 1, h, w), 2 * radius + 1, stride=1, padding=radius).view(-1)
    keep = torch.nonzero(rank == peak[flat]).squeeze(1)
    return keep[rank[keep].argsort(descending=True)]


def stamp_maps(points: Tensor, valid: Tensor, h: int, w: int, sigma: float = 0.0, radius: int = 1) -> Tensor:
    """Training targets: points `(B, N, 2)` normalised, valid `(B, N)` -> maps `(B, N, H, W)`, each a
    (2 radius + 1)^2 Gaussian of `sigma` pixels centred on the point's nearest pixel (sigma 0: a one-hot
    pixel, Step 1's detector target; `STAMP_SIGMA` with radius 1: Step 2's 3 x 3 stamp). Invalid or
    outside points give empty maps."""
    px = norm_to_pixels(points.float(), (h, w)).round()  # (B, N, 2) nearest pixel
    inside = valid & (px[..., 0] >= 0) & (px[..., 0] <= w - 1) & (px[..., 1] >= 0) & (px[..., 1] <= h - 1)
    ys = torch.arange(h, device=points.device, dtype=torch.float32)
    xs = torch.arange(w, device=points.device, dtype=torch.float32)
    dx = xs[None, None, None, :] - px[..., 0, None, None]  # (B, N, 1, W)
    dy = ys[None, None, :, None] - px[..., 1, None, None]  # (B, N, H, 1)
    box = (dx.abs() <= radius) & (dy.abs() <= radius)
    if sigma > 0:
        val = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2)) * box
    else:
        val = ((dx == 0) & (dy == 0)).float()
    return val * inside[..., None, None]


def argmax_points(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Arg-max read-out: `(B, K, H, W)` -> positions `(B, K, 2)` normalised and peak values `(B, K)`.
    The arg-max pixel is refined by the centre of mass of the positive values of its 3 x 3
    neighbourhood (sub-pixel; a symmetric peak stays on its pixel)."""
    b, k, h, w = heatmaps.shape
    x = heatmaps.float()
    peak, idx = x.reshape(b, k, h * w).max(-1)  # (B, K)
    iy, ix = idx // w, idx % w
    off = torch.tensor([-1, 0, 1], device=x.device)
    ny = (iy[..., None, None] + off[:, None]).clamp(0, h - 1)  # (B, K, 3, 1)
    nx = (ix[..., None, None] + off[None, :]).clamp(0, w - 1)  # (B, K, 1, 3)
    flat = (ny * w + nx).reshape(b, k, 9)
    val = x.reshape(b, k, h * w).gather(-1, flat).clamp_min(0)  # (B, K, 9)
    pos = torch.stack([nx.expand(-1, -1, 3, 3), ny.expand(-1, -1, 3, 3)], -1).reshape(b, k, 9, 2).float()
    mass = val.sum(-1, keepdim=True)
    centre = torch.stack([ix, iy], -1).float()
    sub = torch.where(mass > 0, (val[..., None] * pos).sum(-2) / mass.clamp_min(1e-12), centre)
    return pixels_to_norm(sub, (h, w)), peak


def sample_descriptors(desc: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of descriptor maps `(B, D, h, w)` at points `(B, N, 2)` normalised -> `(B, N, D)`."""
    s = F.grid_sample(desc, points[:, :, None, :].to(desc.dtype), mode="bilinear", align_corners=True)
    return s[..., 0].transpose(1, 2)


# the weight-free bootstrap detector (card section 11)

def grey_uint8(image: Tensor, size: int) -> np.ndarray:
    """`(3, H, W)` in [0, 1] -> grey `(size, size)` uint8 (the detector sees the grey image)."""
    x = image[None].float()
    if x.shape[-1] != size or x.shape[-2] != size:  # align_corners=True: the workbook's normalised coordinates
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True, antialias=size < x.shape[-1])
    x = x[0]
    g = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).clamp(0, 1)
    return (g * 255).round().byte().numpy()


def _detect_one(grey: np.ndarray, detector: str, quality: float, block: int,
                radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel points (N, 2) and scores (N,) of one grey image: Shi-Tomasi min-eigenvalue maps
    (`corners`) above `quality` x their maximum, max-pool NMS; or OpenCV's SIFT (DoG) detector."""
    import cv2

    if detector == "corners":
        r = torch.from_numpy(cv2.cornerMinEigenVal(grey, block, 3))[None, None]  # (1, 1, H, W)
        r = torch.where(r >= quality * r.max().clamp_min(1e-12), r, torch.zeros_like(r))
        yx = torch.nonzero(map_nms(r, radius)[0, 0])  # (N, 2) row, col
        return yx.flip(1).float().numpy(), r[0, 0][yx[:, 0], yx[:, 1]].numpy()
    if detector == "sift":
        kps = cv2.SIFT_create(contrastThreshold=0.01).detect(grey, None)
        pts = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
        return pts, np.array([k.response for k in kps], np.float32)
    raise ValueError(f"detector must be 'corners' or 'sift', got {detector!r}")


def detect_points(image: Tensor, *, size: int = 128, zooms=(1.0, 1.3, 1.6), detector: str = "corners",
                  nms: int = 3, quality: float = 0.05, block: int = 5, desc_size: float = 12.0,
                  border: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """Interest points of one image `(3, H, W)` in [0, 1], found at `size` px: points `(N, 2)` normalised,
    scores `(N,)` and L2-normalised 128-d SIFT descriptors `(N, 128)`, strongest first.

    The grey image is zoomed by each of `zooms` (card: x1, x1.3, x1.6), points detected and NMS-ed
    (box half-size `nms` px) per zoom, the zoom undone, the sets merged by another NMS; points closer
    than `border` px to the edge are dropped; descriptors are computed on the x1 image (patch of
    `desc_size` px)."""
    import cv2

    grey = grey_uint8(image, size)
    pts, scores = [], []
    for z in zooms:
        g = grey if z == 1 else cv2.resize(grey, (round(size * z), round(size * z)), interpolation=cv2.INTER_LINEAR)
        p, s = _detect_one(g, detector, quality, block, nms)
        pts.append((torch.from_numpy(p) + 0.5) * (size / g.shape[0]) - 0.5)  # back to x1 pixels (OpenCV: half-pixel)
        scores.append(torch.from_numpy(s / max(float(s.max()), 1e-12) if len(s) else s))  # zooms comparable
    p, s = torch.cat(pts), torch.cat(scores)
    inside = (p >= border).all(1) & (p <= size - 1 - border).all(1)
    p, s = p[inside], s[inside]
    keep = points_nms(p, s, (size, size), nms)
    p, s = p[keep], s[keep]
    if len(p) == 0:
        return torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, 128)
    return pixels_to_norm(p, (size, size)), s, sift_descriptors(grey, p, desc_size)


def sift_descriptors(grey: np.ndarray, points: Tensor, desc_size: float = 12.0) -> Tensor:
    """L2-normalised 128-d SIFT descriptors `(N, 128)` of a grey uint8 image at pixel points `(N, 2)` (x, y),
    upright, each from a patch of `desc_size` px."""
    import cv2

    kps = [cv2.KeyPoint(float(x), float(y), float(desc_size)) for x, y in points.tolist()]
    kps, d = cv2.SIFT_create().compute(grey, kps)
    if d is None or len(kps) != len(points):  # OpenCV drops none at these positions; guard the invariant anyway
        raise RuntimeError(f"SIFT described {0 if d is None else len(kps)} of {len(points)} points")
    return F.normalize(torch.from_numpy(d).float(), dim=1)


@torch.no_grad()
def superpoint_points(net, image: Tensor, *, size: int = 128, zooms=(1.0, 1.3, 1.6), threshold: float = 0.1,
                      nms: int = 3, border: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """`detect_points` with SuperPoint (`nets.superpoint`, the paper's bootstrap, card section 3): points
    where its probability exceeds `threshold`, box-NMS per zoom and across zooms, 256-d descriptors
    sampled from the x1 descriptor map. Sizes are rounded to multiples of 8."""
    grey = torch.from_numpy(grey_uint8(image, size)).float().div(255)[None, None]  # (1, 1, S, S)
    pts, scores, desc1 = [], [], None
    for z in zooms:
        side = max(8, round(size * z / 8) * 8)
        g = F.interpolate(grey, size=(side, side), mode="bilinear", align_corners=True) if side != size else grey
        prob, desc = net(g)
        if desc1 is None or z == 1:
            desc1 = desc if z == 1 else desc1
        keep = map_nms(torch.where(prob > threshold, prob, torch.zeros_like(prob)), nms)[0, 0]
        yx = torch.nonzero(keep)
        pts.append(yx.flip(1).float() * ((size - 1) / (side - 1)))  # align_corners=True zoom undone
        scores.append(prob[0, 0][keep])
    if desc1 is None:  # no x1 zoom given: describe on the image at size
        desc1 = net(grey)[1]
    p, s = torch.cat(pts), torch.cat(scores)
    inside = (p >= border).all(1) & (p <= size - 1 - border).all(1)
    p, s = p[inside], s[inside]
    keep = points_nms(p, s, (size, size), nms)
    p, s = pixels_to_norm(p[keep], (size, size)), s[keep]
    return p, s, F.normalize(sample_descriptors(desc1, p[None])[0], dim=1)


def in_box(points: Tensor, box: Tensor, image_size: int, margin: float = 0.1) -> Tensor:
    """Which points `(..., N, 2)` normalised lie inside their object box `(..., 4)` (x0, y0, x1, y1 pixels
    of an image of side `image_size`), enlarged by `margin` x its size on every side. `(..., N)` bool."""
    px = norm_to_pixels(points, image_size)
    b = box.to(px.dtype)[..., None, :]  # (..., 1, 4)
    mx, my = margin * (b[..., 2] - b[..., 0]), margin * (b[..., 3] - b[..., 1])
    return ((px[..., 0] >= b[..., 0] - mx) & (px[..., 0] <= b[..., 2] + mx)
            & (px[..., 1] >= b[..., 1] - my) & (px[..., 1] <= b[..., 3] + my))


__all__ = ["STAMP_SIGMA", "argmax_points", "detect_points", "grey_uint8", "in_box", "map_nms", "points_nms",
           "sample_descriptors", "sift_descriptors", "stamp_maps", "superpoint_points"]
