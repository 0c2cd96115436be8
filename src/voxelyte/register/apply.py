"""Drift correction: every channel of slice z resampled with the same transform ``T_z`` (shift or
affine, cubic spline), then the border the resampling invalidated cropped."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from voxelyte.contract import whole_slice_data
from voxelyte.errors import InputError
from voxelyte.register.drift import AFFINE_COLUMNS
from voxelyte.register.pairs import _as_czyx


def _affine_of(drift: pd.DataFrame):
    """(A (nz, 2, 2), b (nz, 2), pure translation?) of a drift table: the affine columns when
    present, else identity and ``b = (dy_px, dx_px)``."""
    if all(c in drift.columns for c in AFFINE_COLUMNS):
        values = drift.loc[:, list(AFFINE_COLUMNS)].to_numpy(dtype=np.float64)
        linear, offset = values[:, :4].reshape(-1, 2, 2), values[:, 4:]
    else:
        offset = drift.loc[:, ["dy_px", "dx_px"]].to_numpy(dtype=np.float64)
        linear = np.broadcast_to(np.eye(2), (len(drift), 2, 2)).copy()
    if not (np.isfinite(linear).all() and np.isfinite(offset).all()):
        raise InputError("drift table has non-finite transforms", field="drift",
                         expected="finite dy_px, dx_px and affine columns", found="NaN / inf")
    return linear, offset, bool(np.all(linear == np.eye(2)))


def _affine_margin(out: dict, linear: np.ndarray, offset: np.ndarray, shape_yx) -> dict:
    """Grow the shift bounds ``out`` by the smallest common margin (px, every side) for which
    the four corners of the kept rectangle map inside the raw frame under every ``T_z``."""
    ny, nx = (int(n) for n in shape_yx)
    for extra in range(0, (min(ny, nx) + 1) // 2 + 1):
        y0, y1 = out["y"][0] + extra, ny - 1 - out["y"][1] - extra
        x0, x1 = out["x"][0] + extra, nx - 1 - out["x"][1] - extra
        corners = np.array([[y0, x0], [y0, x1], [y1, x0], [y1, x1]], dtype=float)
        mapped = np.einsum("zij,cj->zci", linear, corners) + offset[:, None, :]
        if (mapped.min(axis=(0, 1)) >= -1e-6).all() and mapped[..., 0].max() <= ny - 1 + 1e-6 \
                and mapped[..., 1].max() <= nx - 1 + 1e-6:
            break
    return {axis: (lo + extra, hi + extra) for axis, (lo, hi) in out.items()}


def crop_bounds_px(drift: pd.DataFrame, crop_border="auto", shape_yx=None) -> dict:
    """Pixels to drop at the (low, high) end of y and x after registering every slice.

    ``"auto"``, translation: registered[z](y) = raw[z](y + dy_z) is valid for -dy_z <= y <= Y -
    1 - dy_z, so ``low = ceil(max(0, -min dy))``, ``high = ceil(max(0, max dy))`` (same for x)
    — at most ceil(max |d|) per side. Rotation / scale / shear (``AFFINE_COLUMNS`` not the
    identity): the same bounds from the centre displacement, then grown by the smallest common
    margin for which the kept rectangle maps inside the raw frame under every ``T_z``.

    Parameters
    ----------
    drift : pandas.DataFrame
        Drift table (``dy_px``, ``dx_px`` and optionally ``AFFINE_COLUMNS``).
    crop_border : "auto", "none" or int
        ``"none"``: 0; an int n: n on every side.
    shape_yx : tuple of int, optional
        (Y, X), needed by "auto" for a rotated / affine table (default: ``drift.attrs``).

    Returns
    -------
    dict
        ``{"y": (low, high), "x": (low, high)}`` in px.
    """
    if crop_border == "none":
        return {"y": (0, 0), "x": (0, 0)}
    if crop_border == "auto":
        out = {}
        for axis, col in (("y", "dy_px"), ("x", "dx_px")):
            d = np.asarray(drift[col], dtype=float)
            out[axis] = (int(math.ceil(max(0.0, -d.min()) - 1e-6)),
                         int(math.ceil(max(0.0, d.max()) - 1e-6)))
        linear, offset, pure = _affine_of(drift)
        if pure:
            return out
        if shape_yx is None:
            shape_yx = drift.attrs.get("shape_yx")
        if shape_yx is None:
            raise InputError("auto crop of a rotated / affine registration needs the image "
                             "shape", field="shape_yx", expected="(Y, X)", found=None)
        return _affine_margin(out, linear, offset, shape_yx)
    if isinstance(crop_border, (int, np.integer)) and not isinstance(crop_border, bool) \
            and crop_border >= 0:
        n = int(crop_border)
        return {"y": (n, n), "x": (n, n)}
    raise InputError("invalid crop_border", field="crop_border",
                     expected='"auto", "none" or an integer >= 0', found=crop_border)


def _shift_block(block: np.ndarray, linear: np.ndarray, offset: np.ndarray, pure: bool,
                 order: int, out_dtype: np.dtype, block_info=None) -> np.ndarray:
    z0 = block_info[0]["array-location"][1][0]
    out = np.empty(block.shape, dtype=out_dtype)

    def warp(image, spline_order):
        if pure:  # registered[z](p) = raw[z](p + d_z)
            return ndimage.shift(image, -offset[z0 + i], order=spline_order, mode="nearest")
        return ndimage.affine_transform(image, linear[z0 + i], offset=offset[z0 + i],
                                        order=spline_order, mode="nearest")

    for i in range(block.shape[1]):
        for c in range(block.shape[0]):
            image = block[c, i].astype(np.float32)
            finite = np.isfinite(image)
            has_nan = not finite.all()
            if has_nan:  # shift the values with NaNs filled, then move the NaN mask along
                image = np.where(finite, image, np.median(image[finite]) if finite.any() else 0)
            moved = warp(image, order)
            if has_nan:
                lost = warp((~finite).astype(np.float32), 1) > 0.5
                moved[lost] = np.nan
            if out_dtype.kind in "iu":
                info = np.iinfo(out_dtype)
                moved = np.clip(np.rint(moved), info.min, info.max)
            out[c, i] = moved.astype(out_dtype)
    return out


def _registration_summary(drift: pd.DataFrame, linear: np.ndarray, bounds: dict,
                          interpolation_order: int) -> dict:
    """The ``registration`` attribute of a registered stack: drift summary and crop."""
    dy = np.asarray(drift["dy_px"], dtype=np.float64)
    dx = np.asarray(drift["dx_px"], dtype=np.float64)
    rotation = np.degrees(np.arctan2(linear[:, 0, 1] - linear[:, 1, 0],
                                     linear[:, 0, 0] + linear[:, 1, 1]))
    return {
        "drift_convention": "raw[z](T_z(p)) = ideal[z](p), p = (y, x) px; translation: raw[z]"
                            "(y, x) = ideal[z](y - dy_z, x - dx_z); slice z shifted by -d_z",
        "max_abs_dy_px": float(np.abs(dy).max()), "max_abs_dx_px": float(np.abs(dx).max()),
        "final_dy_px": float(dy[-1]), "final_dx_px": float(dx[-1]),
        "max_abs_rotation_deg": float(np.abs(rotation).max()),
        "crop_px": {axis: list(v) for axis, v in bounds.items()},
        "interpolation_order": int(interpolation_order),
        "method": drift.attrs.get("method", "translation"),
        "reference_channel": drift.attrs.get("reference_channel"),
    }


def apply_drift(stack: xr.DataArray, drift: pd.DataFrame, *, crop_border="auto",
                interpolation_order: int = 3) -> xr.DataArray:
    """Register every channel of slice z with the same transform, lazily.

    ``registered[z](p) = raw[z](T_z(p))``: for translation a shift by ``-d_z``
    (scipy.ndimage.shift), otherwise scipy.ndimage.affine_transform with ``A_z, b_z``
    (``AFFINE_COLUMNS``); float32, then rounded and clipped back to an integer input dtype; then
    the invalid border is cropped (:func:`crop_bounds_px`). One dask task per z-chunk of whole
    slices. Non-finite voxels of float stacks stay non-finite at their moved place.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)``.
    drift : pandas.DataFrame
        Drift table, one row per slice (:func:`estimate_drift` or ``drift.csv``).
    crop_border : "auto", "none" or int
        See :func:`crop_bounds_px`.
    interpolation_order : int
        Spline order of the resampling.

    Returns
    -------
    xarray.DataArray
        Same dims, dtype and coords (cropped); attrs kept plus ``registration`` (drift summary,
        crop).
    """
    stack_in = stack
    stack = _as_czyx(stack) if stack.sizes.get("z", 0) >= 2 else stack
    if stack.dims == ("z", "y", "x"):
        stack = stack.expand_dims(channel=["image"])
    if len(drift) != stack.sizes["z"]:
        raise InputError("drift table does not match the stack", field="drift",
                         expected=f"{stack.sizes['z']} rows (one per slice)", found=len(drift))
    dy = np.asarray(drift["dy_px"], dtype=np.float64)
    dx = np.asarray(drift["dx_px"], dtype=np.float64)
    if not (np.isfinite(dy).all() and np.isfinite(dx).all()):
        raise InputError("drift table has non-finite shifts", field="drift",
                         expected="finite dy_px, dx_px", found="NaN / inf")
    linear, offset, pure = _affine_of(drift)
    ny, nx = stack.sizes["y"], stack.sizes["x"]
    bounds = crop_bounds_px(drift, crop_border, shape_yx=(ny, nx))
    if sum(bounds["y"]) >= ny or sum(bounds["x"]) >= nx:
        raise InputError("crop removes the whole image", field="crop_border",
                         expected=f"< {ny} px in y and < {nx} px in x", found=bounds)
    data = whole_slice_data(stack)
    out_dtype = np.dtype(stack.dtype)
    shifted = data.map_blocks(_shift_block, linear, offset, pure, int(interpolation_order),
                              out_dtype, dtype=out_dtype,
                              meta=np.empty((0, 0, 0, 0), dtype=out_dtype))
    result = stack.copy(data=shifted)
    result = result.isel(y=slice(bounds["y"][0], ny - bounds["y"][1]),
                         x=slice(bounds["x"][0], nx - bounds["x"][1]))
    result.attrs = dict(stack.attrs)
    result.attrs["registration"] = _registration_summary(drift, linear, bounds,
                                                         interpolation_order)
    if stack_in.dims == ("z", "y", "x"):
        result = result.isel(channel=0, drop=True)
    return result
