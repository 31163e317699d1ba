"""Shared fixtures: tiny networks and the procedural data, so tests stay fast on 2 CPU cores."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.tiny import TINY_AUTOLINK

torch.set_num_threads(min(2, torch.get_num_threads()))

REPO = Path(__file__).resolve().parent.parent

def data_root() -> Path | None:
    """The real data (MTFL, LSPET), from LMK_DATA_ROOT or ../shared/data beside the repo."""
    root = Path(os.environ.get("LMK_DATA_ROOT", REPO.parent / "shared" / "data"))
    return root if root.is_dir() else None


@pytest.fixture
def tiny_config() -> dict:
    """Config fields of the tiny AutoLink (a fresh copy per test)."""
    return dict(TINY_AUTOLINK)


@pytest.fixture
def tiny_autolink():
    from lmkcore.methods import build

    torch.manual_seed(0)
    return build("autolink", **TINY_AUTOLINK)


@pytest.fixture
def procedural32():
    from lmkcore.data import open_dataset

    return open_dataset("procedural", split="train", resolution=32)
