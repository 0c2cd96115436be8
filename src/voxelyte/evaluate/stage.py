"""The evaluate stage: a phantom's registration and segmentation scored against its ground
truth (evaluation.json)."""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import xarray as xr

from voxelyte.contract import AXES, volume_voxel_size_um
from voxelyte.phantom import registration_residual_px, truth_in_registered_frame
from voxelyte.evaluate.qc import qc_figure
from voxelyte.evaluate.scores import drift_error, false_rim_summary, score, true_drift
from voxelyte.evaluate.truth_grid import segment_on_truth_grid

log = logging.getLogger(__name__)

SCORING = (
    "score_truth_grid: the segmentation's own accuracy: the corrected volume moved "
    "in-plane onto the ground-truth grid by minus the drift residual the registration "
    "left (true - estimated, sub-pixel, cubic spline), annotated there as the stage's "
    "volume was and segmented with the same settings. score_registered_frame: the "
    "stage's labels against each ground-truth slice shifted by the residual to the "
    "nearest voxel (the sub-pixel rest of the registration error, up to 0.5 voxel, "
    "stays in the score). score_plain_frame: the truth only cropped (all of the "
    "registration error included). Voxels from outside the truth or image are not "
    "scored.")
FRAMES = ("score_truth_grid", "score_registered_frame", "score_plain_frame")


def evaluate(corrected: xr.Dataset, labels: xr.Dataset, ground_truth: xr.Dataset,
             drift: pd.DataFrame, *, phases: dict, settings: dict, sample: str | None = None,
             num_workers: int = 1, qc_path=None) -> dict:
    """Score a phantom's registration and segmentation against its ground truth.

    The segmentation is scored three ways: on the ground-truth grid
    (:func:`segment_on_truth_grid`, the segmentation's own accuracy), in the registered frame
    and in the plain frame (:func:`truth_in_registered_frame`); the false SE rim at true
    CAM-pore contacts in the first two (:func:`false_rim_summary`); the drift table against
    the true drift (:func:`drift_error`).

    Parameters
    ----------
    corrected : xarray.Dataset
        corrected.zarr's dataset.
    labels : xarray.Dataset
        labels.zarr's dataset (the segment stage's labels).
    ground_truth : xarray.Dataset
        The phantom's ground_truth.zarr.
    drift : pandas.DataFrame
        drift.csv.
    phases : dict or PhaseTable
    settings : dict
        The sample's ``stages.segment`` (the truth-grid segmentation uses them).
    sample : str, optional
    num_workers : int
    qc_path : str or Path, optional
        Where to write the QC figure (:func:`voxelyte.evaluate.qc.qc_figure`).

    Returns
    -------
    dict
        evaluation.json: ``sample``, ``registration`` (drift error or None),
        ``segmentation`` (the three scores, ``scoring``, the false-rim summary),
        ``timings_s``.
    """
    stack = corrected["corrected"]
    coords = {axis: stack.coords[axis].values for axis in AXES}
    estimated = drift[["dy_px", "dx_px"]].to_numpy()
    truth_reg, truth_plain = truth_in_registered_frame(ground_truth, estimated, coords)
    residual = registration_residual_px(ground_truth, estimated, coords)
    predicted = np.asarray(labels["labels"].values)
    t0 = time.perf_counter()
    grid_labels, grid_truth, on_grid = segment_on_truth_grid(
        corrected, truth_plain, residual, phases, num_workers=num_workers, sample=sample,
        **settings)
    seconds = time.perf_counter() - t0
    scores = {"score_truth_grid": on_grid,
              "score_registered_frame": score(predicted, truth_reg, phases),
              "score_plain_frame": score(predicted, truth_plain, phases),
              "scoring": SCORING}
    rims = false_rim_summary({"truth_grid": (grid_labels, grid_truth),
                              "registered_frame": (predicted, truth_reg)}, phases)
    if rims is not None:
        scores["false_se_rim_at_true_cam_pore_contacts"] = rims
    for frame in FRAMES:
        log.info("%s: %s: IoU %s; volume-fraction error (pp) %s", sample, frame,
                 {k: round(v, 4) for k, v in scores[frame]["iou"].items()},
                 {k: round(v, 3) for k, v in scores[frame]["volume_fraction_error_pp"].items()})
    document = {"sample": sample,
                "registration": drift_error(drift, true_drift(ground_truth),
                                            volume_voxel_size_um(corrected, axes=("y", "x"))),
                "segmentation": scores, "timings_s": {"truth_grid_scoring_s": seconds}}
    if qc_path is not None:
        qc_figure(predicted, truth_reg, document, phases, qc_path)
    return document
