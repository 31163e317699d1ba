"""The workbook's one on-disk format: an HDF5 store, its writer and its torch Dataset.

Layout (one file per data set and resolution):
    images      uint8   (N, R, R, 3)
    keypoints   float32 (N, K, 3)   x, y, visible, in pixels of the stored image
    boxes       float32 (N, 4)      x0, y0, x1, y1 of the object in the stored image
    names       str     (N,)
    splits/<s>  int64   indices of split s (e.g. fit, val)
    clips       int32   (N,) the clip (video) of each frame, numbered in order of appearance; only when the
                        source says which clip a sample is from (`clip_of(name)`, frame-folder sources)
    clip_names  str     the clips' names, indexed by `clips`
    attrs: dataset, keypoint_names, skeleton, normalisation, resolution (JSON where not scalar)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .source import Sample, Source, SourceInfo


def square_around(box: np.ndarray, margin: float) -> tuple[float, float, float]:
    """Square (x0, y0, side), continuous coordinates, centred on a pixel box, enlarged by margin."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + 2.0 * margin)
    return (x0 + x1) / 2.0 + 0.5 - side / 2.0, (y0 + y1) / 2.0 + 0.5 - side / 2.0, side


def resample(sample: Sample, resolution: int, crop: str = "full", margin: float = 0.1) -> Sample:
    """Crop / resize one sample to `resolution` x `resolution`, moving keypoints and box with it.

    crop="full": the whole image resized (non-uniformly if not square), as AutoLink does.
    crop="box": a square of side max(box) * (1 + 2 margin) centred on the box, padded with black.
    """
    if crop not in ("full", "box"):
        raise ValueError(f"crop must be 'full' or 'box', got {crop!r}")
    h, w = sample.image.shape[:2]
    if crop == "box" and sample.box is not None:
        x0, y0, side = square_around(sample.box, margin)
        extent, sx, sy = (x0, y0, x0 + side, y0 + side), resolution / side, resolution / side
    else:
        x0, y0 = 0.0, 0.0
        extent, sx, sy = (0, 0, w, h), resolution / w, resolution / h
    im = Image.fromarray(sample.image).transform(
        (resolution, resolution), Image.Transform.EXTENT, extent, resample=Image.Resampling.BILINEAR)
    kp = sample.keypoints.astype(np.float32).copy()
    # pixel centres sit at +0.5 in continuous coordinates
    kp[:, 0] = (kp[:, 0] + 0.5 - x0) * sx - 0.5
    kp[:, 1] = (kp[:, 1] + 0.5 - y0) * sy - 0.5
    box = sample.box if sample.box is not None else np.array([0, 0, w - 1, h - 1], np.float32)
    box = np.array([(box[0] + 0.5 - x0) * sx - 0.5, (box[1] + 0.5 - y0) * sy - 0.5,
                    (box[2] + 0.5 - x0) * sx - 0.5, (box[3] + 0.5 - y0) * sy - 0.5], np.float32)
    return Sample(sample.name, np.asarray(im), kp, box)


def write_store(path: str | os.PathLike, source: Source | Iterable[Sample], resolution: int, *,
                info: SourceInfo | None = None, crop: str = "full", margin: float = 0.1,
                splits: dict[str, list[str]] | None = None, overwrite: bool = False) -> Path:
    """Convert any source to a store at `path`; never overwrites unless `overwrite=True`.

    splits: name lists per split; every name must be in the source (else an error naming it).
    """
    path = Path(path)
    info = info or source.info
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    r = resolution
    try:
        _write(tmp, source, info, r, crop, margin, splits)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, (FileNotFoundError, PermissionError)) and e.filename != str(tmp):
            raise  # a source's own file, already named
        # a full disk, a lost mount: name the store, leave no partial file behind
        raise OSError(e.errno, f"{e.strerror or e} while writing {path} (the partial file was removed)") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def _write(tmp: Path, source, info: SourceInfo, r: int, crop: str, margin: float, splits) -> None:
    n_hint = len(source) if hasattr(source, "__len__") else 0
    k = len(info.keypoint_names)
    path = tmp.with_name(tmp.name[: -len(".partial")])
    with h5py.File(tmp, "w") as f:
        images = f.create_dataset("images", (n_hint, r, r, 3), np.uint8, maxshape=(None, r, r, 3),
                                  chunks=(1, r, r, 3))
        kps = f.create_dataset("keypoints", (n_hint, k, 3), np.float32, maxshape=(None, k, 3))
        boxes = f.create_dataset("boxes", (n_hint, 4), np.float32, maxshape=(None, 4))
        names: list[str] = []
        for i, s in enumerate(source):
            if s.keypoints.shape != (k, 3):
                raise ValueError(f"{s.name}: keypoints of shape {s.keypoints.shape}, expected {(k, 3)}")
            if i >= images.shape[0]:
                for d in (images, kps, boxes):
                    d.resize(max(2 * i, 16), axis=0)
            s = resample(s, r, crop, margin)
            images[i], kps[i], boxes[i] = s.image, s.keypoints, s.box
            names.append(s.name)
        n = len(names)
        if n == 0:
            raise ValueError(f"no samples to write to {path} (every input was bad or the source is empty)")
        for d in (images, kps, boxes):
            d.resize(n, axis=0)
        f.create_dataset("names", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
        clip_of = getattr(source, "clip_of", None)
        if clip_of is not None:  # 4 bytes a frame: which pairs of frames share a clip (data.pairs.FramePairs)
            ids = {c: i for i, c in enumerate(dict.fromkeys(clip_of(n) for n in names))}
            f.create_dataset("clips", data=np.array([ids[clip_of(n)] for n in names], np.int32))
            f.create_dataset("clip_names", data=np.array(list(ids), dtype=object), dtype=h5py.string_dtype())
        index = {name: i for i, name in enumerate(names)}
        for split, members in (splits or {}).items():
            missing = [m for m in members if m not in index]
            if missing:
                raise ValueError(f"split {split!r} names {len(missing)} image(s) not in the source, "
                                 f"e.g. {missing[:3]}")
            f.create_dataset(f"splits/{split}", data=np.array([index[m] for m in members], np.int64))
        f.attrs.update(dataset=info.dataset, keypoint_names=json.dumps(info.keypoint_names),
                       skeleton=json.dumps([list(e) for e in info.skeleton]),
                       normalisation=info.normalisation, resolution=r)


class StoreError(ValueError):
    """A store that is not what `write_store` writes; the message names the file and what is wrong."""


ATTRS = ("dataset", "keypoint_names", "skeleton", "normalisation", "resolution")


def open_store(path: str | os.PathLike) -> h5py.File:
    """The store at `path` opened for reading, or an error naming it (missing, truncated, not HDF5)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no store at {path}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"{path}: not a readable HDF5 store ({e}); write it again with "
                         "lmkcore.data.prepare (notebook 01_prepare_data)") from None


def damaged(path, e: Exception) -> StoreError:
    """The error for a library error met while reading the store at `path` (h5py raises KeyError, OSError,
    RuntimeError, ... for a damaged file)."""
    return StoreError(f"{path}: damaged store ({type(e).__name__}: {e}); write it again with lmkcore.data.prepare "
                      "(notebook 01_prepare_data)")


def validate(f: h5py.File, path) -> None:
    """The layout of the module docstring: datasets, shapes, dtypes, attributes and counts agree (a float store
    would be divided by 255 twice; a wrong `resolution` would normalise keypoints by the wrong size)."""
    try:
        _validate(f, path)
    except StoreError:
        raise
    except Exception as e:
        raise damaged(path, e) from None


def _validate(f: h5py.File, path) -> None:
    def bad(what: str):
        return StoreError(f"{path}: {what}; not a store written by lmkcore.data.write_store")

    missing = [k for k in ("images", "keypoints", "boxes", "names") if k not in f]
    if missing:
        raise bad(f"no dataset {missing}")
    lost = [a for a in ATTRS if a not in f.attrs]
    if lost:
        raise bad(f"no attribute {lost}")
    im, kp, box = f["images"], f["keypoints"], f["boxes"]
    r = int(f.attrs["resolution"])
    if im.dtype != np.uint8 or im.ndim != 4 or im.shape[1:] != (r, r, 3):
        raise bad(f"images are {im.dtype} {im.shape}, expected uint8 (N, {r}, {r}, 3) (attribute resolution = {r})")
    n = im.shape[0]
    try:
        names, skeleton = json.loads(f.attrs["keypoint_names"]), json.loads(f.attrs["skeleton"])
    except (TypeError, json.JSONDecodeError) as e:
        raise bad(f"attribute keypoint_names or skeleton is not JSON ({e})") from None
    if not (isinstance(names, list) and all(isinstance(x, str) for x in names)):
        raise bad(f"attribute keypoint_names is not a list of names ({str(names)[:60]})")
    pairs = isinstance(skeleton, list) and all(
        isinstance(e, list) and len(e) == 2 and all(isinstance(j, int) for j in e) for e in skeleton)
    if not pairs:
        raise bad(f"attribute skeleton is not a list of keypoint pairs ({str(skeleton)[:60]})")
    k = len(names)
    if kp.dtype.kind != "f" or box.dtype.kind != "f":
        raise bad(f"keypoints are {kp.dtype}, boxes {box.dtype}, expected float32")
    if kp.shape != (n, k, 3) or box.shape != (n, 4) or f["names"].shape != (n,):
        raise bad(f"counts disagree: images {im.shape}, keypoints {kp.shape} (expected ({n}, {k}, 3)), boxes "
                  f"{box.shape}, names {f['names'].shape}")
    for name, split in (f["splits"].items() if "splits" in f else []):
        if not isinstance(split, h5py.Dataset) or split.ndim != 1 or split.dtype.kind not in "iu":
            raise bad(f"split {name!r} is not a list of row numbers ({split})")
        idx = split[()]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise bad(f"split {name!r} indexes rows outside 0..{n - 1}")


def store_info(path: str | os.PathLike) -> SourceInfo:
    with open_store(path) as f:
        validate(f, path)
        a = f.attrs
        return SourceInfo(str(a["dataset"]), json.loads(a["keypoint_names"]),
                          [tuple(e) for e in json.loads(a["skeleton"])], str(a["normalisation"]))


class LandmarkStore(Dataset):
    """Reads a store; the HDF5 handle opens lazily in each DataLoader worker.

    Items: image float (3, R, R) in [0, 1], keypoints (K, 2) normalised (x, y), visible (K,) bool,
    box (4,) pixels, index (the item's position in this data set: 0 .. len - 1), row (its row in the file).
    """

    def __init__(self, path: str | os.PathLike, split: str | None = None, indices=None):
        self.path = Path(path)
        self._file = None
        with open_store(self.path) as f:
            validate(f, self.path)
            n = f["images"].shape[0]
            self.resolution = int(f.attrs["resolution"])
            if split is not None:
                if f"splits/{split}" not in f:
                    have = sorted(f["splits"]) if "splits" in f else []
                    raise KeyError(f"{self.path} has no split {split!r} (has {have})")
                try:
                    base = f[f"splits/{split}"][()]
                except Exception as e:
                    raise damaged(self.path, e) from None
            else:
                base = np.arange(n)
        self.indices = base if indices is None else base[np.asarray(indices)]
        self.info = store_info(self.path)
        self.split = split

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot cross processes
        return state

    @property
    def file(self) -> h5py.File:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    def __len__(self) -> int:
        return len(self.indices)

    def arrays(self, name: str) -> np.ndarray:
        """A whole per-sample array (keypoints, boxes, names) for this split, in item order."""
        try:
            data = self.file[name]
            if data.size == 0:  # e.g. keypoints of an unlabelled store (K = 0): h5py cannot index those
                return np.zeros((len(self.indices),) + data.shape[1:], data.dtype)
            out = data[np.sort(self.indices)] if len(self.indices) else data[:0]
        except Exception as e:
            raise damaged(self.path, e) from None
        order = np.argsort(self.indices)
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        out = out[inv]
        return np.array([x.decode() if isinstance(x, bytes) else x for x in out]) if name == "names" else out

    def clips(self) -> np.ndarray | None:
        """`(len,)` the clip number of each item (frames of one video share one), or None when the store
        keeps no clips (it was not written from a frame-folder source)."""
        if "clips" not in self.file:
            return None
        return self.file["clips"][()][np.asarray(self.indices, np.int64)]

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.path}: item {i} of {len(self)}")
        i = i % len(self)
        j = int(self.indices[i])
        try:
            f = self.file
            image, keypoints, box = f["images"][j], f["keypoints"][j], f["boxes"][j]
        except Exception as e:
            raise damaged(self.path, e) from None
        img = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        kp = torch.from_numpy(keypoints)
        r = self.resolution
        return {"image": img, "keypoints": kp[:, :2] / (r - 1) * 2.0 - 1.0, "visible": kp[:, 2] > 0,
                "box": torch.from_numpy(box), "index": i, "row": j}
