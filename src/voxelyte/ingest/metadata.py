"""Voxel sizes from file metadata (TIFF / ImageJ tags, HDF5 and zarr attributes, xarray
coordinates) and their resolution against the sample file's values."""
from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr

from voxelyte.contract import AXES
from voxelyte.errors import InputError

log = logging.getLogger(__name__)

#: Relative difference between sample-file and metadata voxel sizes that is worth a warning.
VOXEL_SIZE_MISMATCH_REL = 0.01
#: Length units found in file metadata -> factor to µm.
UNIT_TO_UM = {
    "um": 1.0, "µm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometers": 1.0, "micrometre": 1.0, "micrometres": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometers": 1e-3, "nanometre": 1e-3, "nanometres": 1e-3,
    "mm": 1e3, "millimeter": 1e3, "millimeters": 1e3, "millimetre": 1e3, "millimetres": 1e3,
    "cm": 1e4, "centimeter": 1e4, "centimetre": 1e4,
}
_TIFF_RESUNIT_CENTIMETER = 3


# --------------------------------------------------------------------------- voxel size metadata
def _unit_to_um(unit: object) -> float | None:
    if unit is None:
        return None
    text = str(unit).strip().lower().replace("\\u00b5", "µ").replace("\u03bc", "µ")
    return UNIT_TO_UM.get(text)


def _positive_sizes(values: dict) -> dict | None:
    sizes = {}
    for axis, value in values.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value > 0:
            sizes[axis] = value
    return sizes or None


def _voxel_size_from_attr(value: object) -> dict | None:
    """``voxel_size_um`` attribute as [z, y, x] or {"z":, "y":, "x":} -> dict, else None."""
    if isinstance(value, dict):
        return _positive_sizes({a: value[a] for a in AXES if a in value})
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) == 3:
        return _positive_sizes(dict(zip(AXES, value)))
    return None


def _tiff_voxel_size_um(tif, page) -> dict | None:
    """ImageJ: x/y from the resolution tags, z from ``spacing``, in the ImageJ ``unit``.
    Other TIFFs: x/y from the resolution tags only when ResolutionUnit is centimetre."""
    ij = tif.imagej_metadata if tif.is_imagej else None
    if ij:
        factor = _unit_to_um(ij.get("unit"))
    else:
        unit_tag = page.tags.get("ResolutionUnit")
        factor = 1e4 if unit_tag is not None and int(unit_tag.value) == _TIFF_RESUNIT_CENTIMETER \
            else None
    if factor is None:
        return None
    sizes = {}
    for axis, tag_name in (("y", "YResolution"), ("x", "XResolution")):
        tag = page.tags.get(tag_name)
        if tag is None:
            continue
        value = tag.value
        per_unit = value[0] / value[1] if isinstance(value, tuple) else float(value)
        if per_unit > 0:
            sizes[axis] = factor / per_unit
    if ij and ij.get("spacing") is not None:
        sizes["z"] = float(ij["spacing"]) * factor
    return _positive_sizes(sizes)


def _coords_voxel_size_um(dataset: xr.Dataset, variable: str) -> dict | None:
    """Spacing of evenly spaced 1D coords of an xarray variable (µm unless ``units`` says
    otherwise); dims are taken as z, y, x in order."""
    array = dataset[variable]
    sizes = {}
    for axis, dim in zip(AXES, array.dims):
        if dim not in array.coords or array.coords[dim].ndim != 1 or array.sizes[dim] < 2:
            continue
        coord = array.coords[dim]
        if coord.dtype.kind not in "iuf":
            continue
        factor = _unit_to_um(coord.attrs.get("units", "um"))
        steps = np.diff(np.asarray(coord.values, dtype=float))
        if factor is None or not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
            continue
        sizes[axis] = abs(float(steps[0])) * factor
    return _positive_sizes(sizes)


def _sample_voxel_size(voxel_size_um, sample: str) -> dict:
    if voxel_size_um is None:
        return {}
    given = (dict(voxel_size_um) if isinstance(voxel_size_um, dict)
             else dict(zip(AXES, voxel_size_um)))
    for axis, value in given.items():
        ok = axis in AXES and isinstance(value, (int, float, np.number)) and \
            math.isfinite(value) and value > 0
        if not ok:
            raise InputError("voxel size must be a positive number per axis z, y, x",
                             sample=sample, field=f"voxel_size_um.{axis}",
                             expected="a positive number of µm", found=value)
    return {axis: float(value) for axis, value in given.items()}


def _resolve_voxel_size(voxel_size_um, metadata: list[tuple[str, dict | None]],
                        sample: str) -> tuple[list[float], str]:
    """Per axis: the sample file's value, else the first channel's metadata value."""
    given = _sample_voxel_size(voxel_size_um, sample)
    from_files: dict[str, tuple[float, str]] = {}
    for channel, sizes in metadata:
        for axis, value in (sizes or {}).items():
            if axis not in from_files:
                from_files[axis] = (value, channel)
            elif abs(value - from_files[axis][0]) > VOXEL_SIZE_MISMATCH_REL * from_files[axis][0]:
                log.warning("sample '%s': file metadata of channels '%s' and '%s' disagree on "
                            "the %s voxel size: %.6g vs %.6g um (using the first)", sample,
                            from_files[axis][1], channel, axis, from_files[axis][0], value)
    sizes, sources, missing = [], set(), []
    for axis in AXES:
        if axis in given:
            sizes.append(given[axis])
            sources.add("sample file")
            if axis in from_files:
                meta, channel = from_files[axis]
                if abs(given[axis] - meta) > VOXEL_SIZE_MISMATCH_REL * given[axis]:
                    log.warning("sample '%s': voxel size %s = %.6g um from the sample file "
                                "differs by more than %.0f %% from the file metadata of channel "
                                "'%s' (%.6g um); using the sample file", sample, axis,
                                given[axis], 100 * VOXEL_SIZE_MISMATCH_REL, channel, meta)
        elif axis in from_files:
            sizes.append(from_files[axis][0])
            sources.add("file metadata")
        else:
            missing.append(axis)
    if missing:
        raise InputError(
            f"no voxel size for axis {', '.join(missing)}: neither the sample file nor the "
            "file metadata gives one", sample=sample, field="voxel_size_um",
            expected="voxel_size_um {z, y, x} in µm in the sample file",
            found={"sample file": given or None,
                   "file metadata": {a: v for a, (v, _) in from_files.items()} or None})
    source = " + ".join(s for s in ("sample file", "file metadata") if s in sources)
    return sizes, source


