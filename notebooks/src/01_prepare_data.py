# %% [markdown]
# # 01 · Prepare data
# Converts a data set from its official layout (or the procedural figures) into the workbook's
# HDF5 store, with the saved fit / validation splits, and draws a contact sheet of samples with
# their annotations. Run headless: `papermill notebooks/01_prepare_data.ipynb out.ipynb -p dataset mtfl -p source_root /path/to/mtfl`.

# %% tags=["parameters"]
dataset: str = "procedural"  # procedural | procedural-stick | mtfl | lspet | lsp | celeba | aflw | 300w | cub | h36m | frames | deepfashion | bbcpose | folder
source_root: str = ""  # the data set's root folder in its official layout (unused for procedural)
out_path: str = "data/procedural-64.h5"  # the store to write
resolution: int = 64  # stored images are resolution x resolution
split: str = "saved"  # saved: the workbook's fixed fit/val splits; none: the whole set (e.g. a test set)
test_listing: str = ""  # MTFL-format listing to read instead of training.txt (a separate test set)
overwrite: bool = False  # replace an existing store
n_images: int = 0  # procedural figures only: number of figures (0: the default split sizes)
report_dir: str = "reports/data"  # where the contact sheet goes

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
from pathlib import Path

from IPython.display import Image, display

from lmkcore.data import LandmarkStore
from lmkcore.data.prepare import prepare
from lmkcore.viz import contact_sheet

# %%
path = prepare(dataset, source_root, out_path, resolution, split=split, overwrite=overwrite,
               test_listing=test_listing or None, **({"n": n_images} if n_images else {}))
store = LandmarkStore(path)
print(f"{path}: {len(store)} images of {store.resolution} px, {len(store.info.keypoint_names)} keypoints, "
      f"normalisation {store.info.normalisation}")

# %%
Path(report_dir).mkdir(parents=True, exist_ok=True)
sheet = contact_sheet(store, Path(report_dir) / f"{dataset}_contact_sheet.png", n=32)
display(Image(filename=str(sheet)))
