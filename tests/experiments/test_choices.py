"""Choice stores: studies of choices see the fit images only, never the scored split."""
import h5py
import numpy as np
import pytest

from lmkcore.data import ProceduralSource, write_store
from lmkcore.experiments.choices import choice_store


def test_choice_store_splits_the_fit_set_and_leaves_the_scored_split_out(tmp_path):
    names = [f"figure_5_{i:06d}" for i in range(20)]
    store = write_store(tmp_path / "fig.h5", ProceduralSource(n=20, size=16, seed=5), 16,
                        splits={"fit": names[:15], "val": names[15:]})
    out = choice_store(store, hold=5)
    assert out == tmp_path / "fig-choice.h5"
    with h5py.File(store, "r") as f:
        fit, val = set(f["splits/fit"][()]), set(f["splits/val"][()])
        assert sorted(f["splits"]) == ["fit", "val"]  # the store itself is not touched
    with h5py.File(out, "r") as f:
        assert sorted(f["splits"]) == ["hold", "train"]
        train, hold = set(f["splits/train"][()]), set(f["splits/hold"][()])
    assert len(hold) == 5 and not train & hold and train | hold == fit and not (train | hold) & val
    assert choice_store(store, hold=5) == out  # made once, then reused
    with h5py.File(out, "r") as f:
        assert set(f["splits/hold"][()]) == hold
    with pytest.raises(ValueError, match="5 held-out images, not a choice store holding out 4"):
        choice_store(store, hold=4)  # another split asked of an existing copy: said, not silently reused
    with pytest.raises(ValueError, match="only 15 fit images"):
        choice_store(write_store(tmp_path / "small.h5", ProceduralSource(n=20, size=16, seed=5), 16,
                                 splits={"fit": names[:15]}), hold=15)
    assert not np.any([p.suffix == ".tmp" for p in tmp_path.iterdir()])
