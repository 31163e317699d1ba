"""What the protocol consumes, gathered: the annotations of a data set, the keypoints a method
discovers on it, and the test set a report names (`open_test_set`).

Data sets are `LandmarkStore`s or `ProceduralFigures` (items: image (3, R, R) in [0, 1], keypoints
(J, 2) normalised [-1, 1], visible (J,), box (4,) pixels) or anything with the same items and an
`info` (`SourceInfo`). Annotations come back in [0, 1] (`ops.coords.norm_to_unit`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from ..ops.coords import norm_to_unit
from .regression import one_thread


@dataclass
class Annotations:
    """Ground truth of N items: keypoints (N, J, 2) in [0, 1], visible (N, J), boxes (N, 4) pixels."""

    keypoints: Tensor
    visible: Tensor
    boxes: Tensor
    indices: Tensor  # (N,) item positions in the data set
    resolution: int
    normalisation: str
    dataset: str
    names: list[str] = field(default_factory=list)  # landmark names

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, idx: Tensor) -> "Annotations":
        return Annotations(self.keypoints[idx], self.visible[idx], self.boxes[idx], self.indices[idx],
                           self.resolution, self.normalisation, self.dataset, self.names)


def _info(data) -> tuple[str, str, list[str], int]:
    info = data.info
    res = getattr(data, "resolution", None) or getattr(data, "size", None) or int(data[0]["image"].shape[-1])
    return info.normalisation, info.dataset, list(info.keypoint_names), int(res)


def _from_items(items: dict, indices: Tensor, data) -> Annotations:
    spec, name, names, res = _info(data)
    return Annotations(norm_to_unit(items["keypoints"].double()), items["visible"].bool(),
                       items["box"].double(), indices, res, spec, name, names)


def annotations(data, indices=None) -> Annotations:
    """The annotations of a data set (or of `indices` of it); stores are read without images."""
    if isinstance(data, Annotations):
        return data if indices is None else data.subset(torch.as_tensor(indices))
    idx = torch.arange(len(data)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    if hasattr(data, "arrays"):  # LandmarkStore: whole arrays, no image decoding
        kp = torch.from_numpy(data.arrays("keypoints"))[idx].double()  # (N, J, 3) pixels
        spec, name, names, res = _info(data)
        return Annotations(kp[..., :2] / (res - 1), kp[..., 2] > 0,
                           torch.from_numpy(data.arrays("boxes"))[idx].double(), idx, res, spec, name, names)
    return discover(None, data, idx)[1]


def discover(method, data, indices=None, *, batch_size: int = 64, device="cpu") -> tuple[Tensor | None, Annotations]:
    """Keypoints `(N, K, 2)` normalised [-1, 1] of `method` (None: annotations only) and the annotations."""
    reads = {} if method is None else {"pred": method.keypoints}
    out, ann = run_method(method, data, indices, reads, batch_size=batch_size, device=device)
    return out.get("pred"), ann


def run_method(method, data, indices=None, reads: dict | None = None, *, batch_size: int = 64,
               device="cpu") -> tuple[dict[str, Tensor | None], Annotations]:
    """Run `method` (eval mode, no gradients) over the items at `indices`, `batch_size` images at a time.

    reads: {name: function of a (B, 3, H, W) image batch -> (B, ...) tensor, or None where the
    method does not offer it} (e.g. `method.keypoints`, `method.confidence`, `method.features`).
    Returns ({name: the batches concatenated on the CPU, float32, or None}, the annotations): one pass
    over the images whatever is read (frozen features are computed once).
    """
    idx = torch.arange(len(data)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
    loader = DataLoader(Subset(data, idx.tolist()), batch_size=batch_size, num_workers=0)
    reads = reads or {}
    out: dict[str, list] = {"keypoints": [], "visible": [], "box": [], **{k: [] for k in reads}}
    if method is not None:
        method.eval().to(device)
    batches = iter(loader)
    with torch.no_grad():
        while True:
            with one_thread():  # item loading is many tiny ops
                batch = next(batches, None)
            if batch is None:
                break
            for k in ("keypoints", "visible", "box"):
                out[k].append(batch[k])
            images = batch["image"].to(device) if reads else None
            for k, read in reads.items():
                v = read(images)
                out[k].append(None if v is None else v.float().cpu())
    ann = _from_items({k: torch.cat(out[k]) for k in ("keypoints", "visible", "box")}, idx, data)
    got = {k: None if any(v is None for v in out[k]) else torch.cat(out[k]) for k in reads}
    return got, ann


def check_keypoints(kp: Tensor, ann: Annotations, what: str) -> Tensor:
    """`(N, K, 2)` keypoints matching `ann`, finite; raises naming the bad samples otherwise."""
    if kp.dim() != 3 or kp.shape[-1] != 2:
        raise ValueError(f"{what} keypoints must be (N, K, 2), got {tuple(kp.shape)}")
    if kp.shape[0] != len(ann):
        raise ValueError(f"{what}: {kp.shape[0]} keypoint sets but {len(ann)} annotated images")
    bad = ~torch.isfinite(kp).all(-1).all(-1)
    if bad.any():
        raise ValueError(f"{what}: non-finite keypoints in {int(bad.sum())} of {len(ann)} images, item indices "
                         f"{ann.indices[bad][:10].tolist()}{' ...' if bad.sum() > 10 else ''}")
    return kp


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
