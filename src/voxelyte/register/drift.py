"""Drift estimation: neighbour-slice pairs measured in one streamed pass, linked into a chain
(untrusted pairs bridged to the last registered slice, invalid slices interpolated) and turned
into absolute per-slice transforms ``T_z`` (the ``drift.csv`` table)."""
from __future__ import annotations

import logging

import dask
import numpy as np
import pandas as pd
import xarray as xr

from voxelyte.contract import volume_voxel_size_um, whole_slice_data
from voxelyte.errors import InputError
from voxelyte.register.pairs import (METHODS, STACKREG_SMOOTH_SIGMA_PX, _as_czyx, _chunk_pairs,
                                     _reference_index, _stackreg_pair, correlate_pair,
                                     prepare_slice)

log = logging.getLogger(__name__)

#: Columns of ``drift.csv``. ``dy_px, dx_px`` (and ``_um``): displacement of the image centre
#: ``T_z(c) - c`` (the whole drift for "translation"); ``rotation_deg``: rotation angle of
#: ``T_z``; ``a_yy, a_yx, a_xy, a_xx, b_y, b_x``: the full affine ``T_z(p) = A p + b`` in pixel
#: index coordinates p = (y, x) (origin at the centre of the first pixel) with
#: ``raw[z](T_z(p)) = ideal[z](p)`` (identity A and b = d for "translation").
AFFINE_COLUMNS = ("a_yy", "a_yx", "a_xy", "a_xx", "b_y", "b_x")
DRIFT_COLUMNS = ("z_index", "z_um", "dy_px", "dx_px", "dy_um", "dx_um", "rotation_deg",
                 *AFFINE_COLUMNS, "quality", "valid", "note")


def _solve(nz: int, pairs: list, connected: np.ndarray, anchor: int) -> np.ndarray:
    """Weighted least squares d_a - d_b = m over the accepted pairs, d_anchor = 0."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import lsqr

    index = -np.ones(nz, dtype=int)
    unknown = [z for z in range(nz) if connected[z] and z != anchor]
    index[unknown] = np.arange(len(unknown))
    drift = np.zeros((nz, 2))
    if not unknown:
        return drift
    rows, cols, vals, rhs = [], [], [], []
    for r, (a, b, dy, dx, q) in enumerate(pairs):
        w = max(q, 1e-3)
        for z, sign in ((a, 1.0), (b, -1.0)):
            if index[z] >= 0:
                rows.append(r)
                cols.append(index[z])
                vals.append(sign * w)
        rhs.append((w * dy, w * dx))
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(pairs), len(unknown))).tocsr()
    rhs = np.asarray(rhs)
    for axis in range(2):
        drift[unknown, axis] = lsqr(matrix, rhs[:, axis], atol=1e-12, btol=1e-12)[0]
    return drift




def _stream_pairs(data, *, method: str, upsample_factor: int, min_valid_fraction: float,
                  smooth_sigma_px: float, num_workers: int):
    """Streamed pass over the (channels, z, Y, X) dask array: one task per z-chunk, with the
    preceding slice. Returns (notes per slice, neighbour pairs, valid per slice)."""
    tasks, starts = [], np.cumsum((0,) + data.chunks[1])
    for first, stop in zip(starts[:-1], starts[1:]):
        lead = min(1, int(first))
        tasks.append(dask.delayed(_chunk_pairs)(data[:, first - lead:stop], int(first), lead,
                                                upsample_factor, min_valid_fraction, method,
                                                smooth_sigma_px))
    with dask.config.set(scheduler="threads", num_workers=num_workers):
        results = dask.compute(*tasks)
    notes = [n for chunk_notes, _ in results for n in chunk_notes]
    pairs = [p for _, chunk_pairs in results for p in chunk_pairs]
    valid = np.array([n not in ("blank", "non-finite") for n in notes])
    for z in np.flatnonzero(~valid):
        log.warning("slice z=%d is %s: quality 0, drift interpolated from its neighbours",
                    z, notes[z])
    return notes, pairs, valid


def _bridger(data, *, method: str, upsample_factor: int, min_valid_fraction: float,
             smooth_sigma_px: float):
    """``bridge(z, last)``: the pair (z, last) measured directly, slices prepared once."""
    translation = method == "translation"
    prepared_cache: dict[int, np.ndarray | None] = {}

    def prepared(z):
        if z not in prepared_cache:
            prepared_cache[z] = prepare_slice(np.asarray(data[:, z]), min_valid_fraction,
                                              periodic=translation,
                                              smooth_sigma_px=smooth_sigma_px)[0]
        return prepared_cache[z]

    def bridge(z, last):
        if translation:
            m, q = correlate_pair(prepared(last), prepared(z), upsample_factor)
            return (z, last, m[0], m[1], q)
        pair, q = _stackreg_pair(prepared(last), prepared(z), method)
        return (z, last, pair, q)

    return bridge


def _link_slices(notes: list, pairs: list, valid: np.ndarray, bridge, *, min_quality: float,
                 max_gap: int):
    """Accept the pairs of at least ``min_quality``; a slice whose neighbour pair failed is
    bridged to the last linked slice (up to ``max_gap`` back), else marked invalid. Updates
    ``notes`` and ``valid``; returns (connected, quality, accepted pairs, anchor)."""
    nz = len(notes)
    by_slice: dict[int, list] = {}
    for p in pairs:
        by_slice.setdefault(p[0], []).append(p)
    connected = np.zeros(nz, dtype=bool)
    quality = np.zeros(nz)
    accepted = []
    anchor = int(np.flatnonzero(valid)[0]) if valid.any() else None
    if anchor is None:
        raise InputError("no slice can be registered: every slice is blank or non-finite",
                         field="raw", expected="slices with image content",
                         found=f"{nz} invalid slices")
    connected[anchor] = True
    last = anchor
    for z in range(anchor + 1, nz):
        if not valid[z]:
            continue
        good = [p for p in by_slice.get(z, []) if p[-1] >= min_quality and connected[p[1]]]
        if not good and z - last <= max_gap:  # bridge to the last registered slice
            candidate = bridge(z, last)
            if candidate[-1] >= min_quality:
                good = [candidate]
                notes[z] = f"bridged to z={last}"
                log.warning("slice z=%d registered against z=%d (neighbour pair below "
                            "min_quality %.2f)", z, last, min_quality)
        if not good:
            valid[z] = False
            notes[z] = "low quality"
            log.warning("slice z=%d: no pair reaches min_quality %.2f: quality 0, drift "
                        "interpolated", z, min_quality)
            continue
        accepted.extend(good)
        connected[z] = True
        quality[z] = max(p[-1] for p in good)
        last = z
    if nz > anchor + 1 and connected.sum() > 1:
        quality[anchor] = max(p[-1] for p in accepted if p[1] == anchor) \
            if any(p[1] == anchor for p in accepted) else 0.0
    return connected, quality, accepted, anchor


def _absolute_params(shape_yx: tuple, accepted: list, connected: np.ndarray, anchor: int,
                     translation: bool, notes: list) -> np.ndarray:
    """(nz, 6) absolute parameters per slice: centre displacement (dy, dx) and the entries of
    A - I (zero for translation), invalid slices interpolated, relative to the first slice."""
    nz = len(connected)
    ny, nx = shape_yx
    centre = np.array([(ny - 1) / 2.0, (nx - 1) / 2.0])
    params = np.zeros((nz, 6))
    if translation:
        params[:, :2] = _solve(nz, accepted, connected, anchor)
    else:
        absolute = {anchor: np.eye(3)}
        for z, b, pair, _ in accepted:  # one accepted pair per slice, in z order
            absolute[z] = pair @ absolute[b]
        for z, matrix in absolute.items():
            params[z, :2] = matrix[:2, :2] @ centre + matrix[:2, 2] - centre
            params[z, 2:] = (matrix[:2, :2] - np.eye(2)).ravel()
    z_all = np.arange(nz)
    for k in range(params.shape[1]):
        params[:, k] = np.interp(z_all, z_all[connected], params[connected, k])
    for z in np.flatnonzero(~connected):
        notes[z] = f"{notes[z]}; interpolated"
    params = params - params[0]
    if translation:
        params[:, 2:] = 0.0
    return params


def _drift_table(stack: xr.DataArray, params: np.ndarray, quality: np.ndarray,
                 connected: np.ndarray, notes: list, translation: bool) -> pd.DataFrame:
    """The ``DRIFT_COLUMNS`` table of the absolute parameters (``_absolute_params``)."""
    nz, ny, nx = stack.sizes["z"], stack.sizes["y"], stack.sizes["x"]
    vy, vx = volume_voxel_size_um(stack, ("y", "x"))
    centre = np.array([(ny - 1) / 2.0, (nx - 1) / 2.0])
    z_all = np.arange(nz)
    linear = params[:, 2:].reshape(nz, 2, 2) + np.eye(2)
    offset = params[:, :2] + centre - linear @ centre
    rotation_deg = np.degrees(np.arctan2(linear[:, 0, 1] - linear[:, 1, 0],
                                         linear[:, 0, 0] + linear[:, 1, 1]))
    z_um = (np.asarray(stack.coords["z"].values, dtype=float) if "z" in stack.coords
            else z_all.astype(float))
    table = pd.DataFrame({
        "z_index": z_all, "z_um": z_um, "dy_px": params[:, 0], "dx_px": params[:, 1],
        "dy_um": params[:, 0] * vy, "dx_um": params[:, 1] * vx, "rotation_deg": rotation_deg,
        "a_yy": linear[:, 0, 0], "a_yx": linear[:, 0, 1], "a_xy": linear[:, 1, 0],
        "a_xx": linear[:, 1, 1], "b_y": offset[:, 0], "b_x": offset[:, 1], "quality": quality,
        "valid": connected, "note": notes})
    if translation:  # exactly the shift, no rounding through the centre
        table["b_y"], table["b_x"] = params[:, 0], params[:, 1]
    return table


def estimate_drift(stack: xr.DataArray, *, reference_channel: str | None = "BSE",
                   method: str = "translation", upsample_factor: int = 100,
                   min_quality: float = 0.1, min_valid_fraction: float = 0.5, max_gap: int = 10,
                   smooth_sigma_px: float | None = None, num_workers: int = 1) -> pd.DataFrame:
    """Per-slice in-plane drift ``T_z`` of a stack, from neighbour-slice pairs.

    Streams z-chunks (each with the preceding slice) through the pair measurement of the
    reference channel (``"all"`` / None: channels standardised and averaged): "translation" by
    sub-pixel phase correlation (least squares over the pairs), "rigid" / "scaled_rotation" /
    "affine" by TurboReg (pystackreg), neighbour pairs composed ``T_z = P_z T_{z-1}``. Blank and
    non-finite slices are invalid (interpolated); a pair below ``min_quality`` is bridged to the
    last registered slice (up to ``max_gap`` back), else the slice is invalid.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)``, at least two slices, numeric.
    reference_channel : str or None
        Channel to register on; ``"all"`` / None: all channels combined. A missing default
        ``"BSE"`` falls back to the first channel.
    method : {'translation', 'rigid', 'scaled_rotation', 'affine'}
    upsample_factor : int
        Phase-correlation peak grid ``1 / upsample_factor`` px (translation only).
    min_quality : float
        Pairs of lower quality (normalised correlation peak, or Pearson correlation for
        TurboReg) are not trusted.
    min_valid_fraction : float
        Slices with a smaller fraction of finite voxels are invalid.
    max_gap : int
        Furthest slice back a bridge may reach.
    smooth_sigma_px : float or None
        Gaussian pre-smoothing (px); None: 0 for translation, ``STACKREG_SMOOTH_SIGMA_PX``
        for the TurboReg methods.
    num_workers : int
        Threads of the streamed pass.

    Returns
    -------
    pandas.DataFrame
        One row per slice, columns ``DRIFT_COLUMNS`` (``raw[z](T_z(p)) = ideal[z](p)``;
        translation: ``raw[z](y, x) = ideal[z](y - dy_z, x - dx_z)``; T = identity at the first
        slice); attrs ``method``, ``reference_channel``, ``upsample_factor``, ``shape_yx``.

    References
    ----------
    Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Opt. Lett. 33, 156.
    Thevenaz, P., Ruttimann, U. E. & Unser, M. (1998). IEEE Trans. Image Process. 7, 27.
    """
    stack = _as_czyx(stack)
    if method not in METHODS:
        raise InputError("registration method not available", field="method",
                         expected=f"one of {list(METHODS)}", found=method)
    if int(upsample_factor) < 1:
        raise InputError("upsample_factor must be >= 1", field="upsample_factor",
                         expected=">= 1", found=upsample_factor)
    upsample_factor, translation = int(upsample_factor), method == "translation"
    if smooth_sigma_px is None:
        smooth_sigma_px = 0.0 if translation else STACKREG_SMOOTH_SIGMA_PX
    settings = {"method": method, "upsample_factor": upsample_factor,
                "min_valid_fraction": min_valid_fraction,
                "smooth_sigma_px": float(smooth_sigma_px)}
    data = whole_slice_data(stack)[_reference_index(stack, reference_channel)]
    notes, pairs, valid = _stream_pairs(data, **settings, num_workers=num_workers)
    connected, quality, accepted, anchor = _link_slices(
        notes, pairs, valid, _bridger(data, **settings), min_quality=min_quality,
        max_gap=max_gap)
    params = _absolute_params((stack.sizes["y"], stack.sizes["x"]), accepted, connected, anchor,
                              translation, notes)
    table = _drift_table(stack, params, quality, connected, notes, translation)
    table.attrs = {"method": method, "reference_channel": reference_channel,
                   "upsample_factor": upsample_factor,
                   "shape_yx": [stack.sizes["y"], stack.sizes["x"]]}
    return table
