# %% [markdown]
# # 09 · Inspect checkpoints interactively
# Pick an image with the slider, the arrows or the find box (index or name). Select several
# checkpoints (Ctrl / Shift + click) to compare them side by side on the same image: K=4 vs 10,
# an early vs a late snapshot. The toggles are the layers the selected methods declare, plus
# keypoints and annotations; "regressed" fits the shared protocol's linear map (`lmkcore.eval`)
# on the `fit` split. The keypoint menu shows one keypoint's heatmap and its distance to the
# nearest annotated landmark on this image. The widgets drive `inspector.state`
# (`lmkcore.viz.state.InspectorState`); without a checkpoint an untrained model is shown, with
# a note saying so.

# %% tags=["parameters"]
checkpoints: str = ""  # comma-separated checkpoint files or run directories ("": the newest under runs_dir, "all": every one)
runs_dir: str = "runs"  # where training writes run directories
data: str = "procedural"  # "procedural", a store (.h5) or a folder of images
split: str = "val"  # split of `data` to browse

# %%
from lmkcore.viz.inspector import inspect

inspector = inspect(checkpoints, data=data, split=split, runs_dir=runs_dir)
inspector
