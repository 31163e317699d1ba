"""lmkcore: one package for unsupervised object-landmark discovery.

Layout: `data` (sources -> HDF5 store -> datasets), `ops` (shared tensor ops), `nets`
(backbones, decoders), `methods` (one module per paper), `train` (one trainer), `checkpoint`
(checkpoint files), `runs` (finding runs and their snapshots), `provenance` (the commit), `eval` (one
protocol), `viz` (figures and the inspector), `bench` (profiles -> benchmark tables), and
`experiments` (one method's sweeps and oracle checks; nothing else imports them).
"""
__version__ = "0.1.0"
