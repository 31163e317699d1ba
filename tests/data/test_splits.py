"""Fixed validation splits: `make_split`, the saved name lists, and the real MTFL / LSPET data."""
from __future__ import annotations

from collections import Counter

import pytest

from lmkcore.data.prepare import default_data_root
from lmkcore.data.splits import SPLIT_DIR, first_folder, load_names, make_split, saved_names, saved_split


def _names(n_a=70, n_b=30):
    return [f"a/{i:03d}.jpg" for i in range(n_a)] + [f"b/{i:03d}.jpg" for i in range(n_b)]


def test_make_split_is_deterministic_disjoint_and_complete():
    names = _names()
    s = make_split(names, 10, seed=0)
    assert s == make_split(names, 10, seed=0) and s != make_split(names, 10, seed=1)
    assert len(s["val"]) == 10 and not set(s["val"]) & set(s["fit"])
    assert sorted(s["fit"] + s["val"]) == sorted(names)
    assert s["fit"] == [n for n in names if n in set(s["fit"])]  # input order kept
    assert set(make_split(names[::-1], 10, seed=0)["val"]) == set(s["val"])  # order of input irrelevant


@pytest.mark.parametrize("n_val", [0, 7, 10, 33, 100])
def test_make_split_stratifies_proportionally(n_val):
    names = _names()
    s = make_split(names, n_val, seed=0, strata=[first_folder(n) for n in names])
    counts = Counter(first_folder(n) for n in s["val"])
    assert sum(counts.values()) == n_val
    for k, size in (("a", 70), ("b", 30)):
        assert abs(counts[k] - n_val * size / 100) < 1  # largest-remainder rounding


def test_make_split_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unique"):
        make_split(["x", "x"], 1)
    with pytest.raises(ValueError, match="n_val"):
        make_split(["x"], 2)
    with pytest.raises(ValueError, match="strata"):
        make_split(["x", "y"], 1, strata=["a"])


def test_saved_split_files():
    mtfl, lspet = saved_names("mtfl"), saved_names("lspet")
    assert len(mtfl) == len(set(mtfl)) == 1000 and len(lspet) == len(set(lspet)) == 1000
    assert Counter(first_folder(n) for n in mtfl) == {"lfw_5590": 542, "net_7876": 458}
    assert all(n.startswith("images/im") and n.endswith(".jpg") for n in lspet)
    assert load_names(SPLIT_DIR / "mtfl_val.txt") == mtfl


def test_saved_split_needs_every_name():
    names = saved_names("lspet")[:-1] + ["images/other.jpg"]
    with pytest.raises(ValueError, match="1 of 1000"):
        saved_split("lspet", names)
    s = saved_split("lspet", names, missing="drop")
    assert len(s["val"]) == 999 and s["fit"] == ["images/other.jpg"]
    with pytest.raises(KeyError, match="no saved split"):
        saved_split("cub", names)


def _real(sub):
    root = default_data_root() / sub
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set LMK_DATA_ROOT to the shared data folder)")
    return root


def test_saved_mtfl_split_on_the_real_data():
    from lmkcore.data.sources import MTFL
    names = MTFL(_real("mtfl")).names
    s = saved_split("mtfl", names)
    assert len(s["val"]) == 1000 and len(s["fit"]) == 6653
    total = Counter(first_folder(n) for n in names)
    assert total == {"lfw_5590": 4151, "net_7876": 3502}
    val = Counter(first_folder(n) for n in s["val"])
    for k in total:  # proportional to the two sources' sizes
        assert abs(val[k] - 1000 * total[k] / len(names)) < 1
    # the file is what make_split(seed 0) gives: it can be regenerated
    assert make_split(names, 1000, 0, [first_folder(n) for n in names])["val"] == s["val"]


def test_saved_lspet_split_on_the_real_data():
    from lmkcore.data.sources import LSP
    names = LSP(_real("lspet")).names
    s = saved_split("lspet", names)
    assert len(s["val"]) == 1000 and len(s["fit"]) == 7000
    assert make_split(names, 1000, 0)["val"] == s["val"]
