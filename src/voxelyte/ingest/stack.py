"""Channel stacks: open one channel lazily, or combine the sample's channels (cropped, with µm
coordinates at voxel centres) into the lazy ``raw`` DataArray ``(channel, z, y, x)``."""
from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import xarray as xr

from voxelyte.contract import AXES
from voxelyte.errors import InputError
from voxelyte.ingest.metadata import _resolve_voxel_size
from voxelyte.ingest.readers import _as_dask, _open_reader

log = logging.getLogger(__name__)


def open_channel(spec: dict, *, sample: str, chunk_z: int = 16) -> tuple[da.Array, dict | None]:
    """Open one channel lazily; the file is checked up front (bad input raises InputError).

    Parameters
    ----------
    spec : dict
        One entry of the sample file's ``inputs`` (``name``, ``format``, ``path`` and the
        format's fields).
    sample : str
        Sample name, for error messages.
    chunk_z : int
        Slices per dask chunk (one read task each).

    Returns
    -------
    dask.array.Array
        The ``(z, y, x)`` stack, chunked ``(chunk_z, -1, -1)``.
    dict or None
        Voxel size from the file's metadata, ``{"z":, "y":, "x":}`` in µm (only the axes it
        knows), or None.
    """
    reader, voxel_size_um = _open_reader(spec, sample)
    return _as_dask(reader, chunk_z), voxel_size_um


def _crop_ranges(crop: dict | None, shape: tuple, sample: str) -> list[tuple[int, int]]:
    ranges = [(0, n) for n in shape]
    for axis, bounds in (crop or {}).items():
        expected_axes = "one of z, y, x"
        if axis not in AXES:
            raise InputError("unknown crop axis", sample=sample, field=f"crop.{axis}",
                             expected=expected_axes, found=axis)
        n = shape[AXES.index(axis)]
        expected = (f"[start, stop] with 0 <= start < stop <= {n} "
                    f"(stack shape (z, y, x) = {tuple(shape)})")
        try:
            start, stop = (int(v) for v in bounds)
        except (TypeError, ValueError):
            raise InputError("crop range is not two voxel indices", sample=sample,
                             field=f"crop.{axis}", expected=expected, found=bounds) from None
        if not 0 <= start < stop <= n:
            raise InputError("crop range outside the stack or empty", sample=sample,
                             field=f"crop.{axis}", expected=expected, found=[start, stop])
        ranges[AXES.index(axis)] = (start, stop)
    return ranges


def _common_shape(opened: list, sample: str) -> tuple:
    """The stack shape all opened channels share (InputError naming the first that differs)."""
    first_spec, first_reader, _ = opened[0]
    for spec, reader, _ in opened[1:]:
        if reader.shape != first_reader.shape:
            raise InputError(
                f"channels '{first_spec['name']}' and '{spec['name']}' have different stack "
                f"shapes: {first_reader.shape} and {reader.shape}", sample=sample,
                source=f"{first_reader.path}, {reader.path}", field="inputs",
                expected=f"shape (z, y, x) {first_reader.shape} as channel "
                         f"'{first_spec['name']}'",
                found=f"{reader.shape} in channel '{spec['name']}'")
    return first_reader.shape


def _channel_info(opened: list) -> list[dict]:
    """The ``channels`` attribute: name, format, path, dtype, shape (and dataset, metadata
    voxel size) of every channel."""
    channel_info = []
    for spec, reader, voxel in opened:
        info = {"name": spec["name"], "format": spec["format"], "path": str(spec["path"]),
                "dtype": str(reader.dtype), "shape_zyx": list(reader.shape)}
        if spec.get("dataset"):
            info["dataset"] = spec["dataset"]
        if voxel:
            info["metadata_voxel_size_um"] = voxel
        channel_info.append(info)
    return channel_info


def read_raw_stack(channels: list[dict], *, sample: str, voxel_size_um: dict | None = None,
                   crop: dict | None = None, chunks_zyx=(16, 1024, 1024)) -> xr.DataArray:
    """Combine channel stacks into one lazy ``raw`` DataArray with µm coords at voxel centres.

    Parameters
    ----------
    channels : list of dict
        The sample file's ``inputs``: one spec per channel (see :func:`open_channel`); all
        channels must have the same stack shape.
    sample : str
        Sample name, for error messages.
    voxel_size_um : dict, optional
        Sample-file voxel size per axis (µm); an axis it lacks comes from the file metadata.
    crop : dict, optional
        Voxel index ranges ``[start, stop)`` per axis; only the cropped slices are read.
    chunks_zyx : tuple of int
        Chunk shape (z, y, x) of the result.

    Returns
    -------
    xarray.DataArray
        ``raw`` (channel, z, y, x), chunked ``(1, *chunks_zyx)``, dtype the channels' common
        type; attrs ``voxel_size_um``, ``voxel_size_source`` ("sample file", "file metadata" or
        "sample file + file metadata" when mixed per axis), ``channels``, ``crop``,
        ``source_shape_zyx``.
    """
    if not channels:
        raise InputError("no input channels", sample=sample, field="inputs",
                         expected="at least one channel", found=[])
    opened = [(spec, *_open_reader(spec, sample)) for spec in channels]
    full_shape = _common_shape(opened, sample)
    ranges = _crop_ranges(crop, full_shape, sample)
    sizes_um, size_source = _resolve_voxel_size(
        voxel_size_um, [(spec["name"], voxel) for spec, _, voxel in opened], sample)

    chunk_z, chunk_y, chunk_x = (int(c) for c in chunks_zyx)
    dtype = np.result_type(*(reader.dtype for _, reader, _ in opened))
    if any(reader.dtype != dtype for _, reader, _ in opened):
        log.info("sample '%s': channels of dtypes %s are stored as %s", sample,
                 [str(r.dtype) for _, r, _ in opened], dtype)
    stacks = [_as_dask(reader.window(ranges), chunk_z).rechunk((chunk_z, chunk_y, chunk_x))
              .astype(dtype, copy=False) for _, reader, _ in opened]
    data = da.stack(stacks)

    coords = {"channel": np.array([spec["name"] for spec, _, _ in opened], dtype=object)}
    for axis, (start, stop), size in zip(AXES, ranges, sizes_um):
        coords[axis] = xr.Variable(axis, (np.arange(stop - start) + start + 0.5) * size,
                                   attrs={"units": "um"})
    attrs = {"voxel_size_um": sizes_um, "voxel_size_source": size_source,
             "channels": _channel_info(opened),
             "crop": {axis: [start, stop] for axis, (start, stop) in zip(AXES, ranges)},
             "source_shape_zyx": list(full_shape)}
    return xr.DataArray(data, dims=("channel",) + AXES, coords=coords, name="raw", attrs=attrs)


