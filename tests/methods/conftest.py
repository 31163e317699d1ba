"""Fixtures shared by the method tests."""
import pytest
import torch

from lmkcore.methods import build


def seeded_build(name: str, tiny: dict, **overrides):
    """The method `name` with the tiny config `tiny` (and `overrides`), initialised after `torch.manual_seed(0)`."""
    torch.manual_seed(0)
    return build(name, **{**tiny, **overrides})


@pytest.fixture
def images():
    """Four seeded random 32-px images, (4, 3, 32, 32)."""
    torch.manual_seed(1)
    return torch.rand(4, 3, 32, 32)
