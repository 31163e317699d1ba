"""Helpers shared by the sources: reading listings, finding files, boxes, reporting.

Every source keeps the problems found while reading its annotation files in `__init__`
(`listing_problems`) and adds the ones found while loading images; `iterate` reports all of them
once, when the iteration ends (or is abandoned).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..source import BadInputError, Problems, Sample, Source, check_bounds, load_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def need_file(path: Path, what: str = "annotation file") -> Path:
    """An annotation file the source cannot do without: missing always raises (nothing to skip to)."""
    if not path.is_file():
        raise BadInputError(f"{path}: {what} not found")
    return path


def _find(root: Path, candidates: Iterable[str], what: str, exists) -> Path:
    candidates = list(candidates)
    for c in candidates:
        if exists(root / c):
            return root / c
    raise BadInputError(f"{root}: {what} not found (looked for {', '.join(candidates)})")


def find_file(root: Path, candidates: Iterable[str], what: str) -> Path:
    """The first of `candidates` (relative to root) that is a file, else an error listing them all."""
    return _find(root, candidates, what, Path.is_file)


def find_dir(root: Path, candidates: Iterable[str], what: str) -> Path:
    """The first of `candidates` (relative to root) that is a folder, else an error listing them all."""
    return _find(root, candidates, what, Path.is_dir)


def csv_rows(path: Path, problems: Problems) -> tuple[list[str], Iterator[tuple[str, list[str]]]]:
    """(header, iterator of (file:line, row)) of a CSV file; blank rows are skipped and rows with the
    wrong number of fields are reported to `problems`. `line` is the row's first line in the file (a quoted
    field may span lines); bytes that are not UTF-8 become U+FFFD, as in `text_lines`; a row the csv module
    cannot read (an unclosed or stray quote, a field over its size limit) is reported, and the rest of the file
    with it."""
    rows: list[tuple[int, list[str]]] = []
    broken = None
    with open(need_file(path), newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f, strict=True)  # strict: an unclosed or stray quote is an error, not a guess
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                broken = (f"{path}:{start}", f"unreadable CSV from this line on ({e})")
                break
            rows.append((start, row))
    header = rows[0][1] if rows else []
    if broken is not None and not rows:
        problems(*broken)

    def body():
        for no, row in rows[1:]:
            if not row:
                continue
            if len(row) != len(header):
                problems(f"{path}:{no}", f"expected {len(header)} fields, got {len(row)}")
                continue
            yield f"{path}:{no}", row
        if broken is not None and rows:
            problems(*broken)

    return header, body()


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped line) for the non-blank lines of a text file."""
    with open(need_file(path), encoding="utf-8-sig", errors="replace") as f:  # -sig: a leading BOM is no text
        for no, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield no, line


def box_of(kp: np.ndarray) -> np.ndarray | None:
    """Tight (x0, y0, x1, y1) of the visible keypoints, None when none is visible."""
    vis = kp[:, 2] > 0
    if not vis.any():
        return None
    xy = kp[vis, :2]
    return np.concatenate([xy.min(0), xy.max(0)]).astype(np.float32)


def sample_at(problems: Problems, path: Path, name: str, kp: np.ndarray, box: np.ndarray | None = None) -> Sample | None:
    """The image at `path` with its annotation (copied), or None once a bad image is reported."""
    image = load_image(path, problems)
    return None if image is None else Sample(name, image, kp.copy(), None if box is None else box.copy())


def xywh_box(x: float, y: float, w: float, h: float, offset: float = 0.0) -> np.ndarray:
    """A box given as top-left pixel + size in pixels -> (x0, y0, x1, y1) of first / last pixel."""
    x0, y0 = x - offset, y - offset
    return np.array([x0, y0, x0 + w - 1, y0 + h - 1], np.float32)


def natural_key(s: str) -> list:
    """Sort key that orders 'frame2' before 'frame10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


def with_visibility(xy: np.ndarray, visible: np.ndarray | float = 1.0) -> np.ndarray:
    """(K, 2) coordinates + visibility -> (K, 3) float32."""
    vis = np.broadcast_to(np.asarray(visible, np.float32), (len(xy),))
    return np.concatenate([np.asarray(xy, np.float32).reshape(-1, 2), vis[:, None]], 1).astype(np.float32)


class ListingSource(Source):
    """A source whose annotation is read eagerly into `self.records`; images load in `__iter__`.

    Subclasses set `info`, `root`, `records` (any objects) and implement `load(record)` ->
    `Sample | None` (None after reporting a problem via `self.problems`).
    """

    records: list
    root: Path

    def _start(self, on_bad: str) -> None:
        self.problems = Problems(on_bad)

    def _listing_done(self) -> None:
        """Call at the end of `__init__`: remembers the problems found in the annotation files."""
        self.listing_problems = list(self.problems.skipped)

    @property
    def names(self) -> list[str]:
        return [self.record_name(r) for r in self.records]

    def record_name(self, record) -> str:
        return record[0]

    def __len__(self) -> int:
        return len(self.records)

    def load(self, record) -> Sample | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        return iterate(self, self.records, self.load)


def iterate(source: Source, records: list, load: Callable[[object], Sample | None]) -> Iterator[Sample]:
    """Yield `load(r)` for each record; report the skipped inputs (listing + images) at the end."""
    source.problems.skipped = list(getattr(source, "listing_problems", []))
    try:
        for r in records:
            s = load(r)
            if s is not None and check_bounds(s, source.problems):
                yield s
    finally:
        source.problems.report(f"{source.info.dataset} ({getattr(source, 'root', '')})")
