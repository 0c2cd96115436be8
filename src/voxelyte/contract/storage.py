"""JSON conversion (one convention for non-finite numbers), atomic writers, zarr stores."""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import numpy as np

from voxelyte.contract.grid import AXES, volume_voxel_size_um
from voxelyte.errors import InputError


def to_jsonable(value: Any) -> Any:
    """A strict-JSON copy of ``value``.

    Mappings -> dicts with str keys; lists, tuples and arrays -> lists; numpy scalars -> Python
    numbers; paths -> str; **non-finite floats (NaN, ±inf) -> None** (JSON ``null``); other
    objects -> ``str(value)``.

    Parameters
    ----------
    value : any
        The value to convert (recursively).

    Returns
    -------
    JSON-serialisable value
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------- atomic writers
def atomic_write(path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place.

    Parameters
    ----------
    path : str or Path
        The file to write (parent folders are created).
    write : callable
        Writes the file at the path it is given.

    Returns
    -------
    Path
        ``path``; on failure the temporary file is removed and ``path`` is unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(text: str, path) -> Path:
    """Write text (UTF-8) atomically (:func:`atomic_write`).

    Parameters
    ----------
    text : str
        The content.
    path : str or Path
        The file to write.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(data: Any, path) -> Path:
    """Write ``to_jsonable(data)`` as indented strict JSON atomically.

    Parameters
    ----------
    data : any
        Converted with :func:`to_jsonable` (non-finite floats -> ``null``).
    path : str or Path
        The file to write.

    Returns
    -------
    Path
        ``path``.
    """
    text = json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(text, path)


def ome_ngff_attrs(ds) -> dict | None:
    """OME-NGFF 0.5 ``multiscales`` metadata of a dataset's volume variables.

    Every data variable whose last dimensions are (z, y, x), with at most one dimension before
    them (a channel or case axis), becomes one multiscale image of one level, its ``path`` the
    variable's name in the store: axes with µm units and the voxel size as the scale, the first
    voxel centre as the translation. napari / Fiji (through ome-zarr) then open the store at
    its physical scale; ``xarray.open_zarr`` keeps reading it as before.

    Parameters
    ----------
    ds : xarray.Dataset
        With µm coordinates z, y, x (or a ``voxel_size_um`` attribute and coordinates).

    Returns
    -------
    dict or None
        The value of the store's ``ome`` attribute; None when the dataset has no such variable
        or no voxel size.

    References
    ----------
    OME-NGFF specification 0.5, "multiscales" metadata (Moore et al., Nat. Methods 18, 1496
    (2021) for the format).
    """
    images = [name for name, v in ds.data_vars.items()
              if tuple(v.dims[-3:]) == AXES and v.ndim <= 4 and all(a in ds.coords for a in AXES)]
    if not images:
        return None
    try:
        scale_zyx = volume_voxel_size_um(ds)
    except InputError:             # a single-voxel axis without a voxel_size_um attribute
        return None
    origin = [float(ds[a].values[0]) for a in AXES]
    multiscales = []
    for name in images:
        lead = list(ds[name].dims[:-3])
        axes = [{"name": d, "type": "channel"} for d in lead] + [
            {"name": a, "type": "space", "unit": "micrometer"} for a in AXES]
        transforms = [{"type": "scale", "scale": [1.0] * len(lead) + list(scale_zyx)},
                      {"type": "translation", "translation": [0.0] * len(lead) + origin}]
        multiscales.append({"name": name, "axes": axes, "datasets": [
            {"path": name, "coordinateTransformations": transforms}]})
    return {"version": "0.5", "multiscales": multiscales}


def write_zarr_atomic(ds, path, *, num_workers: int = 1) -> None:
    """Write an xarray Dataset to the zarr store ``path`` (consolidated metadata) atomically.

    ``path`` only ever holds a complete store: write into ``<path>.tmp-<random>``, then replace.
    Dask-backed variables are computed chunk by chunk with the threaded scheduler limited to
    ``num_workers``; their dask chunks define the zarr chunks, and the in-memory dtypes are
    written (encodings inherited from an opened store are dropped). Volume variables are
    described as OME-NGFF images in the store's ``ome`` attribute (:func:`ome_ngff_attrs`). On
    failure the temporary store is removed and nothing at ``path`` changes.

    Parameters
    ----------
    ds : xarray.Dataset
        The data to write.
    path : str or Path
        The store (a folder); an existing store or file there is replaced.
    num_workers : int
        Threads for dask and zarr.
    """
    import dask
    import zarr

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{secrets.token_hex(6)}")
    ds = ds.copy(deep=False)
    ome = ome_ngff_attrs(ds)
    if ome is not None:
        ds = ds.assign_attrs(ome=ome)
    for variable in ds.variables.values():
        variable.encoding = {}
    try:
        with dask.config.set(scheduler="threads", num_workers=num_workers), \
                zarr.config.set({"threading.max_workers": num_workers}), \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not")
            ds.to_zarr(tmp, mode="w-", consolidated=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists() or final.is_symlink():
        final.unlink()
    os.replace(tmp, final)


def open_volume(path, *, sample: str | None = None):
    """Open a zarr volume store lazily (dask chunks = stored chunks).

    Parameters
    ----------
    path : str or Path
        The store (a folder).
    sample : str, optional
        Named in errors.

    Returns
    -------
    xarray.Dataset
        A missing or unreadable store raises InputError naming the path.
    """
    import xarray as xr

    store = Path(path)
    if not store.is_dir():
        raise InputError("volume store not found", sample=sample, source=str(store),
                         expected="a zarr store written by an earlier stage",
                         found="a file" if store.exists() else "nothing")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
            return xr.open_zarr(store, chunks={}, consolidated=None)
    except Exception as err:
        raise InputError(f"not a readable zarr store ({type(err).__name__}: {err})",
                         sample=sample, source=str(store),
                         expected="a zarr store written by an earlier stage",
                         found="a missing or corrupt store") from err
