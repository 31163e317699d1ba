"""Every source against a tiny fixture in its official layout; bad input; the real data when present."""
from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest
import scipy.io
from data_layouts import LAYOUTS, kp3, write_image

from lmkcore.data import BadInputError, LandmarkStore, write_store
from lmkcore.data.prepare import default_data_root
from lmkcore.data.sources import AFLW, LSP, MTFL, BBCPose, CelebA, Frames, H36M, Pts300W
from lmkcore.data.sources.lsp import DEFAULT_MARGIN

R = 12  # store resolution of the round trips


def _check_info(info, k):
    assert len(info.keypoint_names) == k
    assert all(0 <= a < k and 0 <= b < k for a, b in info.skeleton)
    assert re.fullmatch(r"interocular:\d+,\d+|bbox|image_size", info.normalisation)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_source_reads_official_layout(layout, request):
    lay = request.getfixturevalue(layout)
    src = lay.make()
    assert len(src) == len(lay.expected)
    assert src.names == list(lay.expected)
    samples = list(src)
    assert [s.name for s in samples] == list(lay.expected)
    for s in samples:
        kp, box, (h, w) = lay.expected[s.name]
        assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
        assert s.keypoints.dtype == np.float32 and s.keypoints.shape == kp.shape
        np.testing.assert_allclose(s.keypoints, kp, atol=1e-4, err_msg=s.name)
        if box is None:
            assert s.box is None
        else:
            np.testing.assert_allclose(s.box, box, atol=1e-4, err_msg=s.name)
    _check_info(src.info, next(iter(lay.expected.values()))[0].shape[0])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_store_round_trip_full_image(layout, request, tmp_path):
    lay = request.getfixturevalue(layout)
    path = write_store(tmp_path / "s.h5", lay.make(), R)
    ds = LandmarkStore(path)
    assert len(ds) == len(lay.expected) and list(ds.arrays("names")) == list(lay.expected)
    stored = ds.arrays("keypoints")
    for (name, (kp, _, (h, w))), got in zip(lay.expected.items(), stored):
        want = kp.copy()
        want[:, 0] = (kp[:, 0] + 0.5) * R / w - 0.5  # whole image -> R x R, pixel centres at +0.5
        want[:, 1] = (kp[:, 1] + 0.5) * R / h - 0.5
        np.testing.assert_allclose(got, want, atol=1e-4, err_msg=name)
    item = ds[0]
    assert item["image"].shape == (3, R, R) and item["keypoints"].shape == (stored.shape[1], 2)
    assert ds.info.dataset == lay.make().info.dataset


# sources whose annotation names the images (the others list what is there)
NAMED = [x for x in LAYOUTS if x not in ("h36m_layout", "frames_layout", "folder_layout")]


@pytest.mark.parametrize("layout", NAMED)
def test_missing_image_raises_or_is_skipped_and_reported(layout, request):
    lay = request.getfixturevalue(layout)
    name, path = next(iter(lay.images.items()))
    path.unlink()
    with pytest.raises(BadInputError, match=re.escape(path.stem)):  # 300W names the .pts beside it
        list(lay.make())
    with pytest.warns(UserWarning, match=r"skipped 1 bad input") as rec:
        names = [s.name for s in lay.make(on_bad="skip")]
    assert names == [n for n in lay.expected if n != name]
    assert any(path.stem in str(w.message) for w in rec)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unreadable_image_raises_or_is_skipped(layout, request):
    lay = request.getfixturevalue(layout)
    name, path = next(iter(lay.images.items()))
    path.write_bytes(b"this is not an image")
    with pytest.raises(BadInputError, match=re.escape(path.name) + ".*unreadable"):
        list(lay.make())
    with pytest.warns(UserWarning, match=re.escape(path.name)):
        assert len(list(lay.make(on_bad="skip"))) == len(lay.expected) - 1


def test_clean_iteration_warns_nothing(mtfl_layout):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(mtfl_layout.make(on_bad="skip"))) == 3


# --- MTFL -----------------------------------------------------------------------------------------------

def _append(path, line):
    path.write_text(path.read_text() + line + "\n")


@pytest.mark.parametrize("line, reason", [
    ("lfw_5590/A_0001.jpg 1 2 3 4 5 6 7 8 9", "expected 11 fields"),
    ("lfw_5590/A_0001.jpg 1 2 3 4 five 6 7 8 9 10", "not a number"),
    ("lfw_5590/A_0001.jpg 1 2 3 4 nan 6 7 8 9 10", "non-finite"),
    ("lfw_5590/A_0001.jpg 1 2 3 4 5 6 7 8 9 inf 0 0 0 0", "non-finite"),
])
def test_mtfl_bad_line_names_file_and_line(mtfl_layout, line, reason):
    _append(mtfl_layout.listing, line)
    where = f"{mtfl_layout.listing}:4"
    with pytest.raises(BadInputError, match=re.escape(where) + ".*" + reason):
        MTFL(mtfl_layout.root)
    src = MTFL(mtfl_layout.root, on_bad="skip")
    assert len(src) == 3  # validated eagerly: the bad line is not counted
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 bad input.*" + re.escape(where)):
        assert len(list(src)) == 3


def test_mtfl_skip_reports_once_per_iteration(mtfl_layout):
    _append(mtfl_layout.listing, "bad line")
    src = MTFL(mtfl_layout.root, on_bad="skip")
    for _ in range(2):
        with pytest.warns(UserWarning, match=r"skipped 1 bad input"):
            list(src)


def test_mtfl_test_listing_beside_its_own_folders(mtfl_layout, mtfl_original_layout):
    both = mtfl_layout.root / "testing.txt"  # a test listing in the training root, own folders
    both.write_text(mtfl_original_layout.listing.read_text())
    for name, path in mtfl_original_layout.images.items():
        (mtfl_layout.root / name).parent.mkdir(parents=True, exist_ok=True)
        (mtfl_layout.root / name).write_bytes(path.read_bytes())
    test = MTFL(mtfl_layout.root, "testing.txt")
    assert test.names == list(mtfl_original_layout.expected) and len(list(test)) == 2
    assert len(MTFL(mtfl_layout.root)) == 3
    shifted = next(iter(MTFL(mtfl_layout.root, "testing.txt", one_based=True)))
    np.testing.assert_allclose(shifted.keypoints[:, :2],
                               mtfl_original_layout.expected[shifted.name][0][:, :2] - 1.0)


def test_missing_listing_always_raises(tmp_path):
    with pytest.raises(BadInputError, match="training.txt"):
        MTFL(tmp_path, on_bad="skip")


# --- LSP / LSPET ----------------------------------------------------------------------------------------

def test_lsp_layout_detected_from_shape(lsp_layout, lspet_layout):
    assert LSP(lsp_layout.root).layout == "lsp" and LSP(lspet_layout.root).layout == "lspet"
    assert LSP(lspet_layout.root).info.keypoint_names[0] == "right_ankle"


@pytest.mark.parametrize("shape", [(14, 2, 3), (3, 3, 14), (14, 3)])
def test_lsp_wrong_shape_names_file_and_shape(lspet_layout, shape):
    scipy.io.savemat(lspet_layout.listing, {"joints": np.zeros(shape)})
    where = re.escape(str(lspet_layout.listing)) + ".*" + re.escape(str(shape))
    with pytest.raises(BadInputError, match=where):
        LSP(lspet_layout.root, on_bad="skip")


def test_lsp_non_finite_visible_joint(lspet_layout):
    j = scipy.io.loadmat(lspet_layout.listing)["joints"]
    j[3, 0, 1] = np.nan  # visible joint of sample 2
    j[0, 0, 0] = np.nan  # invisible joint of sample 1: allowed, zeroed
    scipy.io.savemat(lspet_layout.listing, {"joints": j})
    with pytest.raises(BadInputError, match=re.escape(f"{lspet_layout.listing} (sample 2)") + ".*non-finite"):
        LSP(lspet_layout.root)
    src = LSP(lspet_layout.root, on_bad="skip")
    with pytest.warns(UserWarning, match=r"(?s)skipped 1.*sample 2"):
        samples = list(src)
    assert [s.name for s in samples] == ["images/im00001.jpg", "images/im00003.jpg"]
    assert np.isfinite(samples[0].keypoints).all()


def test_lsp_test_folder_with_other_numbers(lspet_layout):
    for i, path in enumerate(sorted(lspet_layout.images.values())):
        path.rename(path.with_name(f"im{8001 + i:05d}.jpg"))
    assert LSP(lspet_layout.root).names == [f"images/im{8001 + i:05d}.jpg" for i in range(3)]


def test_lsp_box_crop_moves_keypoints(lspet_layout, tmp_path):
    path = write_store(tmp_path / "s.h5", LSP(lspet_layout.root), 16, crop="box", margin=DEFAULT_MARGIN)
    got = LandmarkStore(path).arrays("keypoints")
    for (name, (kp, box, _)), k in zip(lspet_layout.expected.items(), got):
        vis = kp[:, 2] > 0
        np.testing.assert_array_equal(k[:, 2], kp[:, 2])
        long = int(np.argmax(box[2:] - box[:2]))  # the longer side spans R / (1 + 2 margin) pixels
        lo, hi = np.argmin(np.where(vis, kp[:, long], np.inf)), np.argmax(np.where(vis, kp[:, long], -np.inf))
        half = 16 / (2 * (1 + 2 * DEFAULT_MARGIN))
        np.testing.assert_allclose([k[lo, long], k[hi, long]], [7.5 - half, 7.5 + half], atol=1e-4,
                                   err_msg=name)
        centre = (box[:2] + box[2:]) / 2  # the box centre lands on the crop centre
        scale = 16 / ((box[2:] - box[:2]).max() * (1 + 2 * DEFAULT_MARGIN))
        np.testing.assert_allclose(k[vis, :2], (kp[vis, :2] - centre) * scale + 7.5, atol=1e-4)


# --- the others -----------------------------------------------------------------------------------------

def test_celeba_count_line_and_subset_checked(celeba_layout):
    celeba_layout.listing.write_text(celeba_layout.listing.read_text().replace("3\n", "4\n", 1))
    (celeba_layout.root / "MAFL" / "training.txt").write_text("000001.jpg\n000009.jpg\n")
    with pytest.raises(BadInputError, match=re.escape(f"{celeba_layout.listing}:1") + ".*count line says 4"):
        CelebA(celeba_layout.root, subset="training.txt")
    src = CelebA(celeba_layout.root, subset="training.txt", on_bad="skip")
    split = celeba_layout.root / "MAFL" / "training.txt"
    with pytest.warns(UserWarning, match=r"(?s)skipped 2 .*count line says 4.*" + re.escape(f"{split}:2")):
        assert [s.name for s in src] == ["000001.jpg"]
    assert len(CelebA(celeba_layout.root, on_bad="skip")) == 3


def test_celeba_wrong_field_count(celeba_wild_layout):
    _append(celeba_wild_layout.listing, "000003.jpg 1 2 3")
    with pytest.raises(BadInputError, match=re.escape(f"{celeba_wild_layout.listing}:5") + ".*expected 11"):
        CelebA(celeba_wild_layout.root, aligned=False)


def test_aflw_m_test_half_is_the_mtfl_listing(aflw_m_layout):
    (aflw_m_layout.root / "MTFL").mkdir()
    (aflw_m_layout.root / "MTFL" / "testing.txt").write_text(
        "AFLW\\1-image00001.jpg 8 17 12 9 16 9 9 13 17 17 1 2 2 3\n")
    write_image(aflw_m_layout.root / "MTFL" / "AFLW" / "1-image00001.jpg", 25, 25)
    s, = list(AFLW(aflw_m_layout.root, "test"))
    assert s.name == "AFLW/1-image00001.jpg"
    written = np.stack([[8, 17, 12, 9, 16], [9, 9, 13, 17, 17]], 1)
    np.testing.assert_allclose(s.keypoints[:, :2], written - 1.0)
    s, = list(AFLW(aflw_m_layout.root / "MTFL", layout="listing"))  # a plain listing: kept as written
    np.testing.assert_allclose(s.keypoints[0, :2], [8, 9])


def test_aflw_r_wrong_shape(aflw_r_layout):
    scipy.io.savemat(aflw_r_layout.listing, {"gt": np.zeros((2, 5, 3))})
    with pytest.raises(BadInputError, match=re.escape(str(aflw_r_layout.listing)) + r".*\(2, 5, 3\)"):
        AFLW(aflw_r_layout.root)


def test_pts_wrong_point_count_names_file_and_line(w300_layout):
    text = w300_layout.listing.read_text().splitlines()
    w300_layout.listing.write_text("\n".join(text[:5] + text[6:]) + "\n")  # drop one point
    with pytest.raises(BadInputError, match=re.escape(f"{w300_layout.listing}:3") + ".*n_points says 68"):
        Pts300W(w300_layout.root)
    src = Pts300W(w300_layout.root, on_bad="skip", dataset="ls3d")
    assert len(src) == 1 and src.info.normalisation == "bbox"
    assert Pts300W(w300_layout.root, on_bad="skip").info.normalisation == "interocular:36,45"


def test_cub_splits_and_incomplete_parts(cub_layout):
    from lmkcore.data.sources import CUB
    test = CUB(cub_layout.root, "test").names
    assert test == ["001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg"]
    assert len(CUB(cub_layout.root, None)) == 3
    locs = cub_layout.listing.read_text().splitlines()
    cub_layout.listing.write_text("\n".join(locs[1:]) + "\n")  # image 1 loses its first part
    with pytest.raises(BadInputError, match=re.escape(f"{cub_layout.listing}:1") + ".*14 of 15 parts"):
        CUB(cub_layout.root)
    src = CUB(cub_layout.root, "train", on_bad="skip")
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(list(src)) == 1


def test_cub_ids_and_parts_listed_twice_are_named(cub_layout):
    """A second row for an image id (images.txt, bounding_boxes.txt) or for a part of an image (part_locs.txt)
    is reported at its line, the first kept: nothing is silently replaced."""
    from lmkcore.data.sources import CUB

    root = cub_layout.root
    images = root / "images.txt"
    images.write_text(images.read_text() + "1 somewhere/else.jpg\n")
    with pytest.raises(BadInputError, match=re.escape(f"{images}:4: id 1 is listed again (first at {images}:1)")):
        CUB(root)
    images.write_text("".join(images.read_text().splitlines(keepends=True)[:3]))
    boxes = root / "bounding_boxes.txt"
    boxes.write_text(boxes.read_text() + "3 0.0 0.0 1.0 1.0\n")
    with pytest.raises(BadInputError, match=re.escape(f"{boxes}:4: id 3 is listed again")):
        CUB(root)
    boxes.write_text("".join(boxes.read_text().splitlines(keepends=True)[:3]))
    locs = cub_layout.listing.read_text().splitlines()
    cub_layout.listing.write_text("\n".join(locs + [locs[0]]) + "\n")
    with pytest.raises(BadInputError, match=re.escape(f"{cub_layout.listing}:{len(locs) + 1}: part 1 of image 1")):
        CUB(root)
    src = CUB(root, "train", on_bad="skip")
    assert len(src.records) == 2 and len(src.listing_problems) == 1


def test_h36m_units_and_bad_matrix(h36m_layout):
    name = next(iter(h36m_layout.expected))
    mat = h36m_layout.root / "S1" / "Landmarks" / "Directions.54138969" / "000001.mat"
    scipy.io.savemat(mat, {"keypoints_2d": np.full((32, 2), 5.0)})
    s = next(iter(H36M(h36m_layout.root)))
    assert s.name == name and np.allclose(s.keypoints[:, :2], 5.0)  # > 1.5: pixels
    scipy.io.savemat(mat, {"keypoints_2d": np.full((32, 2), 0.5)})
    s = next(iter(H36M(h36m_layout.root, units="normalised")))
    assert np.allclose(s.keypoints[:, :2], 0.5 * 23)
    assert len(H36M(h36m_layout.root, subjects=["S11"])) == 1
    assert len(H36M(h36m_layout.root, activities=None)) == 4
    scipy.io.savemat(mat, {"keypoints_2d": np.zeros((17, 2))})
    with pytest.raises(BadInputError, match=re.escape(str(mat)) + r".*\(17, 2\)"):
        list(H36M(h36m_layout.root))


def test_frames_pairs_and_keypoints_csv(frames_layout):
    src = Frames(frames_layout.root)
    assert src.pairs() == [("vid_a/1.png", "vid_a/2.png"), ("vid_a/2.png", "vid_a/10.png"),
                           ("vid_b/1.png", "vid_b/2.png"), ("vid_b/2.png", "vid_b/10.png")]
    assert src.pairs(2) == [("vid_a/1.png", "vid_a/10.png"), ("vid_b/1.png", "vid_b/10.png")]
    (frames_layout.root / "kp.csv").write_text(
        "name,head_x,head_y,foot_x,foot_y\nvid_a/2.png,3,4,-1,-1\nvid_b/10.png,5,6,7,8\n")
    src = Frames(frames_layout.root, keypoints_csv="kp.csv")
    assert src.info.keypoint_names == ["head", "foot"]
    kps = {s.name: s.keypoints for s in src}
    np.testing.assert_array_equal(kps["vid_a/2.png"], kp3([[3, 4], [0, 0]], [1, 0]))
    np.testing.assert_array_equal(kps["vid_b/10.png"], kp3([[5, 6], [7, 8]]))
    np.testing.assert_array_equal(kps["vid_a/1.png"], np.zeros((2, 3)))
    _append(frames_layout.root / "kp.csv", "vid_a/1.png,1,x,2,2")
    where = re.escape(f"{frames_layout.root / 'kp.csv'}:4")
    with pytest.raises(BadInputError, match=where + ".*not a number"):
        Frames(frames_layout.root, keypoints_csv="kp.csv")


def test_deepfashion_row_without_json_entry(deepfashion_layout):
    _append(deepfashion_layout.listing, "99,WOMEN/Skirts/id_00000099/01_1_front.jpg")
    with pytest.raises(BadInputError, match=re.escape(f"{deepfashion_layout.listing}:4") + ".*no entry"):
        deepfashion_layout.make()


def test_bbcpose_selection_and_bad_shape(bbcpose_layout):
    assert BBCPose(bbcpose_layout.root, video_type="val").names == ["3/3.jpg"]
    assert BBCPose(bbcpose_layout.root, videos=[2]).names == ["2/7.jpg"]
    assert len(BBCPose(bbcpose_layout.root, video_type=None)) == 4
    from data_layouts import bbc_table
    bad = bbc_table([("train", [1, 2], np.zeros((2, 6, 2)))])
    scipy.io.savemat(bbcpose_layout.listing, {"bbcpose": bad})
    with pytest.raises(BadInputError, match=re.escape(str(bbcpose_layout.listing)) + r".*\(2, 6, 2\)"):
        BBCPose(bbcpose_layout.root)


# --- the real data ----------------------------------------------------------------------------------------

def _real(sub):
    root = default_data_root() / sub
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set LMK_DATA_ROOT to the shared data folder)")
    return root


def test_real_mtfl():
    src = MTFL(_real("mtfl"))
    assert len(src) == 7653 and src.info.normalisation == "interocular:0,1"
    for s in itertools.islice(src, 3):
        assert s.image.shape == (80, 80, 3) and s.keypoints.shape == (5, 3)


def test_real_lspet():
    src = LSP(_real("lspet"))
    assert len(src) == 8000 and src.layout == "lspet" and len(src.info.keypoint_names) == 14
    for s in itertools.islice(src, 3):
        assert s.keypoints.shape == (14, 3) and s.box is not None


def test_lsp_a_missing_image_never_shifts_the_joints_of_the_others(lspet_layout):
    """im00001 missing and a stray image present: matching by sorted order would give every person the joints
    of the one before. The standard names stand; the missing image is reported."""
    images = sorted(lspet_layout.images.values())
    images[0].unlink()
    (images[0].parent / "im09999.jpg").write_bytes(images[1].read_bytes())
    src = LSP(lspet_layout.root, on_bad="skip")
    assert src.names == [f"images/im{i:05d}.jpg" for i in (1, 2, 3)]
    with pytest.warns(UserWarning, match="im00001.jpg: image file not found"):
        assert [s.name for s in src] == ["images/im00002.jpg", "images/im00003.jpg"]


def test_lsp_a_test_folder_with_a_gap_is_an_error_naming_it(lspet_layout):
    for i, path in enumerate(sorted(lspet_layout.images.values())):
        path.rename(path.with_name(f"im{8001 + 2 * i:05d}.jpg"))
    with pytest.raises(BadInputError, match=r"cannot match the 3 joint columns.*missing numbers, e.g. \[8002, 8004\]"):
        LSP(lspet_layout.root)


def test_a_visible_keypoint_far_outside_its_image_is_bad_input(lspet_layout):
    j = scipy.io.loadmat(lspet_layout.listing)["joints"]
    j[0, 0, 1], j[0, 2, 1] = 1e6, 1.0  # a visible joint of sample 2 at x = 1e6
    scipy.io.savemat(lspet_layout.listing, {"joints": j})
    with pytest.raises(BadInputError, match=r"im00002.jpg: visible keypoint 0 at \(1e\+06"):
        list(LSP(lspet_layout.root))
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(list(LSP(lspet_layout.root, on_bad="skip"))) == 2


def test_a_16_bit_grey_png_keeps_its_shades(tmp_path):
    from PIL import Image

    from lmkcore.data.source import Problems, load_image

    a = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(a).save(tmp_path / "g16.png")
    im = load_image(tmp_path / "g16.png", Problems())
    assert im.shape == (8, 8, 3) and im.dtype == np.uint8
    np.testing.assert_allclose(im[..., 0], np.rint(a / 257.0), atol=1)  # not all white
