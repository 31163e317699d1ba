"""What every data source yields, and how sources report bad input.

A source is a small class that reads one data set's *official* layout and iterates `Sample`s
with keypoints in pixels of the original image. `data.store.write_store` turns any source into
the workbook's one HDF5 format.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image


class BadInputError(ValueError):
    """An input file, line or value that cannot be used; the message names where."""


@dataclass
class SourceInfo:
    """Data-set facts stored as attributes beside the images."""

    dataset: str
    keypoint_names: list[str]
    skeleton: list[tuple[int, int]] = field(default_factory=list)  # ground-truth edges, for drawing
    # How errors are normalised: "interocular:i,j" | "image_size" | "bbox".
    normalisation: str = "image_size"


@dataclass
class Sample:
    name: str  # path relative to the source root, or a frame id
    image: np.ndarray  # (H, W, 3) uint8
    keypoints: np.ndarray  # (K, 3) float32: x, y, visible (pixels of `image`)
    box: np.ndarray | None = None  # (4,) x0, y0, x1, y1 of the object, pixels; None = whole image


class Problems:
    """Collects bad inputs: raises at once (`on_bad="raise"`) or records and reports them ("skip")."""

    def __init__(self, on_bad: str = "raise"):
        if on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
        self.on_bad = on_bad
        self.skipped: list[str] = []

    def __call__(self, where: str, reason: str) -> None:
        msg = f"{where}: {reason}"
        if self.on_bad == "raise":
            raise BadInputError(msg)
        self.skipped.append(msg)

    def report(self, what: str) -> None:
        if self.skipped:
            shown = "\n  ".join(self.skipped[:20])
            more = f"\n  ... and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
            warnings.warn(f"{what}: skipped {len(self.skipped)} bad input(s):\n  {shown}{more}", stacklevel=3)


def load_image(path: Path, problems: Problems) -> np.ndarray | None:
    """RGB uint8 `(H, W, 3)`, or None after reporting a missing / unreadable file."""
    if not path.is_file():
        problems(str(path), "image file not found")
        return None
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I"):  # 16- or 32-bit integer grey: PIL's convert("RGB") clips it to white
                a = np.asarray(im, dtype=np.float64)
                full = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
                grey = np.clip(np.rint(a * (255.0 / full)), 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # PIL raises several types for corrupt files
        problems(str(path), f"unreadable image ({type(e).__name__}: {e})")
        return None


def check_keypoints(kp: np.ndarray, where: str, problems: Problems) -> bool:
    """Visible keypoints must be finite; invisible ones may be NaN (they are zeroed)."""
    vis = kp[:, 2] > 0
    if not np.isfinite(kp[vis, :2]).all():
        problems(where, "non-finite keypoint coordinates")
        return False
    kp[~vis, :2] = np.nan_to_num(kp[~vis, :2])
    return True


KEYPOINT_MARGIN = 0.5  # a visible keypoint may lie outside its image by at most this share of the image's size


def check_bounds(sample: Sample, problems: Problems) -> bool:
    """Visible keypoints lie on their image, give or take `KEYPOINT_MARGIN` of its size (annotations far
    outside, e.g. x = 1e6 on an 80-px face, are errors in the annotation, never stored)."""
    h, w = sample.image.shape[:2]
    kp = sample.keypoints
    vis = kp[:, 2] > 0
    lo = -KEYPOINT_MARGIN * np.array([w, h])
    hi = (1 + KEYPOINT_MARGIN) * np.array([w, h])
    out = vis & ((kp[:, :2] < lo) | (kp[:, :2] > hi)).any(1)
    if out.any():
        j = int(np.flatnonzero(out)[0])
        problems(sample.name, f"visible keypoint {j} at ({kp[j, 0]:g}, {kp[j, 1]:g}) lies outside the {w} x {h} "
                 f"image by more than {KEYPOINT_MARGIN:.0%} of its size ({int(out.sum())} such keypoint(s))")
        return False
    return True


FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_floats(fields: list[str], where: str, problems: Problems) -> np.ndarray | None:
    """The fields as float32, or None after reporting one that is not a number or a number beyond float32's
    range (the cast would silently make it inf; `inf` and `nan` written as such are kept)."""
    try:
        values = [float(f) for f in fields]
    except ValueError as e:
        problems(where, f"not a number ({e})")
        return None
    with np.errstate(over="ignore"):
        out = np.asarray(values, dtype=np.float32)
    for f, v in zip(fields, out):
        if np.isinf(v) and f.strip().lower().lstrip("+-") not in ("inf", "infinity"):
            problems(where, f"{f} is beyond the float32 range (+-{FLOAT32_MAX:.4g})")
            return None
    return out


def float32_trouble(a: np.ndarray) -> str | None:
    """Why the array `a` (e.g. read from a .mat file) cannot become float32 unchanged, or None: values that are
    not real numbers (text, cells, complex: the cast fails or drops the imaginary part) or finite values beyond
    float32's range (the cast silently makes them inf)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        return f"holds {a.dtype} values, expected real numbers"
    if a.dtype.kind == "f" and a.dtype.itemsize > 4:
        with np.errstate(over="ignore"):
            lost = np.isinf(a.astype(np.float32)) & np.isfinite(a)
        if lost.any():
            return f"holds {a[lost].flat[0]:g}, beyond the float32 range (+-{FLOAT32_MAX:.4g})"
    return None


class Source:
    """Base of the sources: `info`, `__len__`, `__iter__` over `Sample`s, and `problems`."""

    info: SourceInfo
    problems: Problems

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        raise NotImplementedError
