"""One class per data set, each reading that data set's official layout into `Sample`s.

Every source takes the data set's root folder (and options) plus `on_bad="raise" | "skip"`,
has `info` (a `SourceInfo`), `__len__`, `names` and `__iter__`. Annotation files are parsed in
`__init__`; images load while iterating. Bad input raises `BadInputError` naming file and line, or
with `on_bad="skip"` is skipped and reported (one warning, with the count and the list) when the
iteration ends.
"""
from .aflw import AFLW
from .bbcpose import BBCPose
from .celeba import MAFL, CelebA
from .cub import CUB
from .deepfashion import DeepFashion
from .folder import Folder
from .frames import Frames
from .h36m import H36M
from .lsp import DEFAULT_MARGIN, LSP
from .mtfl import MTFL
from .pts300w import Pts300W

__all__ = ["AFLW", "BBCPose", "CUB", "CelebA", "DEFAULT_MARGIN", "DeepFashion", "Folder", "Frames", "H36M",
           "LSP", "MAFL", "MTFL", "Pts300W"]
