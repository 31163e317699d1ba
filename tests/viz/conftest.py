"""Tiny trained runs for the inspector and figure tests (two methods, two snapshots each)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmkcore.profiles import COMPACT

# the tiniest AutoLink that still has every layer (K is set per run; the paper's objective, `profiles.COMPACT`)
TINY = dict(COMPACT, resolution=32, det_base=8, det_down=2, det_up=1, dec_base=8, dec_depth=2, block=8, warmup=1)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> Path:
    """`runs/` with autolink K=4 and K=6, trained 2 steps on procedural 32 px, snapshots at steps 1 and 2."""
    from lmkcore.data import open_dataset
    from lmkcore.methods import build
    from lmkcore.train import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    data = open_dataset("procedural", "train", 32)
    for k in (4, 6):
        torch.manual_seed(0)
        train(build("autolink", n_parts=k, **TINY), data,
              TrainConfig(steps=2, batch_size=4, num_workers=0, out_dir=str(out), progress=False, tensorboard=False,
                          ckpt_every=1))
    return out


@pytest.fixture
def tiny_untrained():
    from lmkcore.methods import build

    torch.manual_seed(0)
    return build("autolink", n_parts=4, **TINY).eval()
