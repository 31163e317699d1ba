"""One call from a data set's official layout to a store: `prepare(dataset, source_root, out_path, ...)`.

It builds the data set's source, picks the crop the methods expect (people: person-centred squares
from the joints; birds / 300W: squares around the box; aligned faces and frames: the whole image),
writes the store and adds the saved fit / val splits where the repository has them (MTFL, LSPET).
A separate test set (`test_listing`, or `split="none"`) gets no splits: the whole store is the test
set. This is what the notebook `01_prepare_data` and the benchmark call.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from .procedural import PROCEDURAL, ProceduralSource
from .source import Source
from .sources import (
    AFLW,
    CUB,
    H36M,
    LSP,
    MAFL,
    MTFL,
    BBCPose,
    CelebA,
    DeepFashion,
    Folder,
    Frames,
    Pts300W,
)
from .sources.lsp import DEFAULT_MARGIN
from .splits import has_saved_split, saved_names, saved_split
from .store import write_store

DATASETS = ("mtfl", "lsp", "lspet", "celeba", "mafl", "aflw", "300w", "ls3d", "cub", "h36m", "frames",
            "deepfashion", "bbcpose", "folder", "procedural", "procedural-stick")
# (crop, margin) per data set when the caller gives none
CROPS = {"lsp": ("box", DEFAULT_MARGIN), "lspet": ("box", DEFAULT_MARGIN), "cub": ("box", 0.0),
         "300w": ("box", 0.2), "ls3d": ("box", 0.2), "bbcpose": ("box", 0.25)}


def default_data_root() -> Path:
    """`$LMK_DATA_ROOT`, else `../shared/data` beside the repository root."""
    env = os.environ.get("LMK_DATA_ROOT")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


LISTED = ("mtfl", "celeba", "mafl", "aflw", "deepfashion")  # the data sets that take `test_listing`


def make_source(dataset: str, source_root, *, test_listing: str | None = None, part: str = "train",
                on_bad: str = "raise", **options) -> Source:
    """The source of `dataset` at `source_root`.

    test_listing: a separate test listing (MTFL-format listing for mtfl / aflw, a name list for
    celeba / mafl, a csv for deepfashion), relative to source_root. part: "train" | "test" for the
    data sets with an official split inside one root (mafl, aflw, cub, deepfashion).
    """
    d = dataset.lower()
    if test_listing is not None and d not in LISTED:
        raise ValueError(f"{dataset}: test_listing is for {LISTED}; give the test folder as source_root "
                         f"and split='none'")
    root = Path(source_root) if source_root is not None else None
    if d == "mtfl":
        return MTFL(root, test_listing or "training.txt", on_bad=on_bad, **options)
    if d in ("lsp", "lspet"):
        return LSP(root, on_bad=on_bad, **options)  # info.dataset = the detected layout, lsp or lspet
    if d == "celeba":
        return CelebA(root, subset=test_listing, on_bad=on_bad, **options)
    if d == "mafl":
        return MAFL(root, test_listing or part, on_bad=on_bad, **options)
    if d == "aflw":
        if test_listing:
            return AFLW(root, "test", listing=test_listing, on_bad=on_bad, **options)
        return AFLW(root, part, on_bad=on_bad, **options)
    if d in ("300w", "ls3d"):
        return Pts300W(root, dataset=d, on_bad=on_bad, **options)
    if d == "cub":
        return CUB(root, part, on_bad=on_bad, **options)
    if d == "h36m":
        return H36M(root, on_bad=on_bad, **options)
    if d == "frames":
        return Frames(root, on_bad=on_bad, **options)
    if d == "deepfashion":
        return DeepFashion(root, part, listing=test_listing, on_bad=on_bad, **options)
    if d == "bbcpose":
        return BBCPose(root, on_bad=on_bad, **options)
    if d == "folder":
        return Folder(root, on_bad=on_bad, **options)
    if d in PROCEDURAL:
        return ProceduralSource(style=PROCEDURAL[d], **options)
    raise ValueError(f"unknown dataset {dataset!r}; one of {DATASETS}")


def prepare(dataset: str, source_root, out_path, resolution: int, split: str = "saved",
            crop: str | None = None, margin: float | None = None, overwrite: bool = False,
            on_bad: str = "raise", test_listing: str | None = None, **options) -> Path:
    """Write the store of `dataset` (official layout at `source_root`) to `out_path`; return its path.

    split="saved": add the repository's fit / val split when one exists for the data set (and this
    is not a separate test set); "none": no splits. crop / margin default per data set (`CROPS`,
    else the whole image). `options` go to `make_source` and the source's constructor (e.g.
    part="test" for CUB, aligned=False for CelebA, n=... for procedural).
    """
    if split not in ("saved", "none"):
        raise ValueError(f"split must be 'saved' or 'none', got {split!r}")
    d = dataset.lower()
    if d in PROCEDURAL:
        options.setdefault("size", resolution)
    source = make_source(d, source_root, test_listing=test_listing, on_bad=on_bad, **options)
    default_crop, default_margin = CROPS.get(d, ("full", 0.1))
    crop = crop or default_crop
    margin = default_margin if margin is None else margin
    path = write_store(out_path, source, resolution, crop=crop, margin=margin, overwrite=overwrite)
    key = source.info.dataset  # e.g. "lspet" when dataset="lsp" finds the LSPET layout
    is_test = test_listing is not None or options.get("part", "train") != "train"
    if split == "saved" and not is_test and has_saved_split(key):
        problems = getattr(source, "problems", None)
        _add_saved_split(path, key, skipped=list(problems.skipped) if problems is not None else [])
    return path


def _add_saved_split(path: Path, dataset: str, skipped: list[str]) -> None:
    """Add splits/fit and splits/val; saved names may be absent only as skipped bad inputs."""
    with h5py.File(path, "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["names"][()]]
        saved = saved_names(dataset)
        index = {n: i for i, n in enumerate(names)}
        lost = [n for n in saved if n not in index]
        # each skipped bad input removes at most one sample: more lost names means other data
        unexplained = lost if len(lost) > len(skipped) else []
        if unexplained:
            f.close()
            path.unlink()
            raise ValueError(f"{len(unexplained)} of the {len(saved)} names of the saved {dataset} "
                             f"validation split are not in the data (e.g. {unexplained[:3]}); is this a "
                             f"separate test set? use split='none'. Removed {path}.")
        if lost:
            warnings.warn(f"{path}: {len(lost)} validation image(s) of the saved {dataset} split were "
                          f"skipped as bad input ({lost[:5]}); validating on {len(saved) - len(lost)}",
                          stacklevel=3)
        for s, members in saved_split(dataset, names, missing="drop").items():
            f.create_dataset(f"splits/{s}", data=np.array([index[m] for m in members], np.int64))
