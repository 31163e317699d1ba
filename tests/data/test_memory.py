"""`InMemory`: one class for the trainer (a whole data set, read with workers) and for the
inspector and figures (some items of a data set, kept for several checkpoints)."""
import pytest
import torch
from torch.utils.data import Dataset

from lmkcore.data import InMemory, ProceduralFigures


class Named(Dataset):
    """Items with a string field, as an image folder gives."""

    info = None

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"image": torch.full((3, 4, 4), float(i)), "index": i, "name": f"img_{i}.png"}


def test_chosen_items_keep_their_index_info_and_values():
    data = ProceduralFigures(n=12, size=16, seed=3)
    mem = InMemory(data, [7, 2, 9])
    assert len(mem) == 3 and mem.info == data.info and mem.resolution == 16
    for j, i in enumerate([7, 2, 9]):
        item, ref = mem[j], data[i]
        assert int(item["index"]) == i
        assert torch.equal(item["image"], ref["image"]) and torch.equal(item["keypoints"], ref["keypoints"])
    with pytest.raises(IndexError):
        mem[3]


def test_strings_stay_strings_and_bad_fields_and_empty_sets_raise():
    mem = InMemory(Named(), range(1, 4), batch_size=2)
    assert [mem[j]["name"] for j in range(3)] == ["img_1.png", "img_2.png", "img_3.png"]
    assert float(mem[2]["image"].mean()) == 3.0 and mem.resolution == 4
    with pytest.raises(ValueError, match="empty"):
        InMemory(Named(), [])

    class Bad(Named):
        def __getitem__(self, i):
            return {"image": torch.zeros(3, 4, 4), "meta": {"a": 1}}  # collated to a dict

    with pytest.raises(TypeError, match="'meta'"):
        InMemory(Bad())
