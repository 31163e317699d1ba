"""Fixtures shared by the method tests."""
import pytest
import torch


@pytest.fixture
def images():
    """Four seeded random 32-px images, (4, 3, 32, 32)."""
    torch.manual_seed(1)
    return torch.rand(4, 3, 32, 32)
