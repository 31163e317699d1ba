"""300W / LS3D: faces with 68 landmarks in `.pts` files beside the images.

Official layout (iBUG 300-W, Sagonas et al. 2013; LS3D-W, Bulat & Tzimiropoulos 2017)::

    root/**/image_0001.jpg      (or .png)
    root/**/image_0001.pts      version: 1
                                n_points: 68
                                {
                                x y          (68 lines)
                                }

Every `.pts` below root (recursively, sorted) is one face; its image is the file with the same stem
and an image extension. The points are MATLAB-style 1-based pixels (the iBUG convention) and are
shifted by -1 (`one_based=False` keeps them as written). All points are visible; `box` = landmark
extent. Error normalisation: "interocular:36,45" (outer eye corners, 0-based) for 300W, as DVE /
Cheng et al.; "bbox" (sqrt(w h) of the landmark box) for LS3D, as Mallis et al.
"""
from __future__ import annotations

from pathlib import Path

from ..source import (
    BadInputError,
    Sample,
    SourceInfo,
    check_keypoints,
    parse_floats,
)
from .common import IMAGE_EXTENSIONS, ListingSource, box_of, sample_at, text_lines, with_visibility

N_POINTS = 68
_EXTENSIONS = IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS)
KEYPOINTS = ([f"jaw_{i}" for i in range(17)] + [f"right_brow_{i}" for i in range(5)]
             + [f"left_brow_{i}" for i in range(5)] + [f"nose_{i}" for i in range(9)]
             + [f"right_eye_{i}" for i in range(6)] + [f"left_eye_{i}" for i in range(6)]
             + [f"mouth_{i}" for i in range(20)])  # "right" = subject's right = image left


def _chain(a: int, b: int, closed: bool = False) -> list[tuple[int, int]]:
    edges = [(i, i + 1) for i in range(a, b)]
    return edges + [(b, a)] if closed else edges


SKELETON = (_chain(0, 16) + _chain(17, 21) + _chain(22, 26) + _chain(27, 30) + _chain(31, 35)
            + _chain(36, 41, True) + _chain(42, 47, True) + _chain(48, 59, True) + _chain(60, 67, True))


def read_pts(path: Path, problems, n_points: int = N_POINTS):
    """(n_points, 2) array of a .pts file, or None after reporting what is wrong (file:line)."""
    rows = list(text_lines(path))  # numbered as an editor does (str.splitlines also breaks at \f, \x1c, ...)
    try:
        open_at = next(i for i, (_, line) in enumerate(rows) if line == "{")
        close_at = next(i for i in range(open_at + 1, len(rows)) if rows[i][1] == "}")
    except StopIteration:
        problems(f"{path}:1", "no '{' ... '}' block of points")
        return None
    header = dict((part.strip() for part in line.split(":", 1)) for _, line in rows[:open_at] if ":" in line)
    declared = header.get("n_points")
    points = rows[open_at + 1:close_at]
    if close_at + 1 < len(rows):  # a second block, points after the brace: never silently ignored
        problems(f"{path}:{rows[close_at + 1][0]}", "text after the closing '}'")
        return None
    if declared is not None and declared != str(len(points)):
        problems(f"{path}:{rows[open_at][0]}",
                 f"n_points says {declared}, the block has {len(points)} points")
        return None
    if len(points) != n_points:
        problems(f"{path}:{rows[open_at][0]}", f"expected {n_points} points, got {len(points)}")
        return None
    xy = []
    for no, line in points:
        fields = line.split()
        if len(fields) != 2:
            problems(f"{path}:{no}", f"expected 2 fields (x y), got {len(fields)}")
            return None
        v = parse_floats(fields, f"{path}:{no}", problems)
        if v is None:
            return None
        xy.append(v)
    return xy


class Pts300W(ListingSource):
    """Every `.pts` + image pair below root."""

    def __init__(self, root, *, dataset: str = "300w", one_based: bool = True,
                 normalisation: str | None = None, on_bad: str = "raise"):
        self.root = Path(root)
        self._start(on_bad)
        norm = normalisation or ("bbox" if dataset.lower() == "ls3d" else "interocular:36,45")
        self.info = SourceInfo(dataset, KEYPOINTS, SKELETON, norm)
        if not self.root.is_dir():
            raise BadInputError(f"{self.root}: folder not found")
        self.records = []
        for pts in sorted(self.root.rglob("*.pts")):
            xy = read_pts(pts, self.problems)
            if xy is None:
                continue
            kp = with_visibility(xy)
            kp[:, :2] -= 1.0 if one_based else 0.0
            if not check_keypoints(kp, f"{pts}:1", self.problems):
                continue
            image = next((pts.with_suffix(e) for e in _EXTENSIONS if pts.with_suffix(e).is_file()), None)
            if image is None:
                self.problems(str(pts), f"image not found: no {pts.stem}.jpg/.png/... beside it")
                continue
            self.records.append((image.relative_to(self.root).as_posix(), kp))
        self._listing_done()

    def load(self, record) -> Sample | None:
        name, kp = record
        return sample_at(self.problems, self.root / name, name, kp, box_of(kp))
