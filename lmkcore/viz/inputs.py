"""What the inspector and the figures read: images (a store, 'procedural' or a plain image folder)
and checkpoints (files, run directories, or everything under a runs directory).

Every data set here yields the items of `lmkcore.data` (image `(3, R, R)` in [0, 1], index) and,
where annotated, keypoints `(L, 2)` normalised, visible `(L,)`, box `(4,)` pixels. A folder of
images has no annotations: its items carry only image, index and name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..data import LandmarkStore, ProceduralFigures, SourceInfo, open_dataset
from ..methods import Method

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def workbook_path(path) -> Path:
    """Relative paths as given, except in the workbook's `notebooks/` folder (a JupyterLab kernel's
    working directory), where they are taken from the workbook root, as papermill runs them."""
    p, cwd = Path(path), Path.cwd()
    if p.is_absolute() or cwd.name != "notebooks" or not (cwd.parent / "lmkcore").is_dir():
        return p
    return cwd.parent / p


# data

class ImageFolder(Dataset):
    """Every image under `root` (sorted, recursive), resized to `resolution` x `resolution`."""

    def __init__(self, root: str | Path, resolution: int = 64):
        self.root = Path(root)
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {self.root}")
        self.resolution = resolution
        self.info = SourceInfo(self.root.name, [], [], "image_size")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        with Image.open(self.files[i]) as im:
            im = im.convert("RGB").resize((self.resolution, self.resolution), Image.Resampling.BILINEAR)
        img = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div_(255.0)
        return {"image": img, "index": i, "name": str(self.files[i].relative_to(self.root))}


class InMemory(Dataset):
    """Items `indices` of a data set, read once and kept (same `info`); item `index` stays the original."""

    def __init__(self, data: Dataset, indices):
        self.items = [data[int(i)] for i in indices]
        self.info = data.info
        self.resolution = int(self.items[0]["image"].shape[-1]) if self.items else 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def open_images(data: str, split: str | None = None, resolution: int = 64) -> Dataset:
    """'procedural', a store (.h5 file) or a folder of images (its `split` sub-folder if present)."""
    if data == "procedural":
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
        return [str(f.relative_to(dataset.root)) for f in dataset.files]
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


# checkpoints

@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file and the label it is shown under (`run@step`)."""

    path: Path
    label: str
    step: int | None = None


def _snapshot_step(path: Path) -> int | None:
    m = re.fullmatch(r"model_(\d+)\.pt", path.name)
    return int(m.group(1)) if m else None


def run_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """The snapshots of one run, oldest first (`model_<step>.pt`; `last.pt` when there are none).

    The trainer writes `last.pt` and the newest snapshot together, so the newest snapshot stands
    for `last.pt` and each state is listed once."""
    run_dir = Path(run_dir)
    snaps = sorted((s, p) for p in run_dir.glob("model_*.pt") if (s := _snapshot_step(p)) is not None)
    if snaps:
        return [Checkpoint(p, f"{run_dir.name}@{s}", s) for s, p in snaps]
    last = run_dir / "last.pt"
    return [Checkpoint(last, f"{run_dir.name}@last")] if last.is_file() else []


def find_checkpoints(runs_dir: str | Path) -> list[Checkpoint]:
    """Every run's snapshots under `runs_dir`, newest run first."""
    root = workbook_path(runs_dir)
    if not root.is_dir():
        return []
    runs = {p.parent for p in root.rglob("*.pt") if p.name == "last.pt" or _snapshot_step(p) is not None}
    runs = sorted(runs, key=lambda r: max(p.stat().st_mtime for p in r.glob("*.pt")), reverse=True)
    return [c for r in runs for c in run_checkpoints(r)]


def resolve_checkpoints(spec, runs_dir: str | Path = "runs") -> tuple[list[Checkpoint], list[Checkpoint]]:
    """(available, selected) from a spec: "" (the newest under `runs_dir`; all of them available),
    "all", or comma-separated checkpoint files / run directories (a run directory selects its newest
    snapshot and makes its earlier ones available)."""
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(s) for s in spec)
    spec = (spec or "").strip()
    found = find_checkpoints(runs_dir)
    if spec == "":
        if not found:
            return [], []
        newest_run = found[0].path.parent
        return found, [run_checkpoints(newest_run)[-1]]
    if spec == "all":
        return found, list(found)
    available, selected = [], []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        p = workbook_path(part)
        if p.is_dir():
            cks = run_checkpoints(p)
            if not cks:
                raise FileNotFoundError(f"no checkpoints (last.pt, model_*.pt) in {p}")
            available += cks
            selected.append(cks[-1])
        elif p.is_file():
            s = _snapshot_step(p)
            ck = Checkpoint(p, f"{p.parent.name}@{s if s is not None else p.stem}", s)
            available.append(ck)
            selected.append(ck)
        else:
            raise FileNotFoundError(f"checkpoint {part!r} is neither a file nor a run directory")
    seen, unique = set(), []
    for c in available:
        if c.label not in seen:
            seen.add(c.label)
            unique.append(c)
    return unique, selected


def method_resolution(method: Method, default: int = 64) -> int:
    """The image size a method was trained on (its checkpoint's, else its config's `resolution`)."""
    info = getattr(method, "checkpoint_info", None) or {}
    return int(info.get("resolution") or getattr(method.config, "resolution", default) or default)


def untrained_label(method: Method) -> str:
    return f"untrained {method.name} k{method.n_keypoints}"


def method_label(method: Method) -> str:
    """`run@step` for a loaded checkpoint, else "untrained <name> k<K>"."""
    info = getattr(method, "checkpoint_info", None)
    return f"{info.get('run')}@{info.get('step')}" if info else untrained_label(method)
