"""Shared helpers: input checks, slab reading, distance transform, JSON cleaning."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from voxelyte.errors import InputError

AXES = ("z", "y", "x")
#: Surface smoothing: Gaussian sigma in units of the smallest voxel size. With sigma = 1 the
#: 0.5-isosurface of a digitised sphere (r >= 20 voxels) is within 0.5 % of 4 pi r^2, while the
#: binary indicator (sigma = 0) over-estimates curved surfaces by ~8.7 % (staircase bias).
DEFAULT_SMOOTHING_VOXELS = 1.0


# --------------------------------------------------------------------------- input helpers
def _voxel(voxel_size_um) -> tuple[float, float, float]:
    if isinstance(voxel_size_um, dict):
        voxel_size_um = tuple(voxel_size_um.get(a) for a in AXES)
    try:
        v = tuple(float(s) for s in voxel_size_um)
    except (TypeError, ValueError):
        v = ()
    if len(v) != 3 or not all(math.isfinite(s) and s > 0 for s in v):
        raise InputError("voxel size must be three positive numbers (z, y, x) in µm",
                         field="voxel_size_um", expected="(dz, dy, dx) > 0", found=voxel_size_um)
    return v


def _axis_index(axis) -> int:
    if axis in AXES:
        return AXES.index(axis)
    if axis in (0, 1, 2):
        return int(axis)
    raise InputError("unknown axis", field="axis", expected="one of z, y, x", found=axis)


def _phase_table(phases: dict) -> dict[str, dict]:
    if not isinstance(phases, dict) or not phases:
        raise InputError("phase table is empty", field="phases",
                         expected="{name: {label: int, ...}}", found=phases)
    out, seen = {}, {}
    for name, spec in phases.items():
        spec = spec if isinstance(spec, dict) else {"label": spec}
        label = spec.get("label")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
            raise InputError("phase label must be a non-negative integer",
                             field=f"phases.{name}.label", expected="int >= 0", found=label)
        if int(label) in seen:
            raise InputError(f"label {label} used by phases '{seen[int(label)]}' and '{name}'",
                             field=f"phases.{name}.label", expected="unique labels", found=label)
        seen[int(label)] = name
        out[str(name)] = dict(spec, label=int(label))
    return out


def _shape(labels) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in np.shape(labels)) if not hasattr(labels, "shape") \
        else tuple(int(s) for s in labels.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("labels must be a non-empty 3D array (z, y, x)", field="labels",
                         expected="3 dimensions", found=shape)
    return shape


def _data(labels):
    """The underlying numpy / dask array of numpy, dask or xarray input (no copy)."""
    data = getattr(labels, "data", labels) if hasattr(labels, "dims") else labels
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.integer):
        raise InputError("labels must be an integer array", field="labels",
                         expected="integer dtype", found=str(data.dtype))
    return data


def _load(labels) -> np.ndarray:
    data = _data(labels)
    return data if isinstance(data, np.ndarray) else np.asarray(data.compute()
                                                                if hasattr(data, "compute") else data)


def _blocks(labels, axis: int = 0, size: int = 64, start: int = 0, stop: int | None = None,
            step: int = 1):
    """Yield (first index, numpy block) along ``axis``; dask/xarray input is read block-wise.
    ``step`` keeps every step-th plane (block starts are multiples of ``step``)."""
    data = _data(labels)
    n = data.shape[axis] if stop is None else stop
    size = max(step, size - size % step)
    for a in range(start, n, size):
        b = min(a + size, n)
        index = [slice(None)] * 3
        index[axis] = slice(a, b, step)
        block = data[tuple(index)]
        if not isinstance(block, np.ndarray):
            block = np.asarray(block.compute() if hasattr(block, "compute") else block)
        yield a, block


def _edt(mask: np.ndarray, voxel) -> np.ndarray:
    """Euclidean distance (µm, float32) of each True voxel to the nearest False voxel (the box
    boundary is not background)."""
    if mask.all():                       # no background at all: distance = the box extent
        return np.full(mask.shape, max(n * v for n, v in zip(mask.shape, voxel)), np.float32)
    try:
        import edt
        return edt.edt(np.ascontiguousarray(mask), anisotropy=tuple(voxel), black_border=False,
                       parallel=1)
    except ImportError:  # pragma: no cover
        return ndimage.distance_transform_edt(mask, sampling=voxel).astype(np.float32)



def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
