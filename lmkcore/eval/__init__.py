"""One evaluation protocol for every method (`protocol`): what it consumes (`gather`: annotations,
discovered keypoints, test sets), regressor (`regression`), supervised head on frozen features (`head`),
metrics (`metrics`), the skeleton check (`graph`), per-run reports and generated benchmark tables
(`report`), and the plots of one result (`plots`); the skeleton check over a run's snapshots (`trace`,
a command: `python -m lmkcore.eval.trace`). Experiments on one method live in `lmkcore.experiments`."""
from .metrics import cumulative_curve, masked_mean, normaliser, parse_normalisation, pck, point_errors, summarise
from .gather import Annotations, annotations, check_keypoints, discover
from .graph import graph_skeleton, keypoint_joints, skeleton_recovery
from .head import HeadConfig, LandmarkHead, fit_head, predict_head
from .protocol import (evaluate, evaluate_checkpoint, evaluate_predictions, floor_table, mean_shape_floor, open_test_set,
                       score, untrained_floor)
from .regression import LinearFit, cross_validate, few_shot_indices, few_shot_sizes, fit_linear, predict, resolve_n_fit

__all__ = ["floor_table", "Annotations", "HeadConfig", "LandmarkHead", "LinearFit", "fit_head", "predict_head",
           "annotations", "check_keypoints", "cross_validate", "cumulative_curve",
           "discover", "evaluate", "evaluate_checkpoint", "evaluate_predictions", "few_shot_indices", "few_shot_sizes",
           "fit_linear", "masked_mean", "mean_shape_floor", "normaliser", "open_test_set", "parse_normalisation", "pck",
           "point_errors", "predict", "resolve_n_fit", "score", "graph_skeleton", "keypoint_joints", "skeleton_recovery",
           "summarise", "untrained_floor"]
