"""What the inspector and the figures read: images (a store, 'procedural' or a plain image folder)
and checkpoints (files, run directories, or everything under a runs directory).

Every data set here yields the items of `lmkcore.data` (image `(3, R, R)` in [0, 1], index) and,
where annotated, keypoints `(L, 2)` normalised, visible `(L,)`, box `(4,)` pixels. A folder of
images has no annotations: its items carry only image, index and name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..checkpoint import method_resolution  # noqa: F401  (re-exported)
from ..data import PROCEDURAL, LandmarkStore, ProceduralFigures, SourceInfo, open_dataset
from ..data import InMemory  # noqa: F401  (re-exported)
from ..data.sources import Folder
from ..data.sources.common import IMAGE_EXTENSIONS
from ..methods import Method
from ..paths import workbook_path
from ..runs import Checkpoint, find_checkpoints, resolve_checkpoints, run_checkpoints  # noqa: F401  (re-exported)

# data

class ImageFolder(Dataset):
    """Every image of a plain folder, resized to `resolution` x `resolution`. The listing and the
    reading are the `Folder` source's (sorted, recursive, hidden files skipped; an unreadable image
    raises naming its file)."""

    def __init__(self, root: str | Path, resolution: int = 64):
        self.source = Folder(root)
        self.root, self.resolution = self.source.root, resolution
        if not self.source.records:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {self.root}")
        self.info = SourceInfo(self.root.name, [], [], "image_size")

    def __len__(self) -> int:
        return len(self.source.records)

    def __getitem__(self, i: int) -> dict:
        name = self.source.records[i]
        im = Image.fromarray(self.source.load(name).image)
        im = im.resize((self.resolution, self.resolution), Image.Resampling.BILINEAR)
        img = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div_(255.0)
        return {"image": img, "index": i, "name": name}


def open_images(data: str, split: str | None = None, resolution: int = 64) -> Dataset:
    """'procedural', a store (.h5 file) or a folder of images (its `split` sub-folder if present)."""
    if data in PROCEDURAL:
        return open_dataset(data, split=split, resolution=resolution)
    path = workbook_path(data)
    if path.is_dir():
        sub = path / split if split else None
        return ImageFolder(sub if sub is not None and sub.is_dir() else path, resolution)
    return open_dataset(str(path), split=split, resolution=resolution)


def has_annotations(dataset: Dataset) -> bool:
    return len(getattr(dataset.info, "keypoint_names", [])) > 0 and not isinstance(dataset, ImageFolder)


def item_names(dataset: Dataset) -> list[str]:
    """A name per item, for search: file names, store names, or the procedural figure ids."""
    if isinstance(dataset, ImageFolder):
        return list(dataset.source.records)
    if isinstance(dataset, LandmarkStore):
        return [str(n) for n in dataset.arrays("names")]
    if isinstance(dataset, ProceduralFigures):
        return [f"figure_{dataset.seed}_{i:06d}" for i in range(len(dataset))]
    return [str(i) for i in range(len(dataset))]


def batch(dataset: Dataset, indices) -> dict:
    """Items `indices` stacked: image `(B, 3, R, R)`, and keypoints / visible / box where annotated."""
    items = [dataset[int(i)] for i in indices]
    out = {"image": torch.stack([it["image"] for it in items]), "index": torch.as_tensor(list(indices))}
    for k in ("keypoints", "visible", "box"):
        if all(k in it for it in items):
            out[k] = torch.stack([torch.as_tensor(it[k]) for it in items])
    return out


def untrained_like(method: Method, seed: int = 0) -> Method:
    """A fresh copy of `method`'s class and config (random weights drawn under `seed`, the global
    RNG untouched), in eval mode: the untrained baseline of a checkpoint, whatever its method."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(method)(method.config)
    return fresh.eval()


def untrained_label(method: Method) -> str:
    return f"untrained {method.name} k{method.n_keypoints}"


def method_label(method: Method) -> str:
    """`run@step` for a loaded checkpoint, else "untrained <name> k<K>"."""
    info = getattr(method, "checkpoint_info", None)
    return f"{info.get('run')}@{info.get('step')}" if info else untrained_label(method)
