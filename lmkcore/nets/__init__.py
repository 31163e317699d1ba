"""Backbones and decoders shared by the methods."""
from .blocks import Detector, UNet
from .generator import PartGenerator, generator_sizes
from .hourglass import Hourglass, PartEncoder, Residual

__all__ = ["Detector", "UNet", "Hourglass", "PartEncoder", "PartGenerator", "Residual", "generator_sizes"]
