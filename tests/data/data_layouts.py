"""Tiny fixtures of every data set, written in that data set's official layout (fixtures + helpers).

The fixtures are registered by `conftest.py`; the tests import the helpers from here (a module with
a unique name, rather than from `conftest`).

Each fixture returns a `Layout`: `make(**kw)` builds the source, `expected` maps every sample name
to (keypoints (K, 3) in pixels of the original image, box or None, image (H, W)), `images` maps
names to image files (for the bad-input tests), `listing` is the main annotation file.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.io
from PIL import Image


@dataclass
class Layout:
    root: Path
    make: Callable
    expected: dict
    images: dict
    listing: Path | None = None
    extra: dict = field(default_factory=dict)


def write_image(path: Path, w: int, h: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def kp3(xy, vis=1.0) -> np.ndarray:
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    v = np.broadcast_to(np.asarray(vis, np.float32), (len(xy),))
    return np.concatenate([xy, v[:, None]], 1)


def ext_box(kp) -> np.ndarray:
    v = kp[:, 2] > 0
    return np.concatenate([kp[v, :2].min(0), kp[v, :2].max(0)])


@pytest.fixture
def mtfl_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import MTFL
    root = tmp_path / "mtfl"
    rows = {"lfw_5590/A_0001.jpg": ([10, 20, 15, 11, 19], [12, 12.5, 16, 20, 21], (24, 28)),
            "lfw_5590/B_0001.jpg": ([9, 21, 14, 10, 20], [11, 11, 15, 19.5, 19.5], (24, 28)),
            "net_7876/c_1_0.jpg": ([5.5, 14, 10, 6, 13], [6, 6, 9, 12, 12], (20, 20))}
    lines, expected, images = [], {}, {}
    for i, (name, (xs, ys, (w, h))) in enumerate(rows.items()):
        images[name] = write_image(root / name, w, h, i)
        lines.append(" ".join([name] + [repr(float(v)) for v in xs + ys]))
        expected[name] = (kp3(np.stack([xs, ys], 1)), None, (h, w))
    listing = root / "training.txt"
    listing.write_text("\n".join(lines) + "\n")
    return Layout(root, lambda **kw: MTFL(root, **kw), expected, images, listing)


@pytest.fixture
def mtfl_original_layout(tmp_path) -> Layout:
    """The original MTFL listing: backslash paths, 4 attribute columns, a leading space."""
    from lmkcore.data.sources import MTFL
    root = tmp_path / "MTFL"
    images, expected, lines = {}, {}, []
    for i, name in enumerate(["AFLW/1-image00001.jpg", "AFLW/2-image00002.jpg"]):
        xs, ys = [8.0 + i, 17, 12, 9, 16], [9.0, 9, 13, 17, 17.5]
        images[name] = write_image(root / name, 26, 24, i)
        fields = [name.replace("/", "\\")] + [str(v) for v in xs + ys] + ["1", "2", "2", "3"]
        lines.append(" " + " ".join(fields))
        expected[name] = (kp3(np.stack([xs, ys], 1)), None, (24, 26))
    listing = root / "testing.txt"
    listing.write_text("\r\n".join(lines) + "\r\n")
    return Layout(root, lambda **kw: MTFL(root, "testing.txt", **kw), expected, images, listing)


def _lsp_joints(n: int, rng) -> np.ndarray:
    xy = rng.uniform(4, 26, (n, 14, 2)).astype(np.float32)
    vis = np.ones((n, 14), np.float32)
    vis[0, [0, 5]] = 0
    xy[0, 0] = (0, -17.5)  # invisible joints may hold anything
    xy[0, 5] = (0, 0)
    return np.concatenate([xy, vis[..., None]], 2)


@pytest.fixture
def lspet_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import LSP
    root = tmp_path / "lspet"
    kp = _lsp_joints(3, np.random.default_rng(1))
    root.mkdir()
    scipy.io.savemat(root / "joints.mat", {"joints": kp.transpose(1, 2, 0)})  # 14 x 3 x N
    images, expected = {}, {}
    for i in range(3):
        name = f"images/im{i + 1:05d}.jpg"
        images[name] = write_image(root / name, 32, 30, i)
        expected[name] = (kp[i], ext_box(kp[i]), (30, 32))
    return Layout(root, lambda **kw: LSP(root, **kw), expected, images, root / "joints.mat")


@pytest.fixture
def lsp_layout(tmp_path) -> Layout:
    """Original LSP: 3 x 14 x N with an *occluded* flag, 4-digit names."""
    from lmkcore.data.sources import LSP
    root = tmp_path / "lsp"
    kp = _lsp_joints(2, np.random.default_rng(2))
    raw = kp.copy()
    raw[..., 2] = 1 - kp[..., 2]
    root.mkdir()
    scipy.io.savemat(root / "joints.mat", {"joints": raw.transpose(2, 1, 0)})  # 3 x 14 x N
    images, expected = {}, {}
    for i in range(2):
        name = f"images/im{i + 1:04d}.jpg"
        images[name] = write_image(root / name, 30, 32, i)
        expected[name] = (kp[i], ext_box(kp[i]), (32, 30))
    return Layout(root, lambda **kw: LSP(root, **kw), expected, images, root / "joints.mat")


@pytest.fixture
def celeba_layout(tmp_path) -> Layout:
    """Aligned CelebA, MAFL training split selecting 2 of 3 images."""
    from lmkcore.data.sources import MAFL
    root = tmp_path / "celeba"
    (root / "Anno").mkdir(parents=True)
    (root / "MAFL").mkdir()
    coords = {"000001.jpg": [6, 10, 15, 10, 10, 14, 7, 18, 14, 18],
              "000002.jpg": [7, 11, 16, 11, 11, 15, 8, 19, 15, 19],
              "000003.jpg": [5, 9, 14, 9, 9, 13, 6, 17, 13, 17]}
    header = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
              "rightmouth_y")
    lines = ["3", header] + [f"{n} " + " ".join(f"{v:>3d}" for v in c) for n, c in coords.items()]
    (root / "Anno" / "list_landmarks_align_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "MAFL" / "training.txt").write_text("000001.jpg\n000003.jpg\n")
    images, expected = {}, {}
    for i, (n, c) in enumerate(coords.items()):
        path = write_image(root / "Img" / "img_align_celeba" / n, 20, 24, i)
        if n != "000002.jpg":
            images[n] = path
            expected[n] = (kp3(np.reshape(c, (5, 2))), None, (24, 20))
    return Layout(root, lambda **kw: MAFL(root, "train", **kw), expected, images,
                  root / "Anno" / "list_landmarks_align_celeba.txt")


@pytest.fixture
def celeba_wild_layout(tmp_path) -> Layout:
    """Unaligned CelebA with boxes, files directly in root."""
    from lmkcore.data.sources import CelebA
    root = tmp_path / "celeba_wild"
    root.mkdir()
    (root / "list_landmarks_celeba.txt").write_text(
        "2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
        "rightmouth_y\n000001.jpg 10 12 20 12 15 17 11 22 19 22\n000002.jpg 12 12 22 13 17 18 13 23 21 23\n")
    (root / "list_bbox_celeba.txt").write_text(
        "2\nimage_id x_1 y_1 width height\n000001.jpg    5   6  22  24\n000002.jpg    7   5  20  25\n")
    images, expected = {}, {}
    for i, (n, c, b) in enumerate([("000001.jpg", [10, 12, 20, 12, 15, 17, 11, 22, 19, 22], [5, 6, 26, 29]),
                                   ("000002.jpg", [12, 12, 22, 13, 17, 18, 13, 23, 21, 23], [7, 5, 26, 29])]):
        images[n] = write_image(root / "img_celeba" / n, 34, 36, i)
        expected[n] = (kp3(np.reshape(c, (5, 2))), np.array(b, np.float32), (36, 34))
    return Layout(root, lambda **kw: CelebA(root, aligned=False, **kw), expected, images,
                  root / "list_landmarks_celeba.txt")


@pytest.fixture
def aflw_m_layout(tmp_path) -> Layout:
    """DVE's aflw-mtfl archive, training half (csv, 1-based coordinates, set == 1)."""
    from lmkcore.data.sources import AFLW
    root = tmp_path / "aflw-mtfl"
    header = ["image_file", "set", "crop_file", "face_id"] + [f"{a}{i}" for i in range(1, 6) for a in "xy"]
    rows = [["image00001.jpg", "1", "cropped/39373.jpg", "39373", 8, 9, 17, 9, 12, 13, 9, 17, 16, 17],
            ["image00002.jpg", "2", "cropped/39374.jpg", "39374", 8, 9, 17, 9, 12, 13, 9, 17, 16, 17],
            ["image00003.jpg", "1", "cropped/39375_b.jpg", "39375", 7, 8, 18, 8.5, 12, 14, 8, 18, 17, 18]]
    (root / "aflw_cropped").mkdir(parents=True)
    with open(root / "aflw_cropped" / "facedata_cropped.csv", "w", newline="") as f:
        csv.writer(f).writerows([header] + rows)
    images, expected = {}, {}
    for i, r in enumerate(rows):
        path = write_image(root / "aflw_cropped" / r[2], 25, 25, i)
        if r[1] == "1":
            images[r[2]] = path
            expected[r[2]] = (kp3(np.reshape(r[4:], (5, 2)) - 1.0), None, (25, 25))
    return Layout(root, lambda **kw: AFLW(root, "train", **kw), expected, images,
                  root / "aflw_cropped" / "facedata_cropped.csv")


@pytest.fixture
def aflw_r_layout(tmp_path) -> Layout:
    """DVE's aflw-recrop archive: names + `gt` (N, 5, 2) in (y, x) + `hw`."""
    from lmkcore.data.sources import AFLW
    root = tmp_path / "aflw_release-2"
    names = ["0/image00001_1.jpg", "2/image00002_2.jpg"]
    xy = np.array([[[6, 7], [14, 7], [10, 11], [7, 15], [13, 15]],
                   [[5, 6], [15, 6], [10, 10], [6, 14], [14, 14]]], np.float32)
    root.mkdir()
    (root / "aflw_train_images.txt").write_text("\n".join(names) + "\n")
    scipy.io.savemat(root / "aflw_train_keypoints.mat",
                     {"gt": xy[:, :, ::-1], "hw": np.array([[22, 20], [22, 20]])})
    images = {n: write_image(root / "output" / n, 20, 22, i) for i, n in enumerate(names)}
    expected = {n: (kp3(xy[i]), None, (22, 20)) for i, n in enumerate(names)}
    return Layout(root, lambda **kw: AFLW(root, "train", **kw), expected, images,
                  root / "aflw_train_keypoints.mat")


@pytest.fixture
def w300_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import Pts300W
    root = tmp_path / "300w"
    rng = np.random.default_rng(3)
    images, expected = {}, {}
    for i, name in enumerate(["afw/111_1.jpg", "helen/trainset/222_1.png"]):
        xy = rng.uniform(3, 30, (68, 2)).round(3)
        images[name] = write_image(root / name, 34, 33, i)
        pts = ["version: 1", "n_points:  68", "{"] + [f"{x:.3f} {y:.3f}" for x, y in xy] + ["}"]
        (root / name).with_suffix(".pts").write_text("\n".join(pts) + "\n")
        kp = kp3(xy - 1.0)
        expected[name] = (kp, ext_box(kp), (33, 34))
    return Layout(root, lambda **kw: Pts300W(root, **kw), expected, images, root / "afw" / "111_1.pts")


@pytest.fixture
def cub_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import CUB
    from lmkcore.data.sources.cub import PARTS
    root = tmp_path / "CUB_200_2011"
    (root / "parts").mkdir(parents=True)
    paths = {1: "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
             2: "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg",
             3: "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg"}
    (root / "images.txt").write_text("".join(f"{i} {p}\n" for i, p in paths.items()))
    (root / "parts" / "parts.txt").write_text(
        "".join(f"{i + 1} {n.replace('_', ' ')}\n" for i, n in enumerate(PARTS)))  # "left eye", ...
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (root / "bounding_boxes.txt").write_text(
        "1 3.0 4.0 20.0 18.0\n2 2.0 2.0 25.0 20.0\n3 5.0 3.0 19.0 21.0\n")
    rng = np.random.default_rng(4)
    lines, images, expected = [], {}, {}
    for i, p in paths.items():
        xy = rng.uniform(5, 20, (15, 2)).round(1)
        vis = np.ones(15, np.float32)
        vis[[3, 7]] = 0
        xy[vis == 0] = 0
        lines += [f"{i} {k + 1} {xy[k, 0]:.1f} {xy[k, 1]:.1f} {int(vis[k])}" for k in range(15)]
        path = write_image(root / "images" / p, 30, 28, i)
        if i != 2:  # the test image
            kp = kp3(np.where(vis[:, None] > 0, xy - 1.0, 0.0), vis)
            x, y, w, h = [[3, 4, 20, 18], None, [5, 3, 19, 21]][i - 1]
            images[p] = path
            expected[p] = (kp, np.array([x - 1, y - 1, x + w - 2, y + h - 2], np.float32), (28, 30))
    (root / "parts" / "part_locs.txt").write_text("\n".join(lines) + "\n")
    return Layout(root, lambda **kw: CUB(root, "train", **kw), expected, images,
                  root / "parts" / "part_locs.txt")


@pytest.fixture
def h36m_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import H36M
    root = tmp_path / "h36m"
    rng = np.random.default_rng(5)
    images, expected = {}, {}
    for s, seq, frame in [("S1", "Directions.54138969", "000001"), ("S1", "Directions.54138969", "000002"),
                          ("S11", "Walking 1.55011271", "000001"), ("S1", "Eating.54138969", "000001")]:
        name = f"{s}/WithBackground/{seq}/{frame}.jpg"
        uv = rng.uniform(0.1, 0.9, (32, 2)).astype(np.float32)
        path = write_image(root / name, 24, 24, len(images))
        (root / s / "Landmarks" / seq).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / s / "Landmarks" / seq / f"{frame}.mat", {"keypoints_2d": uv})
        if not seq.startswith("Eating"):
            kp = kp3(uv * 23)
            images[name] = path
            expected[name] = (kp, ext_box(kp), (24, 24))
    return Layout(root, lambda **kw: H36M(root, **kw), expected, images)


@pytest.fixture
def frames_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import Frames
    root = tmp_path / "taichi" / "train"
    images, expected = {}, {}
    for v in ["vid_b", "vid_a"]:
        for f in ["2.png", "10.png", "1.png"]:
            images[f"{v}/{f}"] = write_image(root / v / f, 16, 18, len(images))
    for v in ["vid_a", "vid_b"]:
        for f in ["1.png", "2.png", "10.png"]:
            expected[f"{v}/{f}"] = (np.zeros((0, 3), np.float32), None, (18, 16))
    return Layout(root, lambda **kw: Frames(root, **kw), expected, images)


@pytest.fixture
def deepfashion_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import DeepFashion
    root = tmp_path / "deepfashion"
    rng = np.random.default_rng(6)
    names = ["WOMEN/Dresses/id_00000002/02_1_front.jpg", "MEN/Pants/id_00000010/01_4_full.jpg"]
    entries, images, expected = [], {}, {}
    for i, n in enumerate(names):
        xy = rng.uniform(2, 30, (17, 2)).round(2)
        entries.append({"image_path": n, "train": True, "keypoints": xy.tolist(),
                        "keypoints_confidence": [0.9] * 17, "person_id": i, "bbox": [4, 0, 24, 32],
                        "joint_order": {str(k): k for k in range(17)}})
        images[n] = write_image(root / "img" / n, 32, 32, i)
        expected[n] = (kp3(xy), np.array([4, 0, 27, 31], np.float32), (32, 32))
    root.mkdir(exist_ok=True)
    (root / "data_train.csv").write_text(
        "id,filename\n" + "".join(f"{10 + i},{n}\n" for i, n in enumerate(names)))
    (root / "data_train.json").write_text(json.dumps(entries[::-1], indent=4))  # order differs on purpose
    return Layout(root, lambda **kw: DeepFashion(root, "train", **kw), expected, images,
                  root / "data_train.csv")


def bbc_table(frames_joints: list) -> np.ndarray:
    fields = ["videoName", "type", "source", "train_frames", "train_joints", "test_frames", "test_joints"]
    table = np.empty((1, len(frames_joints)), dtype=[(f, "O") for f in fields])
    for i, (kind, frames, joints) in enumerate(frames_joints):
        table[0, i] = (f"video{i + 1}", kind, "buehler11", np.array([frames], np.float64), joints,
                       np.zeros((0, 0)), np.zeros((0, 0)))
    return table


@pytest.fixture
def bbcpose_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import BBCPose
    root = tmp_path / "bbcpose"
    rng = np.random.default_rng(7)
    j1, j2, j3 = (rng.uniform(3, 30, (2, 7, n)).round(2) for n in (2, 1, 1))
    (root / "code").mkdir(parents=True)
    scipy.io.savemat(root / "code" / "bbcpose.mat",
                     {"bbcpose": bbc_table([("train", [41, 45], j1), ("train", [7], j2), ("val", [3], j3)])})
    images, expected = {}, {}
    for v, frames, j in [(1, [41, 45], j1), (2, [7], j2)]:
        for i, f in enumerate(frames):
            name = f"{v}/{f}.jpg"
            images[name] = write_image(root / name, 36, 32, len(images))
            kp = kp3(j[:, :, i].T - 1.0)
            expected[name] = (kp, ext_box(kp), (32, 36))
    write_image(root / "3" / "3.jpg", 36, 32, 9)
    return Layout(root, lambda **kw: BBCPose(root, **kw), expected, images, root / "code" / "bbcpose.mat")


@pytest.fixture
def folder_layout(tmp_path) -> Layout:
    from lmkcore.data.sources import Folder
    root = tmp_path / "pictures"
    images = {n: write_image(root / n, 14, 12, i) for i, n in enumerate(["b.png", "a/c.JPG", "a/b.jpeg"])}
    write_image(root / ".hidden" / "x.png", 8, 8)
    (root / "notes.txt").write_text("not an image")
    expected = {n: (np.zeros((0, 3), np.float32), None, (12, 14)) for n in sorted(images)}
    return Layout(root, lambda **kw: Folder(root, **kw), expected, images)


LAYOUTS = ["mtfl_layout", "mtfl_original_layout", "lspet_layout", "lsp_layout", "celeba_layout",
           "celeba_wild_layout", "aflw_m_layout", "aflw_r_layout", "w300_layout", "cub_layout", "h36m_layout",
           "frames_layout", "deepfashion_layout", "bbcpose_layout", "folder_layout"]
