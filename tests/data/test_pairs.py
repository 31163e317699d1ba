import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lmkcore.data import LandmarkStore, ProceduralFigures, ProceduralSource, write_store
from lmkcore.data.pairs import FramePairs, TwoViews
from lmkcore.data.sources import Frames
from lmkcore.ops.colour import adjust_colour
from lmkcore.ops.tps import map_points, warp_with

CLIPS = {"walk": 6, "jump": 3, "wave": 1}  # frames per clip


@pytest.fixture
def frames_root(tmp_path):
    """Frame folders whose pixels say which clip and frame they are: red = clip number / 10, green = frame / 10."""
    root = tmp_path / "frames"
    for c, (clip, n) in enumerate(CLIPS.items()):
        (root / clip).mkdir(parents=True)
        for f in range(n):
            px = np.zeros((8, 8, 3), np.uint8)
            px[..., 0], px[..., 1] = 25 * c, 25 * f
            Image.fromarray(px).save(root / clip / f"{f}.png")
    return root


def _which(image: torch.Tensor) -> tuple[int, int]:
    """(clip number, frame number) a frame's pixels encode."""
    return round(float(image[0].mean()) * 255 / 25), round(float(image[1].mean()) * 255 / 25)


def test_two_views_is_deterministic_by_seed_and_index():
    data = ProceduralFigures(n=6, size=32, seed=1)
    a, b, other = TwoViews(data, "lorenz", "lorenz", seed=3), TwoViews(data, "lorenz", "lorenz", seed=3), \
        TwoViews(data, "lorenz", "lorenz", seed=4)
    x, y = a[2], b[2]
    for k in ("view1", "view2", "colour1", "colour2"):
        assert torch.equal(x[k], y[k]), k
    assert torch.equal(x["warp2"]["coef"], y["warp2"]["coef"])
    assert torch.equal(a[2]["view1"], x["view1"])  # the same item again: no epoch or call-count state
    assert (x["view1"] - other[2]["view1"]).abs().mean() > 1e-3  # another seed, other views
    assert (x["view1"] - x["view2"]).abs().mean() > 1e-3  # the two views differ
    assert not torch.equal(a[3]["colour1"], x["colour1"])  # each index its own draw
    assert torch.equal(x["image"], data[2]["image"]) and x["index"] == 2  # the original item's fields stay
    # a loader with a worker gives the same items, batched, and the params collate for map_points
    batch = next(iter(DataLoader(a, batch_size=3, num_workers=1)))
    assert torch.equal(batch["view2"][2], x["view2"]) and torch.equal(batch["index"], torch.arange(3))
    assert map_points(batch["warp1"], batch["keypoints"]).shape == (3, 14, 2)


def test_two_views_items_replay_from_their_params():
    data = ProceduralFigures(n=2, size=32, seed=2)
    item = TwoViews(data, "dundar", "dundar", seed=0)[1]
    warped, _ = warp_with(item["image"][None], {k: v[None] for k, v in item["warp2"].items()})
    assert torch.allclose(adjust_colour(warped, item["colour2"][None])[0], item["view2"], atol=1e-6)
    first = TwoViews(data, "dundar", ("dundar", "none"), seed=0, identity_first=True)[1]  # Dundar's pair
    assert torch.allclose(first["view1"], adjust_colour(first["image"][None], first["colour1"][None])[0], atol=1e-6)
    assert torch.equal(first["warp1"]["coef"], torch.zeros_like(first["warp1"]["coef"]))  # not warped
    assert torch.equal(first["colour2"], torch.tensor([1.0, 1.0, 1.0, 0.0]))  # not recoloured


def test_two_views_names_a_bad_preset_at_once():
    with pytest.raises(ValueError, match="preset must be"):
        TwoViews(ProceduralFigures(n=2, size=16), "thewlis")


def test_store_items_carry_their_position_as_index_and_their_row(tmp_path):
    path = write_store(tmp_path / "fig.h5", ProceduralSource(n=12, size=16, seed=5), 16,
                       splits={"val": [f"figure_5_{i:06d}" for i in (9, 4, 7)]})
    val = LandmarkStore(path, split="val")
    assert [val[i]["index"] for i in range(3)] == [0, 1, 2]
    assert [val[i]["row"] for i in range(3)] == [9, 4, 7]
    assert val[-1]["index"] == 2
    with pytest.raises(IndexError):
        val[3]
    assert [ProceduralFigures(n=5, size=16)[i]["index"] for i in (0, 4)] == [0, 4]
    assert LandmarkStore(path).clips() is None  # not a frame source


def test_frame_pairs_come_from_one_clip_gap_apart(frames_root, tmp_path):
    store = LandmarkStore(write_store(tmp_path / "frames.h5", Frames(frames_root), 8))
    clips = store.clips()
    names = store.arrays("names")
    assert all(n.split("/")[0] == names[np.flatnonzero(clips == clips[i])[0]].split("/")[0]
               for i, n in enumerate(names))
    pairs = FramePairs(store, gap=2)
    assert len(pairs) == (6 - 2) + (3 - 2)  # the one-frame clip gives none
    seen = set()
    for i in range(len(pairs)):
        item = pairs[i]
        (ca, fa), (cb, fb) = _which(item["image"]), _which(item["image2"])
        assert ca == cb and fb - fa == 2 and item["index"] == i
        a, b = item["frames"].tolist()
        assert item["row"] == a and item["row2"] == b  # no split: positions are rows
        seen.add((ca, fa))
    assert len(seen) == len(pairs)
    # a split that lists frames out of order still pairs them in frame order
    order = [str(n) for n in np.random.default_rng(0).permutation(names)]
    path = write_store(tmp_path / "shuffled.h5", Frames(frames_root), 8, splits={"shuffled": order})
    shuffled = FramePairs(LandmarkStore(path, split="shuffled"), gap=1)
    assert len(shuffled) == 5 + 2
    for i in range(len(shuffled)):
        (ca, fa), (cb, fb) = _which(shuffled[i]["image"]), _which(shuffled[i]["image2"])
        assert ca == cb and fb - fa == 1
    # the Frames source itself gives the same pairs and frames
    direct = FramePairs(Frames(frames_root), gap=2, resolution=8)
    assert len(direct) == len(pairs)
    for i in (0, len(pairs) - 1):
        assert _which(direct[i]["image"]) == _which(pairs[i]["image"])
        assert _which(direct[i]["image2"]) == _which(pairs[i]["image2"])


def test_frame_pairs_with_a_gap_range_stay_in_the_clip_and_repeat_by_seed(frames_root, tmp_path):
    store = LandmarkStore(write_store(tmp_path / "frames.h5", Frames(frames_root), 8))
    pairs = FramePairs(store, gap=(2, 4), seed=1)
    assert len(pairs) == 6 + 2  # every frame with a partner 2 or more frames away (not the middle of 3)
    gaps = []
    for i in range(len(pairs)):
        (ca, fa), (cb, fb) = _which(pairs[i]["image"]), _which(pairs[i]["image2"])
        assert ca == cb and 2 <= abs(fb - fa) <= 4
        gaps.append(abs(fb - fa))
    assert len(set(gaps)) > 1  # the gap is drawn
    again = FramePairs(store, gap=(2, 4), seed=1)
    assert [again.pair(i) for i in range(len(again))] == [pairs.pair(i) for i in range(len(pairs))]


def test_frame_pairs_say_what_is_missing(frames_root, tmp_path):
    no_clips = LandmarkStore(write_store(tmp_path / "fig.h5", ProceduralSource(n=4, size=8), 8))
    with pytest.raises(ValueError, match="keeps no clip ids"):
        FramePairs(no_clips)
    with pytest.raises(ValueError, match="no clip has two frames 6 apart"):
        FramePairs(Frames(frames_root), gap=6, resolution=8)
    with pytest.raises(ValueError, match="needs `resolution`"):
        FramePairs(Frames(frames_root))
    with pytest.raises(ValueError, match="gap must be"):
        FramePairs(Frames(frames_root), gap=(3, 2), resolution=8)
    with pytest.raises(TypeError, match="LandmarkStore with clips or a Frames source"):
        FramePairs(ProceduralFigures(n=4, size=8))
