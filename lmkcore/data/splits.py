"""Fixed validation splits, saved in the repository as name lists.

`splits/<dataset>_val.txt` holds one sample name a line (the names the data set's source yields,
e.g. `lfw_5590/Aaron_Eckhart_0001.jpg`, `images/im00001.jpg`). They were made once by `make_split`
from the shared copy of the real data and are committed so every run validates on the same images:

    mtfl_val.txt    1,000 of the 7,653 faces of training.txt, stratified over lfw_5590 / net_7876
                    in proportion to their sizes, seed 0
    lspet_val.txt   1,000 of the 8,000 LSPET images, seed 0

`saved_split(dataset, names)` turns a full name list into {"fit": the rest, "val": saved names}.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

SPLIT_DIR = Path(__file__).with_name("splits")
SAVED = {"mtfl": "mtfl_val.txt", "lspet": "lspet_val.txt"}


def first_folder(name: str) -> str:
    """Stratum of a name: its first path component ('lfw_5590/x.jpg' -> 'lfw_5590')."""
    return name.split("/", 1)[0] if "/" in name else ""


def make_split(names: Sequence[str], n_val: int, seed: int = 0,
               strata: Sequence[str] | None = None) -> dict[str, list[str]]:
    """{"fit", "val"}: `n_val` names drawn at random (deterministic by seed, independent of the order
    of `names`), proportionally from each stratum when `strata` (one label per name) is given
    (largest-remainder rounding, so the sizes add up to n_val). Both lists keep the input order."""
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    if not 0 <= n_val <= len(names):
        raise ValueError(f"n_val={n_val} must be in [0, {len(names)}]")
    labels = list(strata) if strata is not None else [""] * len(names)
    if len(labels) != len(names):
        raise ValueError(f"{len(labels)} strata for {len(names)} names")
    groups: dict[str, list[str]] = defaultdict(list)
    for name, label in zip(names, labels):
        groups[label].append(name)
    keys = sorted(groups)
    exact = np.array([n_val * len(groups[k]) / len(names) for k in keys]) if names else np.zeros(len(keys))
    sizes = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - sizes), kind="stable")[: n_val - sizes.sum()]:
        sizes[i] += 1
    rng = np.random.default_rng(seed)
    val: set[str] = set()
    for k, size in zip(keys, sizes):
        members = sorted(groups[k])
        val.update(members[i] for i in rng.permutation(len(members))[:size])
    return {"fit": [n for n in names if n not in val], "val": [n for n in names if n in val]}


def load_names(path: Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def save_names(path: Path, names: Sequence[str]) -> Path:
    Path(path).write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return Path(path)


def has_saved_split(dataset: str) -> bool:
    return dataset in SAVED


def saved_names(dataset: str) -> list[str]:
    """The saved validation names of `dataset`."""
    if dataset not in SAVED:
        raise KeyError(f"no saved split for {dataset!r} (have {sorted(SAVED)})")
    return load_names(SPLIT_DIR / SAVED[dataset])


def saved_split(dataset: str, names: Sequence[str], missing: str = "raise") -> dict[str, list[str]]:
    """{"fit": names not in the saved validation list, "val": saved names, in the order of `names`}.

    missing="raise": every saved name must be in `names` (else an error naming them);
    "drop": saved names absent from `names` are left out (the caller reports them).
    """
    saved = saved_names(dataset)
    present = set(names)
    absent = [n for n in saved if n not in present]
    if absent and missing == "raise":
        raise ValueError(f"saved split {SAVED[dataset]}: {len(absent)} of {len(saved)} validation names are "
                         f"not in the data, e.g. {absent[:3]}")
    val = set(saved)
    return {"fit": [n for n in names if n not in val], "val": [n for n in names if n in val]}
