"""Contrastive losses and the MoCo bookkeeping ops (momentum encoder, queue of negatives), and the
random views they compare. Shapes in each docstring; coordinates are the workbook's (`ops.coords`).

    info_nce(q, k, queue, t)      MoCo's InfoNCE, the positive at index 0 (He et al. 2020, eq. 1)
    dense_nce(zb, za, src, t)     InfoNCE between corresponding positions of two views of one image
    momentum_update(k, q, m)      key encoder <- m key + (1 - m) query (MoCo eq. 2)
    enqueue(queue, ptr, keys)     FIFO queue of negatives with a wrapping pointer
    random_resized_crop(b, ...)   RandomResizedCrop (+ flip) as sampling affines (B, 2, 3)
    lighting(images, std)         AlexNet PCA lighting noise
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def info_nce(q: Tensor, k: Tensor, queue: Tensor, t: float) -> tuple[Tensor, Tensor]:
    """InfoNCE of queries q (B, D) against their keys k (B, D) (the positives) and the queue's keys
    (D, N) (the negatives), all unit vectors: cross-entropy of logits [q.k, q.queue] / t (B, 1 + N)
    with the positive at index 0. Returns (loss, accuracy of picking the positive)."""
    l_pos = (q * k).sum(-1, keepdim=True)  # (B, 1)
    l_neg = q @ queue  # (B, N)
    logits = torch.cat([l_pos, l_neg], 1) / t  # (B, 1 + N)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels), (logits.argmax(1) == 0).float().mean()


def dense_nce(zb: Tensor, za: Tensor, src: Tensor, t: float) -> Tensor:
    """Spatially contrastive InfoNCE between two views of the same images: descriptors zb (B, P, D)
    at P positions of view b, and view a's descriptor map za (B, D, h, w) sampled (bilinear) at the
    corresponding positions src (B, P, 2) of view a's frame (normalised, from the warp). Position i's
    positive is a's descriptor at src[:, i]; its negatives are a's descriptors at the other P - 1
    positions of the same image. Unit vectors in, mean cross-entropy of (B, P, P) logits / t out."""
    pos = F.grid_sample(za, src[:, :, None].to(za.dtype), mode="bilinear", align_corners=True)  # (B, D, P, 1)
    pos = F.normalize(pos[..., 0].transpose(1, 2).float(), dim=-1)  # (B, P, D)
    logits = zb.float() @ pos.transpose(1, 2) / t  # (B, P, P): row i against a's P positions
    labels = torch.arange(zb.shape[1], device=zb.device).expand(zb.shape[0], -1)  # (B, P)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten())


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, m: float) -> None:
    """Every parameter of `key` <- m * key + (1 - m) * query (the same architecture); buffers (BN
    running statistics) are the key encoder's own, as in MoCo."""
    for pk, pq in zip(key.parameters(), query.parameters(), strict=True):
        pk.mul_(m).add_(pq.detach(), alpha=1.0 - m)


@torch.no_grad()
def enqueue(queue: Tensor, ptr: Tensor, keys: Tensor) -> None:
    """Write keys (B, D) into the queue (D, N) as columns ptr, ptr + 1, ... (mod N), replacing the
    oldest, and advance the pointer (a 0-d long tensor) by B (mod N). Needs B <= N."""
    b, n = keys.shape[0], queue.shape[1]
    if b > n:
        raise ValueError(f"a batch of {b} keys does not fit a queue of nce_k={n}: use nce_k >= the batch")
    idx = (ptr + torch.arange(b, device=queue.device)) % n  # (B,) wraps at the end
    queue[:, idx] = keys.T.to(queue.dtype)
    ptr.copy_((ptr + b) % n)


def random_resized_crop(b: int, *, scale: tuple[float, float] = (0.2, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        flip: bool = True, device=None, generator: torch.Generator | None = None) -> Tensor:
    """torchvision's RandomResizedCrop (area fraction in `scale`, aspect ratio in `ratio`, log-uniform)
    and a horizontal flip with probability 1/2, as sampling affines (B, 2, 3) in the `ops.warp`
    convention: output point p shows input point A p + t. The crop stays inside the image."""
    u = torch.rand(b, 5, device=device, generator=generator)  # (B, 5) in [0, 1]
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    w, h = (area * r).sqrt().clamp(max=1.0), (area / r).sqrt().clamp(max=1.0)  # side fractions
    cx, cy = (u[:, 2] * 2 - 1) * (1 - w), (u[:, 3] * 2 - 1) * (1 - h)  # centres keeping the crop inside
    sx = torch.where(u[:, 4] < 0.5, -w, w) if flip else w  # a negative x scale mirrors the crop
    zero = torch.zeros_like(w)
    return torch.stack([torch.stack([sx, zero, cx], -1), torch.stack([zero, h, cy], -1)], 1)


# AlexNet's PCA lighting (Krizhevsky et al. 2012): eigenvalues and eigenvectors of ImageNet's RGB covariance
_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


def lighting(images: Tensor, std: float, generator: torch.Generator | None = None) -> Tensor:
    """Images (B, 3, H, W) plus, per image, the RGB offset eigvec @ (alpha * eigval), alpha ~ N(0, std^2)
    (the card's "AlexNet PCA lighting noise", sigma 0.1). Not clamped, as in the reference."""
    if std <= 0:
        return images
    alpha = torch.randn(images.shape[0], 3, device=images.device, generator=generator) * std  # (B, 3)
    rgb = (alpha * _EIGVAL.to(images.device)) @ _EIGVEC.to(images.device).T  # (B, 3)
    return images + rgb[:, :, None, None].to(images.dtype)
