"""Registers the data-set layout fixtures of `data_layouts` for the tests in this folder."""
from data_layouts import (  # noqa: F401
    aflw_m_layout, aflw_r_layout, bbcpose_layout, celeba_layout, celeba_wild_layout, cub_layout,
    deepfashion_layout, folder_layout, frames_layout, h36m_layout, lsp_layout, lspet_layout, mtfl_layout,
    mtfl_original_layout, w300_layout)
