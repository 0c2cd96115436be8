"""Mid-plane slices of the stages' zarr stores, and the image-volumes section."""
from __future__ import annotations

import logging

import numpy as np

from voxelyte.contract import AXES
from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.html import figure_block, not_run, section, text_block

log = logging.getLogger(__name__)


def extent(coords_h, coords_v) -> tuple[float, float, float, float]:
    """Image extent of a plane from its pixel-centre coordinates.

    Parameters
    ----------
    coords_h, coords_v : array_like
        Horizontal and vertical coordinates (µm).

    Returns
    -------
    tuple
        (left, right, bottom, top) for ``imshow`` (vertical axis pointing down).
    """
    h = np.asarray(coords_h, float)
    v = np.asarray(coords_v, float)
    dh = (h[1] - h[0]) if h.size > 1 else 1.0
    dv = (v[1] - v[0]) if v.size > 1 else 1.0
    return (h[0] - dh / 2, h[-1] + dh / 2, v[-1] + dv / 2, v[0] - dv / 2)


def mid_planes(da) -> list[tuple]:
    """Orthogonal mid-planes of a volume.

    Parameters
    ----------
    da : xarray.DataArray
        ``(z, y, x)`` with µm coordinates (else voxel indices).

    Returns
    -------
    list of tuple
        For xy, xz and yz: (title, 2D array, extent, axis labels).
    """
    nz, ny, nx = (da.sizes[a] for a in AXES)
    coords = {a: (da[a].values if a in da.coords else np.arange(da.sizes[a])) for a in AXES}
    z0, y0, x0 = nz // 2, ny // 2, nx // 2
    return [
        (f"xy, z = {coords['z'][z0]:.2f} µm", np.asarray(da.isel(z=z0).values),
         extent(coords["x"], coords["y"]), ("x (µm)", "y (µm)")),
        (f"xz, y = {coords['y'][y0]:.2f} µm", np.asarray(da.isel(y=y0).values),
         extent(coords["x"], coords["z"]), ("x (µm)", "z (µm)")),
        (f"yz, x = {coords['x'][x0]:.2f} µm", np.asarray(da.isel(x=x0).values),
         extent(coords["y"], coords["z"]), ("y (µm)", "z (µm)")),
    ]


def open_store(path):
    """A stage's zarr store, opened lazily.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    xarray.Dataset
    """
    import xarray as xr

    return xr.open_zarr(path, consolidated=False)


def channel_planes(res: SampleResults, key: str, var: str) -> list[dict]:
    """Slice-figure rows (one per channel) of an image store.

    Parameters
    ----------
    res : SampleResults
    key : str
        Artefact key of the store ('raw', 'corrected').
    var : str
        The stack variable.

    Returns
    -------
    list of dict
        Rows for :func:`voxelyte.report.figures.slices_figure`; empty when the store is missing
        or unreadable (logged).
    """
    if key not in res.stores:
        return []
    try:
        da = open_store(res.stores[key])[var]
    except Exception as err:  # unreadable store: say so, do not fail the report
        log.warning("%s: cannot read %s: %s", res.name, res.stores[key], err)
        return []
    rows = []
    channels = list(da["channel"].values) if "channel" in da.dims else [None]
    for ch in channels:
        sub = da.sel(channel=ch) if ch is not None else da
        rows.append({"title": f"{key} {ch}" if ch is not None else key,
                     "planes": mid_planes(sub), "kind": "gray"})
    return rows


def volumes_section(res: SampleResults) -> dict:
    """The image-volumes section: mid-planes of the raw and corrected stacks.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    dict
        A section (:func:`voxelyte.report.html.section`).
    """
    if "raw" not in res.stores and "corrected" not in res.stores:
        return section("volumes", "Image volumes", [], missing=not_run("ingest"))
    rows = channel_planes(res, "raw", "raw") + channel_planes(res, "corrected", "corrected")
    uri = fg.slices_figure(rows, phase_labels={}, colors={})
    notes = []
    if "corrected" not in res.stores:
        notes.append(text_block(not_run("preprocess") + " Only the raw volume is shown."))
    return section("volumes", "Image volumes", [
        figure_block(uri, "Orthogonal mid-plane slices of the raw stack and of the corrected "
                     "volume (registered, brightness / shading / curtaining / contrast corrected; "
                     "its invalid border is cropped). Grey levels stretched to the 0.5–99.5 "
                     "percentiles per slice.", "orthogonal slices of raw and corrected volumes"),
        *notes])
