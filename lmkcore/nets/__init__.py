"""Backbones and decoders shared by the methods."""
from .blocks import Detector, UNet

__all__ = ["Detector", "UNet"]
