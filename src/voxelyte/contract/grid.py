"""Axes, voxel sizes and the channel-stack view."""
from __future__ import annotations

import math

import numpy as np

from voxelyte.errors import InputError

#: Array axes of a volume, in storage order.
AXES = ("z", "y", "x")


def axis_index(axis) -> int:
    """Index (0, 1, 2) of an axis given by name (``'z'``, ``'y'``, ``'x'``) or index.

    Parameters
    ----------
    axis : str or int
        Axis name or index.

    Returns
    -------
    int
        The axis index in ``AXES``.
    """
    if axis in AXES:
        return AXES.index(axis)
    if axis in (0, 1, 2):
        return int(axis)
    raise InputError("unknown axis", field="axis", expected="one of z, y, x", found=axis)


def voxel_size_um(voxel_size) -> tuple[float, float, float]:
    """Voxel size (dz, dy, dx) in µm, checked.

    Parameters
    ----------
    voxel_size : sequence of 3 numbers or dict {z, y, x}
        Voxel edge lengths in µm (anisotropic allowed).

    Returns
    -------
    tuple of float
        ``(dz, dy, dx)``, each finite and > 0.
    """
    if isinstance(voxel_size, dict):
        voxel_size = tuple(voxel_size.get(a) for a in AXES)
    try:
        v = tuple(float(s) for s in voxel_size)
    except (TypeError, ValueError):
        v = ()
    if len(v) != 3 or not all(math.isfinite(s) and s > 0 for s in v):
        raise InputError("voxel size must be three positive numbers (z, y, x) in µm",
                         field="voxel_size_um", expected="(dz, dy, dx) > 0", found=voxel_size)
    return v


def volume_voxel_size_um(volume, axes=AXES) -> tuple[float, ...]:
    """Voxel size (µm) along ``axes`` of a volume written by a voxelyte stage.

    Parameters
    ----------
    volume : xarray.DataArray or xarray.Dataset
        A stage's volume: its ``voxel_size_um`` attribute [vz, vy, vx], else the spacing of its µm
        coordinates.
    axes : sequence of str
        Axes to report.

    Returns
    -------
    tuple of float
        Voxel size in µm per requested axis; neither attribute nor coordinates raise InputError.
    """
    sizes = volume.attrs.get("voxel_size_um")
    if isinstance(sizes, (list, tuple, np.ndarray)) and len(sizes) == 3:
        return tuple(float(sizes[AXES.index(axis)]) for axis in axes)
    out = []
    for axis in axes:
        coord = volume.coords.get(axis)
        if coord is None or coord.size < 2:
            raise InputError("volume has no voxel size", field="voxel_size_um",
                             expected="attrs voxel_size_um [vz, vy, vx] or µm coords",
                             found=f"no attribute and no {axis} coordinate spacing")
        out.append(abs(float(coord[1] - coord[0])))
    return tuple(out)


def as_channel_stack(stack):
    """A ``(channel, z, y, x)`` view of an image stack.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or a single ``(z, y, x)`` volume (one channel named "image").

    Returns
    -------
    xarray.DataArray
        Dimensions ``(channel, z, y, x)``; other dimensions raise InputError.
    """
    if stack.dims == ("z", "y", "x"):
        stack = stack.expand_dims(channel=["image"])
    if stack.dims != ("channel", "z", "y", "x"):
        raise InputError("stack has unexpected dimensions", field="dims",
                         expected="(channel, z, y, x) or (z, y, x)", found=stack.dims)
    return stack
