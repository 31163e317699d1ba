import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from lmkcore.data import InMemory, LandmarkStore, ProceduralFigures, ProceduralSource, open_dataset, write_store
from lmkcore.data.procedural import JOINTS, SKELETON, figures


@pytest.fixture
def store(tmp_path):
    return write_store(tmp_path / "fig.h5", ProceduralSource(n=24, size=32, seed=5), 32,
                       splits={"fit": [f"figure_5_{i:06d}" for i in range(16)],
                               "val": [f"figure_5_{i:06d}" for i in range(16, 24)]})


def test_procedural_is_deterministic_by_seed_and_index():
    a, b = ProceduralFigures(8, 32, seed=3), ProceduralFigures(8, 32, seed=3)
    assert torch.equal(a[5]["image"], b[5]["image"]) and torch.equal(a[5]["keypoints"], b[5]["keypoints"])
    assert not torch.equal(a[5]["image"], a[6]["image"])
    assert not torch.equal(a[5]["image"], ProceduralFigures(8, 32, seed=4)[5]["image"])


def test_procedural_figures_are_drawn_where_the_joints_are():
    img, kp = figures(16, 48, seed=0)
    assert img.shape == (16, 3, 48, 48) and kp.shape == (16, len(JOINTS), 2)
    assert kp.abs().max() < 1  # every joint inside the image
    # the figure's pixels differ from the background: the joints' neighbourhoods change when the
    # same background is drawn without a figure, so compare the image at a joint with its corners
    px = ((kp + 1) / 2 * 47).round().long()
    at_joint = img[torch.arange(16)[:, None], :, px[..., 1], px[..., 0]]  # (16, 14, 3)
    assert at_joint.std(1).mean() > 0.05  # joints are on textured, coloured parts
    assert all(0 <= a < len(JOINTS) and 0 <= b < len(JOINTS) for a, b in SKELETON)


def test_store_round_trip(store):
    src = ProceduralFigures(24, 32, seed=5)
    ds = LandmarkStore(store, split="val")
    assert len(ds) == 8 and ds.info.skeleton == [tuple(e) for e in SKELETON]
    item = ds[0]
    ref = src[16]
    assert torch.allclose(item["keypoints"], ref["keypoints"], atol=1e-5)
    assert (item["image"] - ref["image"]).abs().max() <= 1 / 255 + 1e-6  # uint8 quantisation only
    assert ds.arrays("names")[0] == "figure_5_000016"
    assert np.allclose(ds.arrays("keypoints")[:, :, 2], 1)


def test_store_is_never_overwritten_silently(store):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_store(store, ProceduralSource(n=2, size=32), 32)
    write_store(store, ProceduralSource(n=2, size=32), 32, overwrite=True)
    assert len(LandmarkStore(store)) == 2


def test_store_unknown_split_and_bad_split_names(store, tmp_path):
    with pytest.raises(KeyError, match="no split 'test'"):
        LandmarkStore(store, split="test")
    with pytest.raises(ValueError, match="not in the source"):
        write_store(tmp_path / "x.h5", ProceduralSource(n=2, size=32), 32, splits={"val": ["nope"]})


def test_multi_worker_loading(store):
    ds = LandmarkStore(store, split="fit")
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["index"]) for b in batches) == 16
    assert torch.equal(torch.cat([b["index"] for b in batches]), torch.arange(16))


def test_open_dataset_procedural_splits_are_disjoint_seeds():
    fit, val = open_dataset("procedural", "fit", 32), open_dataset("procedural", "val", 32)
    assert fit.seed != val.seed and len(val) == 1000


def test_stick_figures_share_poses_and_draw_every_skeleton_edge():
    from lmkcore.data.procedural import STYLES

    capsule, kp = figures(4, 32, 7)
    stick, kp_stick = figures(4, 32, 7, "stick")
    assert torch.equal(kp, kp_stick) and not torch.allclose(capsule, stick)
    ds = open_dataset("procedural-stick", "val", 32)
    assert ds.style == "stick" and open_dataset("procedural", "val", 32).style == "capsule"
    with pytest.raises(ValueError, match="style must be one of"):
        figures(1, 32, 0, "blob")
    assert set(STYLES) == {"capsule", "stick"} and len(SKELETON) == 14


def test_in_memory_keeps_the_info_of_a_subsets_data_set(store):
    ds = LandmarkStore(store, split="fit")
    mem = InMemory(Subset(ds, range(5)))
    assert len(mem) == 5 and mem.info == ds.info and mem.info.skeleton
    assert torch.equal(mem[4]["image"], ds[4]["image"])
