"""A data set read once into memory: on a GPU the loader workers otherwise set the step rate
(procedural figures are rendered per item; an HDF5 store is read per item)."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset


class InMemory(Dataset):
    """Every item of `data` (or items `indices` of it), dicts of tensors, numbers and strings as the
    workbook's data sets give, read once with `num_workers` loader workers and kept: tensors and
    numbers stacked (numbers come back as 0-d tensors), strings (an image folder's names) as lists.
    Item i is `data[indices[i]]`, its `index` field the original one. `info` is the data set's (or,
    for a `Subset`, its parent's); `resolution` the side of its images.

    The training loop reads every item this way (a GPU's step rate is otherwise set by loader
    workers); the inspector and the figures hold a fit subset or a test gallery for several checkpoints."""

    def __init__(self, data: Dataset, indices=None, *, num_workers: int = 0, batch_size: int = 256):
        if indices is not None:
            data = Subset(data, [int(i) for i in indices])
        if len(data) == 0:
            raise ValueError("InMemory: the data set is empty")
        self.info = getattr(data, "info", getattr(getattr(data, "dataset", None), "info", None))  # through a Subset
        parts: dict[str, list] = {}
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        for batch in loader:
            for k, v in batch.items():
                if not (torch.is_tensor(v) or (isinstance(v, list) and all(isinstance(s, str) for s in v))):
                    raise TypeError(f"InMemory: item field {k!r} is a {type(v).__name__}, "
                                    "not a tensor, number or string")
                parts.setdefault(k, []).append(v)
        self.fields = {k: torch.cat(v) if torch.is_tensor(v[0]) else [s for b in v for s in b]
                       for k, v in parts.items()}
        self.n = len(data)
        image = self.fields.get("image")
        self.resolution = int(image.shape[-1]) if image is not None else getattr(data, "resolution", None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {k: v[i] for k, v in self.fields.items()}
