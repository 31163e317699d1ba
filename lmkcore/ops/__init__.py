"""Tensor operations shared by every method: each written once, here."""
from .colour import COLOUR_PRESETS, ColourJitter, adjust_colour, colour_jitter, random_colour
from .coords import full_precision, grid, norm_to_pixels, norm_to_unit, pixels_to_norm, unit_to_norm
from .edges import edge_map, pair_index, segment_distance2
from .heatmaps import gaussian_maps, soft_argmax, soft_argmax_cov, spatial_softmax, spot_logits, spread_points
from .losses import loss_gain, reconstruction_loss, separation_loss
from .masking import block_mask
from .tps import (TPS_PRESETS, TpsPreset, jacobian, map_gaussians, map_points, random_params, random_tps_views,
                  sampling_grid, sampling_jacobian, unmap_points, warp_with)
from .views import two_views
from .warp import random_affine, random_tps, resize, tps_points, warp_images, warp_images_tps, warp_points

__all__ = ["resize", "full_precision", "grid", "norm_to_pixels", "norm_to_unit", "pixels_to_norm", "unit_to_norm", "edge_map",
           "pair_index", "segment_distance2", "gaussian_maps", "soft_argmax", "soft_argmax_cov",
           "spatial_softmax", "spot_logits", "spread_points", "reconstruction_loss", "separation_loss", "block_mask",
           "loss_gain", "random_affine", "random_colour",
           "random_tps", "tps_points", "warp_images", "warp_images_tps", "warp_points", "TPS_PRESETS",
           "TpsPreset", "jacobian", "map_gaussians", "map_points", "random_params", "random_tps_views", "sampling_grid",
           "sampling_jacobian", "unmap_points", "warp_with", "COLOUR_PRESETS", "ColourJitter", "adjust_colour",
           "colour_jitter", "two_views"]
