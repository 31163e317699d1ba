"""lmkcore: one package for unsupervised object-landmark discovery.

Layout: `data` (sources -> HDF5 store -> datasets), `ops` (shared tensor ops), `nets`
(backbones, decoders), `methods` (one module per paper), `train` (one trainer), `eval` (one
protocol), `viz` (figures and the inspector).
"""
__version__ = "0.1.0"
