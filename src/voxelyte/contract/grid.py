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


def channel_names(stack) -> list[str]:
    """Channel names of a ``(channel, z, y, x)`` stack.

    Parameters
    ----------
    stack : xarray.DataArray
        A stack with a ``channel`` dimension, named by its ``channel`` coordinate or not.

    Returns
    -------
    list of str
        One name per channel, in stack order: the coordinate values as text, else the indices.
    """
    if "channel" in stack.coords:
        return [str(c) for c in stack.coords["channel"].values]
    return [str(i) for i in range(stack.sizes["channel"])]


def channel_index(stack, name, *, default: str = "BSE", field: str = "channel",
                  strict: bool = True, expected: str | None = None) -> int:
    """Index of a named channel of a ``(channel, z, y, x)`` stack.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.
    name : str or None
        Channel wanted.
    default : str
        Channel taken for ``name`` None or ``default``, and for any absent name unless
        ``strict``; where the stack has no such channel, the first one.
    field : str
        Field named in the error (and, ``_`` read as a space, its message).
    strict : bool
        Raise InputError for a name that is neither a channel nor ``default``.
    expected : str, optional
        What the error says was expected (default: one of the channel names).

    Returns
    -------
    int
        Index along ``channel``.
    """
    names = channel_names(stack)
    if name in names:
        return names.index(name)
    if strict and name not in (None, default):
        raise InputError(f"{field.replace('_', ' ')} not in the stack", field=field,
                         expected=expected or f"one of {names}", found=name)
    return names.index(default) if default in names else 0


def whole_slice_data(stack, *, all_channels: bool = False):
    """A stack's data as a dask array of whole-slice chunks.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``; data that are not dask are wrapped in chunks of one channel and
        8 slices.
    all_channels : bool
        Also join the channels into one chunk.

    Returns
    -------
    dask.array.Array
        Chunks span whole ``(y, x)`` slices (and every channel with ``all_channels``).
    """
    import dask.array as da

    data = stack.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(1, 8, -1, -1))
    return data.rechunk({0: -1, 2: -1, 3: -1} if all_channels else {2: -1, 3: -1})


def stage_dataset(array, name: str, attrs: dict):
    """A stage's result as the dataset it writes: one variable, the input's attrs, µm coords.

    Parameters
    ----------
    array : xarray.DataArray
        The stage's result.
    name : str
        Variable name.
    attrs : dict
        Dataset attributes (copied).

    Returns
    -------
    xarray.Dataset
        Variable ``name``; coordinates z, y, x carry ``units: um`` unless they name units.
    """
    out = array.rename(name).to_dataset()
    out.attrs = dict(attrs)
    for dim in AXES:
        if dim in out.coords:
            out[dim].attrs.setdefault("units", "um")
    return out
