"""Scores of a phantom against its ground truth: IoU, confusion matrix and volume-fraction errors
of labels, the false SE rim at true CAM-pore contacts, and the registration's drift error."""
from __future__ import annotations

import numpy as np
import pandas as pd

from voxelyte.contract import phase_table
from voxelyte.segment import INVALID, rim_thickness

RIM_DEFINITION = (
    "SE voxels between CAM and pore (both within 3 voxels) where the truth has no SE in the "
    "3x3x3 neighbourhood; thickness t = d_pore + d_CAM - 1 (1: one voxel, 1.41: across a "
    "corner); unresolved voxels left out: r = max(d_pore, d_CAM) beyond the volume's faces, or "
    "true SE in the cube of half-width ceil(r) (triple lines); on the truth grid and in the "
    "registered frame (as the scores)")


def score(labels: np.ndarray, truth: np.ndarray, phases: dict) -> dict:
    """Labels scored against the truth on the voxels where it is valid (!= ``INVALID``).

    Parameters
    ----------
    labels, truth : numpy.ndarray
        Integer labels on the same grid.
    phases : dict or PhaseTable

    Returns
    -------
    dict
        ``iou`` per phase, ``confusion_matrix`` (rows truth, columns prediction; counts and
        row-normalised), volume fractions of truth and prediction and their error
        (percentage points), ``voxels_scored``.
    """
    labels_of = phase_table(phases).labels
    names = sorted(labels_of, key=labels_of.get)
    k = max(labels_of.values()) + 1
    cm_full = np.zeros(k * k, dtype=np.int64)
    for z0 in range(0, truth.shape[0], 32):  # slab by slab: bounded memory for big volumes
        tz, pz = np.asarray(truth[z0:z0 + 32]), np.asarray(labels[z0:z0 + 32])
        valid = tz != INVALID
        cm_full += np.bincount(tz[valid].astype(np.int64) * k
                               + np.minimum(pz[valid], k - 1).astype(np.int64),
                               minlength=k * k)[:k * k]
    cm_full = cm_full.reshape(k, k)
    vals = [labels_of[n] for n in names]
    cm = cm_full[np.ix_(vals, vals)]
    n = int(cm_full.sum())
    iou, vf_pred, vf_true, vf_err = {}, {}, {}, {}
    for i, name in enumerate(names):
        tp = cm[i, i]
        union = cm[i, :].sum() + cm[:, i].sum() - tp
        iou[name] = float(tp / union) if union else float("nan")
        vf_true[name] = float(cm[i, :].sum() / n)
        vf_pred[name] = float(cm[:, i].sum() / n)
        vf_err[name] = 100.0 * (vf_pred[name] - vf_true[name])
    rows = cm.sum(axis=1, keepdims=True)
    return {"phases": names, "iou": iou, "confusion_matrix": cm.tolist(),
            "confusion_matrix_row_normalised": (cm / np.maximum(rows, 1)).round(6).tolist(),
            "volume_fraction_truth": vf_true, "volume_fraction_predicted": vf_pred,
            "volume_fraction_error_pp": vf_err, "voxels_scored": n}


def false_rim_summary(frames: dict, phases: dict) -> dict | None:
    """The false electrolyte rim at true active-material-pore contacts (:func:`rim_thickness`
    with the truth): the SE rim at CAM-pore contacts of Cooper et al. 2022.

    Parameters
    ----------
    frames : dict
        Frame name -> (labels, truth) on one grid.
    phases : dict or PhaseTable
        Needs exactly one phase of each role pore, electrolyte and active_material
        (:meth:`voxelyte.contract.PhaseTable.role`).

    Returns
    -------
    dict or None
        Per frame the rim voxels, the thickest, the counts thicker than one voxel (also with
        the unresolved voxels), and ``definition``; None without those three roles.
    """
    table = phase_table(phases)
    found = [table.with_role(role) for role in ("pore", "electrolyte", "active_material")]
    if any(len(names) != 1 for names in found):
        return None
    low, middle, high = (table[names[0]]["label"] for names in found)
    rims = {}
    for frame, (seg_labels, truth_labels) in frames.items():
        kw = dict(low=low, middle=middle, high=high, truth=truth_labels)
        rim = rim_thickness(seg_labels, **kw)
        every = rim_thickness(seg_labels, exclude_unresolved=False, **kw)
        rims[frame] = {
            "voxels": int(rim.size),
            "max_thickness_voxels": float(rim.max()) if rim.size else 0.0,
            "voxels_thicker_than_1": int((rim > 1.5).sum()),
            "voxels_2_thick": int(((rim > 1.5) & (rim <= 2.5)).sum()),
            "voxels_thicker_than_1_unresolved_included": int((every > 1.5).sum())}
    return {**rims, "definition": RIM_DEFINITION}


def true_drift(ground_truth) -> pd.DataFrame | None:
    """The phantom's true drift per slice.

    Parameters
    ----------
    ground_truth : xarray.Dataset or None
        ground_truth.zarr (``drift_dy_px``, ``drift_dx_px``).

    Returns
    -------
    pandas.DataFrame or None
        ``z_index``, ``dy_px``, ``dx_px``; None without a true drift.
    """
    if ground_truth is None or "drift_dy_px" not in ground_truth:
        return None
    return pd.DataFrame({"z_index": np.arange(ground_truth.sizes["z"]),
                         "dy_px": np.asarray(ground_truth["drift_dy_px"].values, float),
                         "dx_px": np.asarray(ground_truth["drift_dx_px"].values, float)})


def drift_error(drift: pd.DataFrame, truth: pd.DataFrame, voxel_yx_um=(1.0, 1.0)) -> dict | None:
    """Error of an estimated drift table against the true drift.

    The error of slice z is the in-plane length ``|e_z| = sqrt(e_y² + e_x²)`` of the
    estimated minus the true drift (both ``d_0 = 0``, ``voxelyte.phantom.DRIFT_CONVENTION``),
    over the valid slices present in both.

    Parameters
    ----------
    drift : pandas.DataFrame
        drift.csv (``z_index``, ``dy_px``, ``dx_px``, optional ``valid``).
    truth : pandas.DataFrame
        :func:`true_drift`.
    voxel_yx_um : (float, float)
        Voxel size in y and x (µm).

    Returns
    -------
    dict or None
        ``drift_error_rms_px``, ``drift_error_max_px``, ``drift_error_rms_um``,
        ``drift_error_max_um``, ``drift_error_slices``; None when they share no slice.
    """
    if drift is None or truth is None:
        return None
    est = drift.copy()
    if "valid" in est:
        est = est[est["valid"].astype(str).str.lower().isin(["true", "1"])]
    merged = est.merge(truth, on="z_index", suffixes=("", "_true"))
    if merged.empty:
        return None
    ey = merged["dy_px"].to_numpy(float) - merged["dy_px_true"].to_numpy(float)
    ex = merged["dx_px"].to_numpy(float) - merged["dx_px_true"].to_numpy(float)
    err_px = np.hypot(ey, ex)
    err_um = np.hypot(ey * voxel_yx_um[0], ex * voxel_yx_um[1])
    return {"drift_error_rms_px": float(np.sqrt(np.mean(err_px ** 2))),
            "drift_error_max_px": float(err_px.max()),
            "drift_error_rms_um": float(np.sqrt(np.mean(err_um ** 2))),
            "drift_error_max_um": float(err_um.max()),
            "drift_error_slices": int(len(merged))}
