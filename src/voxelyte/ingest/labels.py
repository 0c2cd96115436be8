"""A segmented label volume as the entry of a sample: the file's values mapped onto the sample's
phase table, checked both ways, into the ``labels`` dataset the segment stage would write."""
from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr

from voxelyte.contract import phase_table
from voxelyte.errors import InputError
from voxelyte.ingest.stack import read_raw_stack


def label_values(data: da.Array) -> np.ndarray:
    """The distinct values of an integer volume, read chunk by chunk.

    Parameters
    ----------
    data : dask.array.Array
        Integer volume (z, y, x).

    Returns
    -------
    numpy.ndarray
        Sorted distinct values.
    """
    return np.asarray(da.unique(data).compute())


def check_label_values(found: np.ndarray, values: dict, *, sample: str, source: str) -> None:
    """Raise InputError unless the file's values and the value -> phase map agree exactly.

    Parameters
    ----------
    found : numpy.ndarray
        Distinct values in the label file.
    values : dict
        ``{file value: phase name}`` of the sample file.
    sample, source : str
        Named in the error (sample and label file).

    Returns
    -------
    None
    """
    mapped = {int(v) for v in values}
    present = {int(v) for v in found}
    if present - mapped:
        raise InputError("values in the label file that map to no phase", sample=sample,
                         source=source, field="labels.values",
                         expected=f"only the mapped values {sorted(mapped)}",
                         found=f"also {sorted(present - mapped)}")
    if mapped - present:
        raise InputError("mapped values absent from the label file", sample=sample,
                         source=source, field="labels.values",
                         expected=f"every mapped value in the file (it holds {sorted(present)})",
                         found=f"no voxel of {sorted(mapped - present)}")


def read_label_volume(spec: dict, phases: dict, *, sample: str,
                      voxel_size_um: dict | None = None, crop: dict | None = None,
                      chunks_zyx=(16, 1024, 1024)) -> xr.Dataset:
    """A segmented volume as the sample's ``labels`` (what the segment stage would write).

    Parameters
    ----------
    spec : dict
        The sample's ``labels`` entry: file spec (``format``, ``path`` and the format's fields,
        as an ``inputs`` channel) and ``values`` ``{file value: phase name}``.
    phases : dict
        The sample's phase table (label value of each phase).
    sample : str
        Sample name, for error messages.
    voxel_size_um : dict, optional
        Sample-file voxel size per axis (µm); an axis it lacks comes from the file metadata.
    crop : dict, optional
        Voxel index ranges ``[start, stop)`` per axis.
    chunks_zyx : tuple of int
        Chunk shape (z, y, x).

    Returns
    -------
    xarray.Dataset
        ``labels`` uint8 (z, y, x) in the phase table's label values, lazy, µm coordinates;
        attrs ``phases``, ``voxel_size_um``, ``voxel_size_source``, ``method`` ("label file")
        and ``label_file`` (path, format, dtype, values).
    """
    table = phase_table(phases)
    file_spec = {k: v for k, v in spec.items() if k != "values"}
    raw = read_raw_stack([dict(file_spec, name="labels")], sample=sample,
                         voxel_size_um=voxel_size_um, crop=crop, chunks_zyx=chunks_zyx)
    data = raw.data[0]
    if not np.issubdtype(data.dtype, np.integer):
        raise InputError("a label file must hold integers", sample=sample,
                         source=str(spec["path"]), field="labels.path",
                         expected="an integer image (one value per phase)", found=str(data.dtype))
    check_label_values(label_values(data), spec["values"], sample=sample,
                       source=str(spec["path"]))
    keys = np.array(sorted(int(v) for v in spec["values"]), dtype=np.int64)
    to_label = np.array([table[spec["values"][k]]["label"] for k in keys.tolist()], np.uint8)
    mapped = data.map_blocks(lambda b: to_label[np.searchsorted(keys, b)], dtype=np.uint8)
    labels = xr.DataArray(mapped, dims=("z", "y", "x"),
                          coords={a: raw.coords[a] for a in ("z", "y", "x")}, name="labels",
                          attrs={"description": "phase label per voxel (from a label file)",
                                 "phases": dict(table.labels)})
    file_info = dict(raw.attrs["channels"][0], values={str(k): spec["values"][k]
                                                       for k in keys.tolist()})
    file_info.pop("name", None)
    return labels.to_dataset().assign_attrs(
        phases=dict(table.labels), voxel_size_um=raw.attrs["voxel_size_um"],
        voxel_size_source=raw.attrs["voxel_size_source"], method="label file",
        label_file=file_info, crop=raw.attrs["crop"])
