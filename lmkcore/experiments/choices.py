"""Studies of choices that never see the scored split: a copy of a store whose splits are the fit images only.

A choice (a config field, a schedule) picked by its score on the validation split is tuned to that split.
`choice_store` makes `<store>-choice.h5` beside a store: its fit images, split by a seeded permutation into
`train` (trained on, and the protocol's fit set) and `hold` (the protocol's test set); the store's `val` split
is not in the copy. Used by `lmkcore.experiments.sweep` (its default) and `tools/choice_run.py`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np

SPLITS = ("train", "hold")  # (fit split, scored split) of a choice store


def choice_store(store: str | Path, hold: int, seed: int = 0) -> Path:
    """`<store>-choice.h5`: the store's images with splits train / hold of its fit split only (made once)."""
    store = Path(store)
    out = store.with_name(f"{store.stem}-choice.h5")
    if out.exists():
        with h5py.File(out, "r") as f:
            have = sorted(f["splits"]) if "splits" in f else []
            if have != ["hold", "train"] or len(f["splits/hold"]) != hold:
                held = len(f["splits/hold"]) if "hold" in have else 0
                raise ValueError(f"{out} exists with splits {have} and {held} held-out images, not a choice store "
                                 f"holding out {hold}; delete it to make it again")
        return out
    with h5py.File(store, "r") as f:
        if "splits/fit" not in f:
            raise ValueError(f"{store} has no fit split to study choices on")
        fit = f["splits/fit"][()]
    if hold >= len(fit):
        raise ValueError(f"--hold {hold}: {store} has only {len(fit)} fit images")
    perm = np.random.default_rng(seed).permutation(fit)
    tmp = out.with_suffix(".tmp")
    try:
        shutil.copy(store, tmp)
        with h5py.File(tmp, "a") as f:
            del f["splits"]
            f.create_dataset("splits/train", data=np.sort(perm[hold:]))
            f.create_dataset("splits/hold", data=np.sort(perm[:hold]))
        tmp.rename(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
