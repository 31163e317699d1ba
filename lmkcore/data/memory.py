"""A data set read once into memory: on a GPU the loader workers otherwise set the step rate
(procedural figures are rendered per item; an HDF5 store is read per item)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


class InMemory(Dataset):
    """Every item of `data` (dicts of tensors and numbers, as the workbook's data sets give), read once
    with `num_workers` loader workers and kept as stacked tensors; item i is `data[i]`, its numbers
    as 0-d tensors. `info` is the data set's (or, for a `Subset`, its parent's)."""

    def __init__(self, data: Dataset, num_workers: int = 0, batch_size: int = 256):
        if len(data) == 0:
            raise ValueError("InMemory: the data set is empty")
        self.info = getattr(data, "info", getattr(getattr(data, "dataset", None), "info", None))  # through a Subset
        parts: dict[str, list[Tensor]] = {}
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        for batch in loader:
            for k, v in batch.items():
                if not torch.is_tensor(v):
                    raise TypeError(f"InMemory: item field {k!r} is a {type(v).__name__}, not a tensor or number")
                parts.setdefault(k, []).append(v)
        self.fields = {k: torch.cat(v) for k, v in parts.items()}
        self.n = len(data)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {k: v[i] for k, v in self.fields.items()}
