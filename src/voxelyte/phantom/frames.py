"""A phantom's ground truth in the frames of the workflow's volumes: the drift the registration
left per slice, and the truth in the registered and in the plain frame."""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from voxelyte.contract import AXES, INVALID_LABEL as INVALID
from voxelyte.errors import InputError


def _truth_indices(truth: xr.Dataset, coords: dict) -> dict[str, np.ndarray]:
    """Index of each of ``coords``' z, y, x (µm) on the ground-truth grid."""
    index = {}
    for axis in AXES:
        t = np.asarray(truth[axis].values, dtype=np.float64)
        c = np.asarray(coords[axis], dtype=np.float64)
        step = t[1] - t[0] if t.size > 1 else 1.0
        idx = np.rint((c - t[0]) / step).astype(int)
        if idx.min() < 0 or idx.max() >= t.size or np.abs(t[idx] - c).max() > 0.01 * abs(step):
            raise InputError("corrected volume coords are not on the ground-truth grid",
                             field=axis, expected="coords of the ground truth",
                             found=[float(c.min()), float(c.max())])
        index[axis] = idx
    return index


def registration_residual_px(truth: xr.Dataset, estimated_drift_px: np.ndarray,
                             coords: dict) -> np.ndarray:
    """Drift the registration left in each slice of the corrected volume, ``d_z - e_z``.

    Parameters
    ----------
    truth : xarray.Dataset
        ground_truth.zarr (``drift_dy_px``, ``drift_dx_px``: the true drift d).
    estimated_drift_px : numpy.ndarray
        ``(nz, 2)`` estimated drift e (dy, dx) of every raw slice (drift.csv).
    coords : dict
        corrected.zarr's z, y, x (µm).

    Returns
    -------
    numpy.ndarray
        ``(z, 2)`` px: the registered slice shows the truth shifted by it.
    """
    true = np.stack([np.asarray(truth["drift_dy_px"].values),
                     np.asarray(truth["drift_dx_px"].values)], axis=1)
    est = np.asarray(estimated_drift_px, dtype=np.float64)
    if est.shape != true.shape:
        raise InputError("drift table does not match the ground truth", field="drift",
                         expected=f"{true.shape[0]} slices", found=est.shape[0])
    return (true - est)[_truth_indices(truth, coords)["z"]]


def truth_in_registered_frame(truth: xr.Dataset, estimated_drift_px: np.ndarray,
                              coords: dict) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth labels in the registered frame and in the plain frame, on ``coords``.

    Registration shifted raw slice z by ``-e_z``, the raw slice being the truth shifted by
    ``+d_z`` (``voxelyte.phantom.DRIFT_CONVENTION``): the registered slice shows the truth
    shifted by the residual ``d_z - e_z``. Each truth slice is shifted by it (nearest
    neighbour: the sub-pixel rest stays; voxels from outside the truth become ``INVALID``),
    then the corrected volume's coords are picked. Plain frame: the truth only cropped.

    Parameters
    ----------
    truth : xarray.Dataset
        ground_truth.zarr (``labels``, true drift).
    estimated_drift_px : numpy.ndarray
        ``(nz, 2)`` estimated drift (dy, dx).
    coords : dict
        corrected.zarr's z, y, x (µm).

    Returns
    -------
    registered, plain : numpy.ndarray
        uint8 truth labels on ``coords``.
    """
    labels = np.asarray(truth["labels"].values)
    residual = registration_residual_px(truth, estimated_drift_px, coords)
    index = _truth_indices(truth, coords)
    reg = np.empty((index["z"].size, index["y"].size, index["x"].size), dtype=np.uint8)
    for i, z in enumerate(index["z"]):
        moved = ndimage.shift(labels[z], residual[i], order=0, mode="constant", cval=INVALID)
        reg[i] = moved[np.ix_(index["y"], index["x"])]
    plain = labels[np.ix_(index["z"], index["y"], index["x"])]
    return reg, plain
