"""Data: sources (official layouts) -> HDF5 store -> torch datasets; plus procedural figures."""
from .memory import InMemory
from .procedural import PROCEDURAL, ProceduralFigures, ProceduralSource
from .source import BadInputError, Problems, Sample, Source, SourceInfo
from .store import LandmarkStore, store_info, write_store

# The procedural data sets' splits: disjoint seeds, fixed sizes.
PROCEDURAL_SPLITS = {"train": (0, 20000), "fit": (1, 2000), "val": (2, 1000), "test": (3, 1000)}


def open_dataset(data: str, split: str | None = None, resolution: int = 64):
    """A procedural data set by name (`PROCEDURAL`; split: train / fit / val / test) or the path of a
    store (split: its saved splits)."""
    if data in PROCEDURAL:
        seed, n = PROCEDURAL_SPLITS[split or "train"]
        return ProceduralFigures(n=n, size=resolution, seed=seed, style=PROCEDURAL[data])
    return LandmarkStore(data, split=split)


__all__ = ["BadInputError", "InMemory", "LandmarkStore", "ProceduralFigures", "ProceduralSource", "Problems", "Sample",
           "Source", "SourceInfo", "open_dataset", "store_info", "write_store", "PROCEDURAL", "PROCEDURAL_SPLITS"]
