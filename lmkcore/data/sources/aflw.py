"""AFLW with 5 landmarks, in the three layouts the unsupervised-landmark papers use.

`layout="aflw_m"` — DVE's `aflw-mtfl` archive (AFLW_M protocol: Thewlis et al. ICCV 2017 train
crops, TCDCN/MTFL test faces)::

    root/aflw_cropped/facedata_cropped.csv   header row; columns `set` (1 = train) and `crop_file`
                                             (image, relative to aflw_cropped/ or aflw_cropped/cropped/);
                                             columns 5-14 = x1 y1 x2 y2 ... x5 y5 (150x150 crops)
    root/aflw_cropped/cropped/*.jpg
    root/MTFL/testing.txt                    MTFL listing of the 2,995 AFLW test faces (see `mtfl`)
    root/MTFL/AFLW/*.jpg

`layout="aflw_r"` — DVE's `aflw-recrop` archive (AFLW_R)::

    root/aflw_{train,test}_images.txt        one image a line, relative to root/output/
    root/aflw_{train,test}_keypoints.mat     `gt` (N, 5, 2) stored as (y, x); `hw` (N, 2) image sizes
    root/output/0/image13759_58891.jpg ...

`layout="listing"` — any MTFL-format listing (`listing`, default testing.txt), e.g. the AFLW test
listing of the workbook, parsed exactly as `MTFL` does.

Assumptions (the public code is the only documentation): the csv's column names other than `set`
and `crop_file` are unknown, so the landmark columns are taken by position as DVE does; AFLW_M
coordinates are MATLAB 1-based and shifted by -1 (as DVE does, for both halves); AFLW_R and plain
listings are kept as written. `one_based` overrides the shift. `layout="auto"` picks aflw_m when
`aflw_cropped/` exists, aflw_r when `aflw_train_images.txt` exists, else listing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ..source import (
    BadInputError,
    Sample,
    SourceInfo,
    check_keypoints,
    load_image,
    parse_floats,
)
from .common import ListingSource, csv_rows, need_file, text_lines, with_visibility
from .mtfl import KEYPOINTS, SKELETON, parse_mtfl_listing


def _detect(root: Path) -> str:
    if (root / "aflw_cropped").is_dir():
        return "aflw_m"
    if (root / "aflw_train_images.txt").is_file():
        return "aflw_r"
    return "listing"


class AFLW(ListingSource):
    """AFLW faces, 5 landmarks; `split` = "train" | "test" (ignored for layout="listing")."""

    def __init__(self, root, split: str = "train", *, layout: str = "auto", listing: str | None = None,
                 one_based: bool | None = None, on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        self.layout = _detect(self.root) if layout == "auto" else layout
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.info = SourceInfo("aflw", KEYPOINTS, SKELETON, "interocular:0,1")
        shift = (self.layout == "aflw_m") if one_based is None else one_based
        if self.layout == "listing" or (self.layout == "aflw_m" and (split == "test" or listing)):
            default = "MTFL/testing.txt" if self.layout == "aflw_m" else "testing.txt"
            path = self.root / (listing or default)
            self.base = path.parent
            self.records = [(name, kp) for name, kp, _ in parse_mtfl_listing(path, self.problems, shift)]
        elif self.layout == "aflw_m":
            self.base = self.root / "aflw_cropped"
            self.records = self._read_csv(self.base / "facedata_cropped.csv", shift)
        elif self.layout == "aflw_r":
            self.base = self.root / "output"
            self.records = self._read_recrop(split, shift)
        else:
            raise ValueError(f"layout must be 'auto', 'aflw_m', 'aflw_r' or 'listing', got {layout!r}")
        self._listing_done()

    def _read_csv(self, path: Path, shift: bool) -> list:
        records = []
        header, rows = csv_rows(path, self.problems)
        if "set" not in header or "crop_file" not in header or len(header) < 14:
            raise BadInputError(f"{path}:1: header must have columns 'set' and 'crop_file' and 14 or more "
                                f"columns, got {header}")
        i_set, i_crop = header.index("set"), header.index("crop_file")
        for where, row in rows:
            if row[i_set].strip() != "1":
                continue  # not a training face
            values = parse_floats(row[4:14], where, self.problems)
            if values is None:
                continue
            kp = with_visibility(values.reshape(5, 2) - (1.0 if shift else 0.0))
            if check_keypoints(kp, where, self.problems):
                records.append((row[i_crop].strip().replace("\\", "/"), kp))
        return records

    def _read_recrop(self, split: str, shift: bool) -> list:
        names_file = self.root / f"aflw_{split}_images.txt"
        mat_file = need_file(self.root / f"aflw_{split}_keypoints.mat")
        names = [line for _, line in text_lines(names_file)]
        try:
            gt = np.asarray(scipy.io.loadmat(str(mat_file))["gt"], np.float32)
        except Exception as e:
            raise BadInputError(f"{mat_file}: cannot read matrix 'gt' ({type(e).__name__}: {e})") from e
        if gt.shape != (len(names), 5, 2):
            raise BadInputError(f"{mat_file}: 'gt' has shape {gt.shape}, expected ({len(names)}, 5, 2) "
                                f"for the {len(names)} images of {names_file.name}")
        records = []
        for i, (name, yx) in enumerate(zip(names, gt)):
            kp = with_visibility(yx[:, ::-1] - (1.0 if shift else 0.0))
            if check_keypoints(kp, f"{mat_file} (sample {i + 1})", self.problems):
                records.append((name, kp))
        return records

    def load(self, record) -> Sample | None:
        name, kp = record
        path = self.base / name
        if not path.is_file() and (self.base / "cropped" / name).is_file():
            path = self.base / "cropped" / name
        image = load_image(path, self.problems)
        if image is None:
            return None
        return Sample(name, image, kp.copy(), None)
