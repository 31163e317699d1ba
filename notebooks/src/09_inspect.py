# %% [markdown]
# # 09 · Inspect checkpoints interactively
# Pick an image with the slider, the arrows or the find box (index or name). Select several
# checkpoints (Ctrl / Shift + click) to compare them on the same image, a row each: K=4 vs 10,
# an early vs a late snapshot, two methods. The toggles are the layers the selected methods
# declare (each drawn by its kind: maps over the image, a graph between the keypoints, ellipses,
# points, or a column of its own for images, maps and features), plus keypoints, annotations and
# "regressed", which fits the shared protocol's linear map (`lmkcore.eval`) on the `fit` split.
# The keypoint menu shows one keypoint's heatmap and its distance to the nearest annotated
# landmark on this image. The widgets drive `inspector.state` (`lmkcore.viz.state.InspectorState`).
# Without a checkpoint the notebook stops and says how to get one; `untrained=True` adds each
# selected checkpoint's method with fresh (seeded) weights, labelled "untrained", beside it.

# %% tags=["parameters"]
checkpoints: str = ""  # comma-separated checkpoint files or run directories ("": the newest under runs_dir, "all": every one)
runs_dir: str = "runs"  # where training writes run directories
data: str = "procedural"  # "procedural", a store (.h5) or a folder of images
split: str = "val"  # split of `data` to browse
untrained: bool = False  # also show each selected checkpoint's method untrained (same class and config, seeded)

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
from lmkcore.viz.inspector import inspect

inspector = inspect(checkpoints, data=data, split=split, runs_dir=runs_dir, untrained=untrained)
inspector

# %% [markdown]
# ## Your own images
# Upload photos or a short video: each goes through the checkpoints selected above, drawn as in the
# figures (the same as `python -m lmkcore.detect --checkpoint RUN IMAGES...` on the command line).

# %%
from lmkcore.viz.inspector import Upload

Upload(inspector)
