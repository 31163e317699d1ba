# %% [markdown]
# # 08 · Figures: learned skeletons, checkpoints side by side, failures, error curves
# Everything goes to `report_dir/figures/` (`lmkcore.viz.figures`): the learned graph on images
# and as a matrix beside the ground-truth skeleton, the same images with every checkpoint's
# keypoints, the test images with the largest error under the shared protocol (`lmkcore.eval`,
# fit on the `fit` split), and the cumulative error curves of every report in
# `report_dir/*/metrics.json` (written by 07_evaluate), one plot per data set, and one image
# with every layer each checkpoint's method declares. Without a checkpoint only the curves are
# drawn. Run headless:
# `papermill notebooks/08_visualize.ipynb out.ipynb -p checkpoints runs/<run>`.

# %% tags=["parameters"]
runs_dir: str = "runs"  # where training writes run directories
checkpoints: str = ""  # comma-separated checkpoint files or run directories ("": newest snapshot of every run)
data: str = "procedural"  # "procedural", a store (.h5) or a folder of images
split: str = "val"  # split shown and scored (the evaluation's test split)
report_dir: str = "reports"  # figures go to report_dir/figures; curves come from report_dir/*/metrics.json
n: int = 6  # images in the side-by-side grid
n_fit: int = 500  # fit-split images the failure gallery's regressor is fit on (0: all)
max_test: int = 200  # test images scored for the failure gallery (0: all)

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
from IPython.display import Image, Markdown, display

from lmkcore.viz.figures import make_all

made = make_all(runs_dir, checkpoints, data, split, report_dir, n=n, n_fit=n_fit or None, max_test=max_test or None)

# %%
for kind, paths in made.items():
    display(Markdown(f"### {kind.replace('_', ' ')}" + ("" if paths else ": nothing to show yet")))
    for path in paths:
        display(Markdown(f"`{path}`"), Image(filename=str(path)))
