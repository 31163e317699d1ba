"""`prepare`: source -> store with the right crop and the saved splits (a saved split is faked here)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from lmkcore.data import LandmarkStore, store_info
from lmkcore.data import splits as splits_module
from lmkcore.data.prepare import DATASETS, default_data_root, make_source, prepare


@pytest.fixture
def fake_mtfl_split(tmp_path, monkeypatch):
    """Pretend the repository's saved MTFL split is one fixture image."""
    d = tmp_path / "splits"
    d.mkdir()
    (d / "mtfl_val.txt").write_text("lfw_5590/B_0001.jpg\n")
    monkeypatch.setattr(splits_module, "SPLIT_DIR", d)


def test_prepare_mtfl_with_saved_split(mtfl_layout, fake_mtfl_split, tmp_path):
    path = prepare("mtfl", mtfl_layout.root, tmp_path / "mtfl_16.h5", 16)
    assert list(LandmarkStore(path, split="val").arrays("names")) == ["lfw_5590/B_0001.jpg"]
    fit = list(LandmarkStore(path, split="fit").arrays("names"))
    assert fit == ["lfw_5590/A_0001.jpg", "net_7876/c_1_0.jpg"]
    info = store_info(path)
    assert info.dataset == "mtfl" and info.normalisation == "interocular:0,1"
    with pytest.raises(FileExistsError):
        prepare("mtfl", mtfl_layout.root, path, 16)
    assert prepare("mtfl", mtfl_layout.root, path, 8, overwrite=True) == path


def test_prepare_separate_test_listing_has_no_splits(mtfl_original_layout, fake_mtfl_split, tmp_path):
    path = prepare("mtfl", mtfl_original_layout.root, tmp_path / "test.h5", 16, test_listing="testing.txt")
    with h5py.File(path) as f:
        assert "splits" not in f and len(f["names"]) == 2


def test_prepare_refuses_a_saved_split_that_does_not_match(mtfl_original_layout, fake_mtfl_split, tmp_path):
    (mtfl_original_layout.root / "training.txt").write_text(mtfl_original_layout.listing.read_text())
    with pytest.raises(ValueError, match="split='none'"):
        prepare("mtfl", mtfl_original_layout.root, tmp_path / "x.h5", 16)
    assert not (tmp_path / "x.h5").exists()
    path = prepare("mtfl", mtfl_original_layout.root, tmp_path / "x.h5", 16, split="none")
    assert len(LandmarkStore(path)) == 2


def test_prepare_skip_reports_lost_validation_images(mtfl_layout, fake_mtfl_split, tmp_path):
    mtfl_layout.images["lfw_5590/B_0001.jpg"].unlink()
    with pytest.warns(UserWarning) as rec:
        path = prepare("mtfl", mtfl_layout.root, tmp_path / "s.h5", 16, on_bad="skip")
    messages = [str(w.message) for w in rec]
    assert any("skipped 1 bad input" in m and "B_0001.jpg" in m for m in messages)  # the source's report
    assert any("1 validation image(s)" in m for m in messages)  # and prepare's
    assert len(LandmarkStore(path, split="val")) == 0 and len(LandmarkStore(path, split="fit")) == 2


def test_prepare_people_use_person_centred_crops(lspet_layout, tmp_path):
    path = prepare("lsp", lspet_layout.root, tmp_path / "lsp.h5", 16, split="none")
    ds = LandmarkStore(path)
    assert store_info(path).dataset == "lspet"
    boxes = ds.arrays("boxes")
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, 7.5, atol=1e-4)  # box centred in the crop


def test_prepare_unlabelled_folder_and_procedural(folder_layout, tmp_path):
    path = prepare("folder", folder_layout.root, tmp_path / "f.h5", 8)
    assert LandmarkStore(path).arrays("keypoints").shape == (3, 0, 3)
    path = prepare("procedural", None, tmp_path / "p.h5", 16, n=3)
    assert len(LandmarkStore(path)) == 3 and store_info(path).keypoint_names[-1] == "head_top"
    stick = prepare("procedural-stick", None, tmp_path / "s.h5", 16, n=3)
    assert np.array_equal(LandmarkStore(stick).arrays("keypoints"), LandmarkStore(path).arrays("keypoints"))
    assert not np.array_equal(LandmarkStore(stick).arrays("images"), LandmarkStore(path).arrays("images"))


def test_every_dataset_has_a_source(tmp_path):
    for d in DATASETS:
        if not d.startswith("procedural"):
            with pytest.raises(Exception):  # no data here: each names what it misses
                make_source(d, tmp_path / "nothing")
    with pytest.raises(ValueError, match="unknown dataset"):
        make_source("imagenet", tmp_path)


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("LMK_DATA_ROOT", str(tmp_path))
    assert default_data_root() == tmp_path
    monkeypatch.delenv("LMK_DATA_ROOT")
    assert default_data_root().parts[-2:] == ("shared", "data")


def test_prepare_official_test_parts(cub_layout, mtfl_original_layout, lspet_layout, tmp_path):
    path = prepare("cub", cub_layout.root, tmp_path / "cub_test.h5", 16, part="test")
    assert list(LandmarkStore(path).arrays("names")) == [
        "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg"]
    path = prepare("aflw", mtfl_original_layout.root, tmp_path / "aflw_test.h5", 16,
                   test_listing="testing.txt")
    assert len(LandmarkStore(path)) == 2 and store_info(path).dataset == "aflw"
    with pytest.raises(ValueError, match="test_listing is for"):
        prepare("lspet", lspet_layout.root, tmp_path / "x.h5", 16, test_listing="joints.mat")
