"""Scores of phantom samples against their ground truth that no stage writes itself.

Drift error: the registration's per-slice drift ``d_z`` (drift.csv, ``dy_px``/``dx_px``) minus the
phantom's true drift (ground_truth.zarr ``drift_dy_px``/``drift_dx_px``), both with ``d_0 = 0``
and the convention of :data:`voxelyte.phantom.DRIFT_CONVENTION`; reported as the RMS and maximum
of the in-plane error length ``|e_z| = sqrt(e_y² + e_x²)`` over the valid slices, in px and µm.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def true_drift(ground_truth) -> pd.DataFrame | None:
    """The phantom's true drift per slice (z_index, dy_px, dx_px) from ground_truth.zarr."""
    if ground_truth is None or "drift_dy_px" not in ground_truth:
        return None
    return pd.DataFrame({"z_index": np.arange(ground_truth.sizes["z"]),
                         "dy_px": np.asarray(ground_truth["drift_dy_px"].values, float),
                         "dx_px": np.asarray(ground_truth["drift_dx_px"].values, float)})


def drift_error(drift: pd.DataFrame, truth: pd.DataFrame, voxel_yx_um=(1.0, 1.0)) -> dict | None:
    """RMS and max in-plane error of an estimated drift table against the true drift (px, µm),
    over valid slices present in both. None when they share no slice."""
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
