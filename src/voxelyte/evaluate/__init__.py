"""The evaluate stage (phantoms only): the registration's drift and the segmentation scored
against the phantom's ground truth, on the ground-truth grid, in the registered frame and in
the plain frame."""
from voxelyte.phantom import registration_residual_px, truth_in_registered_frame
from voxelyte.evaluate.qc import qc_figure
from voxelyte.evaluate.scores import (RIM_DEFINITION, drift_error, false_rim_summary, score,
                                      true_drift)
from voxelyte.evaluate.stage import SCORING, evaluate
from voxelyte.evaluate.truth_grid import move_to_truth_grid, segment_on_truth_grid

__all__ = ["RIM_DEFINITION", "SCORING", "drift_error", "evaluate", "false_rim_summary",
           "move_to_truth_grid", "qc_figure", "registration_residual_px", "score",
           "segment_on_truth_grid", "true_drift", "truth_in_registered_frame"]
