"""The register stage: drift estimated on the raw stack and applied to every channel, the drift
table (``drift.csv``) and the QC figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from voxelyte.contract import atomic_write, channel_index, stage_dataset
from voxelyte.errors import InputError
from voxelyte.register.apply import apply_drift
from voxelyte.register.drift import DRIFT_COLUMNS, estimate_drift


def register(raw: xr.Dataset, *, reference_channel: str | None, method: str,
             upsample_factor: int, min_quality: float, min_valid_fraction: float, max_gap: int,
             smooth_sigma_px: float | None, crop_border, interpolation_order: int,
             num_workers: int = 1) -> tuple[xr.Dataset, pd.DataFrame]:
    """The register stage: :func:`estimate_drift` then :func:`apply_drift` (lazy).

    Parameters
    ----------
    raw : xarray.Dataset
        The ingest store, variable ``raw`` (channel, z, y, x).
    reference_channel, method, upsample_factor, min_quality, min_valid_fraction, max_gap, \
smooth_sigma_px
        See :func:`estimate_drift` (the sample's ``stages.register``; defaults in the schema).
    crop_border, interpolation_order
        See :func:`apply_drift`.
    num_workers : int
        Threads of the drift estimation.

    Returns
    -------
    xarray.Dataset
        Variable ``registered`` (shifted, cropped, lazy) with attrs ``registration`` (drift
        summary, crop, ``params``, ``n_invalid_slices``); the dataset keeps ``raw``'s attrs.
    pandas.DataFrame
        The drift table (``DRIFT_COLUMNS``).
    """
    params = {"reference_channel": reference_channel, "method": method,
              "upsample_factor": upsample_factor, "min_quality": min_quality,
              "min_valid_fraction": min_valid_fraction, "max_gap": max_gap,
              "smooth_sigma_px": smooth_sigma_px, "crop_border": crop_border,
              "interpolation_order": interpolation_order, "num_workers": num_workers}
    if "raw" not in raw.data_vars:
        raise InputError("raw store has no variable 'raw'", field="raw",
                         expected="variable 'raw' (channel, z, y, x)", found=list(raw.data_vars))
    stack = raw["raw"]
    drift = estimate_drift(stack, reference_channel=reference_channel, method=method,
                           upsample_factor=upsample_factor, min_quality=min_quality,
                           min_valid_fraction=min_valid_fraction, max_gap=max_gap,
                           smooth_sigma_px=smooth_sigma_px, num_workers=num_workers)
    registered = apply_drift(stack, drift, crop_border=crop_border,
                             interpolation_order=interpolation_order)
    registered.attrs["registration"]["params"] = params
    registered.attrs["registration"]["n_invalid_slices"] = int((~drift["valid"]).sum())
    return stage_dataset(registered, "registered", raw.attrs), drift


def write_drift_table(drift: pd.DataFrame, path) -> None:
    """Write ``drift.csv`` atomically: one row per slice, the columns of ``DRIFT_COLUMNS``.

    Parameters
    ----------
    drift : pandas.DataFrame
        Drift table of :func:`estimate_drift`.
    path : str or Path
        The CSV file (9 significant digits: the affine entries must reproduce the resampling to
        << 1 count).

    Returns
    -------
    None
    """
    table = drift.loc[:, list(DRIFT_COLUMNS)]
    atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.9g"))


def _xz_views(raw, registered, channel) -> tuple[np.ndarray, np.ndarray]:
    """xz slices (float32) at the central y of the raw stack, before and after registration."""
    def as_array(obj, name):
        array = obj[name] if isinstance(obj, xr.Dataset) else obj
        if "channel" in array.dims:
            array = array.isel(channel=channel_index(array, channel, strict=False))
        return array

    before = as_array(raw, "raw")
    after = as_array(registered, "registered")
    xz_before = np.asarray(before.isel(y=before.sizes["y"] // 2).values, dtype=np.float32)
    y_mid = float(before.coords["y"][before.sizes["y"] // 2]) if "y" in before.coords else None
    if y_mid is not None and "y" in after.coords:
        xz_after = np.asarray(after.sel(y=y_mid, method="nearest").values, dtype=np.float32)
    else:
        xz_after = np.asarray(after.isel(y=after.sizes["y"] // 2).values, dtype=np.float32)
    return xz_before, xz_after


def drift_qc_figure(raw, registered, drift: pd.DataFrame, path, *, channel=None) -> None:
    """QC figure: drift dy, dx (px) and quality per slice; xz slices before and after.

    Parameters
    ----------
    raw : xarray.Dataset or xarray.DataArray
        The raw stack (variable ``raw``).
    registered : xarray.Dataset or xarray.DataArray
        The registered stack (variable ``registered``).
    drift : pandas.DataFrame
        The drift table.
    path : str or Path
        Output figure (PNG / PDF by suffix).
    channel : str, optional
        Channel shown (default: BSE, else the first).

    Returns
    -------
    None
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    xz_before, xz_after = _xz_views(raw, registered, channel)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.plot(drift["z_index"], drift["dy_px"], label="dy")
    ax.plot(drift["z_index"], drift["dx_px"], label="dx")
    bad = ~np.asarray(drift["valid"], dtype=bool)
    if bad.any():
        ax.plot(drift["z_index"][bad], drift["dy_px"][bad], "rx", label="interpolated")
    ax.set_xlabel("slice z")
    ax.set_ylabel("drift (px)")
    ax.legend(loc="upper left")
    twin = ax.twinx()
    twin.plot(drift["z_index"], drift["quality"], color="0.6", lw=0.8)
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("quality")
    rotation = np.asarray(drift["rotation_deg"], dtype=float) if "rotation_deg" in drift \
        else np.zeros(len(drift))
    ax.set_title("estimated drift" + (f" (rotation at last slice {rotation[-1]:.2f} deg)"
                                      if np.any(rotation != 0) else ""))
    for ax, image, title in ((axes[1], xz_before, "xz before"), (axes[2], xz_after, "xz after")):
        lo, hi = np.nanpercentile(image, [1, 99]) if np.isfinite(image).any() else (0, 1)
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("z (slice)")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
