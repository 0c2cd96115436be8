"""Ingest and storage: raw channel stacks (multi-page TIFF, folder of TIFF slices, HDF5, raw
binary, zarr) into one lazy ``(channel, z, y, x)`` DataArray, and zarr volume stores written
atomically.

Reading streams: a stack becomes a dask array whose every task opens its file itself and reads
only its own z-range, so no stack ever sits in memory as a whole. Files are checked up front
(existence, 3D shape, numeric one-sample-per-pixel data, truncation) and every problem raises
:class:`voxelyte.errors.InputError` naming the sample, the channel, the file or field, what was
expected and what was found. Values are read as stored (no CF scaling of zarr inputs); data of
non-native byte order come back in native byte order with the same dtype otherwise.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import shutil
import threading
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from voxelyte.errors import InputError

log = logging.getLogger(__name__)

AXES = ("z", "y", "x")
FORMATS = ("tiff", "tiff_folder", "hdf5", "raw", "zarr")
FOLDER_FORMATS = ("tiff_folder", "zarr")
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
# --------------------------------------------------------------------------- errors
class _Where:
    """Who is being read (sample, channel, format, file): builds the InputErrors."""

    def __init__(self, sample: str, spec: dict):
        self.sample = sample
        self.channel = spec.get("name", "?")
        self.fmt = spec.get("format", "?")
        self.path = Path(spec["path"]) if spec.get("path") is not None else None

    def error(self, message: str, *, source: object = None, field: str | None = None,
              expected: str | None = None, found: object = None) -> InputError:
        src = str(source) if source is not None else (str(self.path) if self.path else None)
        return InputError(f"channel '{self.channel}' ({self.fmt}): {message}", sample=self.sample,
                          source=src, field=field, expected=expected, found=found)


def _check_numeric(dtype: np.dtype, where: _Where, source: object = None) -> None:
    if dtype.kind not in "iuf":
        raise where.error("image data are not numeric", source=source,
                          expected="an integer or float image", found=str(dtype))


def _check_3d(shape: tuple, where: _Where, source: object = None, hint: str = "") -> None:
    if len(shape) == 3:
        return
    what = "a 2D image" if len(shape) == 2 else f"a {len(shape)}D array"
    raise where.error(f"{what} where a 3D stack is expected{hint}", source=source,
                      expected="a 3D stack (z, y, x)", found=f"shape {tuple(shape)}")


# --------------------------------------------------------------------------- lazy readers
def _bounds(index_range: range) -> tuple[slice, slice]:
    """Step-1 slice covering ``index_range`` and the slice picking its entries from that block."""
    if len(index_range) == 0:
        return slice(0, 0), slice(0, 0)
    first, last = index_range[0], index_range[-1]
    low, high = min(first, last), max(first, last) + 1
    stop = last - low + (1 if index_range.step > 0 else -1)
    return slice(low, high), slice(first - low, stop if stop >= 0 else None, index_range.step)


class _StackReader:
    """Lazy (z, y, x) stack for ``dask.array.from_array``: ``reader[z, y, x]`` opens the file and
    reads only the requested slices. ``origin`` offsets the window (a crop) into the full stack.
    Holds only paths and plain values, so it pickles."""

    ndim = 3

    def __init__(self, where: _Where, full_shape: tuple, dtype: np.dtype):
        self.sample, self.channel, self.fmt = where.sample, where.channel, where.fmt
        self.path = str(where.path)
        self.full_shape = tuple(int(n) for n in full_shape)
        self.origin = (0, 0, 0)
        self.shape = self.full_shape
        self.stored_dtype = np.dtype(dtype)
        self.dtype = self.stored_dtype.newbyteorder("=")

    def window(self, ranges: list[tuple[int, int]]) -> "_StackReader":
        """A copy that shows only ``[start, stop)`` per axis (voxel indices of the full stack)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.origin = tuple(start for start, _ in ranges)
        view.shape = tuple(stop - start for start, stop in ranges)
        return view

    def token(self) -> str:
        stat = os.stat(self.path)
        return tokenize(type(self).__name__, self.path, self.origin, self.shape, str(self.dtype),
                        stat.st_mtime_ns, stat.st_size, self._token_extra())

    def _token_extra(self) -> object:
        return None

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        blocks, picks, drop = [], [], []
        for axis, (item, n, start) in enumerate(zip(key, self.shape, self.origin)):
            if isinstance(item, (int, np.integer)):
                index = int(item) + n if item < 0 else int(item)
                item = slice(index, index + 1)
                drop.append(axis)
            if not isinstance(item, slice):
                raise TypeError(f"{type(self).__name__} takes slices and integers, not {item!r}")
            block, pick = _bounds(range(*item.indices(n)))
            blocks.append(slice(block.start + start, block.stop + start))
            picks.append(pick)
        sizes = [b.stop - b.start for b in blocks]
        if 0 in sizes:
            data = np.empty(sizes, dtype=self.dtype)
        else:
            data = np.asarray(self._read(*blocks)).reshape(sizes)
        data = data[tuple(picks)]
        if data.dtype != self.dtype:
            data = data.astype(self.dtype)
        if drop:
            data = data.reshape([n for axis, n in enumerate(data.shape) if axis not in drop])
        return data

    def _read(self, z: slice, y: slice, x: slice) -> np.ndarray:
        """Read the block ``[z, y, x]`` (step-1 slices in full-stack indices)."""
        raise NotImplementedError

    def _slice_error(self, z: int, err: Exception, source: str | None = None) -> InputError:
        return InputError(
            f"channel '{self.channel}' ({self.fmt}): cannot read slice z={z} "
            f"(the file is truncated or corrupt): {type(err).__name__}: {err}",
            sample=self.sample, source=source or self.path,
            expected=f"{self.full_shape[0]} readable slices", found=f"slice {z} unreadable")


class _TiffReader(_StackReader):
    """Multi-page TIFF: memory-mapped when the series is contiguous and uncompressed, otherwise
    the pages of the z-range are decoded one call of ``TiffFile.asarray(key=...)``."""

    def __init__(self, where: _Where, full_shape: tuple, dtype: np.dtype, memmappable: bool,
                 tiff_flags: dict):
        super().__init__(where, full_shape, dtype)
        self.memmappable, self.tiff_flags = memmappable, tiff_flags

    def _read(self, z, y, x):
        import tifffile

        if self.memmappable:
            stack = tifffile.memmap(self.path, mode="r").reshape(self.full_shape)
            return np.array(stack[z, y, x])
        with tifffile.TiffFile(self.path, **self.tiff_flags) as tif:
            try:
                pages = tif.asarray(key=range(z.start, z.stop), series=0)
            except Exception as err:  # find the slice that fails, for the message
                for index in range(z.start, z.stop):
                    try:
                        tif.asarray(key=index, series=0)
                    except Exception as page_err:
                        raise self._slice_error(index, page_err) from page_err
                raise self._slice_error(z.start, err) from err
        return pages.reshape((z.stop - z.start,) + self.full_shape[1:])[:, y, x]


class _TiffFolderReader(_StackReader):
    """Folder of single-image TIFF files, one per slice, in natural-sort order."""

    def __init__(self, where: _Where, full_shape: tuple, dtype: np.dtype, files: list[str]):
        super().__init__(where, full_shape, dtype)
        self.files = files

    def _token_extra(self):
        return [(f, os.stat(f).st_mtime_ns) for f in self.files]

    def _read(self, z, y, x):
        import tifffile

        out = np.empty((z.stop - z.start, y.stop - y.start, x.stop - x.start),
                       dtype=self.stored_dtype)
        for i, index in enumerate(range(z.start, z.stop)):
            try:
                image = tifffile.imread(self.files[index])
            except Exception as err:
                raise self._slice_error(index, err, self.files[index]) from err
            out[i] = image.reshape(self.full_shape[1:])[y, x]
        return out


class _Hdf5Reader(_StackReader):
    def __init__(self, where: _Where, full_shape: tuple, dtype: np.dtype, dataset: str):
        super().__init__(where, full_shape, dtype)
        self.dataset = dataset

    def _token_extra(self):
        return self.dataset

    def _read(self, z, y, x):
        import h5py

        with h5py.File(self.path, "r") as h5:
            return h5[self.dataset][z, y, x]


class _RawReader(_StackReader):
    def __init__(self, where: _Where, full_shape: tuple, dtype: np.dtype, header_bytes: int):
        super().__init__(where, full_shape, dtype)
        self.header_bytes = header_bytes

    def _token_extra(self):
        return self.header_bytes

    def _read(self, z, y, x):
        stack = np.memmap(self.path, dtype=self.stored_dtype, mode="r", offset=self.header_bytes,
                          shape=self.full_shape)
        return np.array(stack[z, y, x])


class _ZarrReader(_StackReader):
    def __init__(self, where: _Where, full_shape: tuple, dtype: np.dtype, array_path: str):
        super().__init__(where, full_shape, dtype)
        self.array_path = array_path

    def token(self) -> str:  # a store is a folder: its mtime says little, its metadata more
        meta = [p for p in (Path(self.path) / self.array_path).glob("*")
                if p.name in ("zarr.json", ".zarray", ".zattrs")]
        return tokenize(super().token(), [(str(p), p.stat().st_mtime_ns) for p in meta])

    def _read(self, z, y, x):
        import zarr

        return zarr.open_array(self.path, path=self.array_path, mode="r")[z, y, x]


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


# --------------------------------------------------------------------------- openers per format
@contextlib.contextmanager
def _tifffile_problems():
    """Collect what tifffile logs at ERROR level in this thread (it logs, rather than raises,
    on broken page chains and inconsistent ImageJ metadata)."""
    records: list[str] = []
    thread = threading.get_ident()

    class Collect(logging.Handler):
        def emit(self, record):
            if record.thread == thread:
                records.append(record.getMessage())

    handler = Collect(level=logging.ERROR)
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _open_tiff_file(path: Path, where: _Where):
    """TiffFile and the flags it needs. Pages written one ``TiffWriter.write`` call each carry
    one 2D "shaped" series per page: those are read as one series of uniform pages."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
        if len(tif.series) > 1 and tif.is_shaped and tif.series[0].ndim == 2:
            tif.close()
            return tifffile.TiffFile(path, is_shaped=False), {"is_shaped": False}
        return tif, {}
    except Exception as err:
        raise where.error(f"not a readable TIFF file ({type(err).__name__}: {err})",
                          source=path) from err


def _inspect_tiff(path: Path, where: _Where) -> tuple:
    """Open a TIFF, check it; return (shape, dtype, memmappable, tifffile flags, voxel size)."""
    with _tifffile_problems() as problems:
        tif, flags = _open_tiff_file(path, where)
        with tif:
            if not tif.series:
                raise where.error("TIFF file holds no image", source=path,
                                  expected="a 3D stack (z, y, x)", found="no image series")
            series = tif.series[0]
            page = series.keyframe
            if page.samplesperpixel > 1:
                raise where.error(
                    "multi-sample-per-pixel (RGB) TIFF; save one grey-value channel per file "
                    "and list each as its own channel", source=path,
                    expected="1 sample per pixel", found=f"{page.samplesperpixel} samples per "
                    f"pixel (photometric {page.photometric.name})")
            shape, dtype = tuple(series.shape), np.dtype(series.dtype)
            file_size = tif.filehandle.size
            memmappable = bool(series.dataoffset is not None and page.is_memmappable
                               and not flags)
            if memmappable:
                end = series.dataoffset + series.size * dtype.itemsize
                if end > file_size:
                    raise where.error("TIFF file is truncated", source=path,
                                      expected=f"image data up to byte {end}",
                                      found=f"a file of {file_size} bytes")
            else:
                for index, tiff_page in enumerate(series.pages):
                    if tiff_page is None:
                        raise where.error(f"TIFF page of slice z={index} is missing (truncated or "
                                          "corrupt file)", source=path,
                                          expected=f"{len(series.pages)} pages",
                                          found=f"slice {index} missing")
                    end = max((o + c for o, c in zip(tiff_page.dataoffsets,
                                                     tiff_page.databytecounts)), default=0)
                    if end > file_size:
                        raise where.error(
                            f"TIFF file is truncated at slice z={index}", source=path,
                            expected=f"data of slice {index} up to byte {end}",
                            found=f"a file of {file_size} bytes")
            declared = (tif.imagej_metadata or {}).get("images") if tif.is_imagej else None
            found_images = math.prod(shape[:-2]) if len(shape) > 2 else 1
            if declared is not None and int(declared) > found_images:
                raise where.error("TIFF file is truncated or corrupt", source=path,
                                  expected=f"{declared} images (ImageJ metadata)",
                                  found=f"{found_images} readable")
            voxel = _tiff_voxel_size_um(tif, page)
    broken = [m for m in problems if "invalid page offset" in m or "corrupt" in m]
    if broken:
        raise where.error("TIFF file is truncated or corrupt", source=path,
                          expected="a complete chain of TIFF pages", found="; ".join(broken))
    _check_numeric(dtype, where, path)
    return shape, dtype, memmappable, flags, voxel


def _open_tiff(spec: dict, where: _Where) -> tuple[_StackReader, dict | None]:
    shape, dtype, memmappable, flags, voxel = _inspect_tiff(where.path, where)
    _check_3d(shape, where, where.path,
              " (for a folder of one TIFF per slice use format 'tiff_folder')")
    return _TiffReader(where, shape, dtype, memmappable, flags), voxel


def _open_tiff_folder(spec: dict, where: _Where) -> tuple[_StackReader, dict | None]:
    from natsort import natsorted, ns

    folder, pattern = where.path, spec.get("pattern") or "*.tif*"
    files = natsorted((p for p in folder.glob(pattern)
                       if p.is_file() and not p.name.startswith(".")),
                      key=lambda p: p.relative_to(folder).as_posix(), alg=ns.PATH)
    if not files:
        names = sorted(p.name for p in folder.iterdir())
        raise where.error("no slice files in the folder match the pattern", field="pattern",
                          expected=f"files matching '{pattern}'",
                          found=(f"{len(names)} entries, e.g. {names[:5]}" if names
                                 else "an empty folder"))
    first_shape = first_dtype = None
    voxel = None
    for index, path in enumerate(files):
        shape, dtype, _, _, sizes = _inspect_tiff(path, where)
        if len(shape) != 2:
            raise where.error(f"slice file z={index} is not a single 2D image", source=path,
                              expected="one 2D image per file",
                              found=f"shape {shape}")
        if first_shape is None:
            first_shape, first_dtype, voxel = shape, dtype, sizes
        elif (shape, dtype) != (first_shape, first_dtype):
            raise where.error(
                f"slice z={index} differs from slice 0 ({files[0].name})", source=path,
                expected=f"shape {first_shape}, dtype {first_dtype}",
                found=f"shape {shape}, dtype {dtype}")
    return (_TiffFolderReader(where, (len(files),) + first_shape, first_dtype,
                              [str(p) for p in files]), voxel)


def _open_hdf5(spec: dict, where: _Where) -> tuple[_StackReader, dict | None]:
    import h5py

    try:
        h5 = h5py.File(where.path, "r")
    except Exception as err:
        raise where.error(f"not a readable HDF5 file ({type(err).__name__}: {err})") from err
    with h5:
        available = []
        h5.visititems(lambda name, node: available.append(f"{name} {node.shape} {node.dtype}")
                      if isinstance(node, h5py.Dataset) else None)
        listing = "; ".join(available) or "no datasets"
        name = spec.get("dataset")
        if not name:
            raise where.error("an HDF5 input needs the dataset path inside the file",
                              field="dataset", expected=f"one of: {listing}", found=name)
        node = h5.get(name)
        if not isinstance(node, h5py.Dataset):
            raise where.error("dataset not found in the HDF5 file", field="dataset",
                              expected=f"one of: {listing}", found=name)
        shape = tuple(node.shape)
        try:
            dtype = np.dtype(node.dtype)
        except TypeError as err:
            raise where.error("image data are not numeric", field="dataset",
                              expected="an integer or float image", found=str(node.dtype)) from err
        voxel = None
        if "element_size_um" in node.attrs:
            voxel = _voxel_size_from_attr(list(np.ravel(node.attrs["element_size_um"])))
    _check_numeric(dtype, where)
    _check_3d(shape, where, f"{where.path}:{name}")
    return _Hdf5Reader(where, shape, dtype, name), voxel


def _open_raw(spec: dict, where: _Where) -> tuple[_StackReader, dict | None]:
    for key in ("shape_zyx", "dtype"):
        if not spec.get(key):
            raise where.error("a raw binary input needs its stack shape and dtype", field=key,
                              expected="shape_zyx [z, y, x] and dtype (e.g. uint16)", found=None)
    shape = tuple(int(n) for n in spec["shape_zyx"])
    _check_3d(shape, where)
    try:
        dtype = np.dtype(spec["dtype"])
    except TypeError as err:
        raise where.error("unknown dtype", field="dtype", expected="a numpy dtype name",
                          found=spec["dtype"]) from err
    _check_numeric(dtype, where)
    order = spec.get("byte_order") or "little"
    if order not in ("little", "big"):
        raise where.error("unknown byte order", field="byte_order",
                          expected="'little' or 'big'", found=order)
    dtype = dtype.newbyteorder("<" if order == "little" else ">")
    header_bytes = int(spec.get("header_bytes") or 0)
    expected_bytes = header_bytes + math.prod(shape) * dtype.itemsize
    file_bytes = where.path.stat().st_size
    if file_bytes != expected_bytes:
        state = "truncated" if file_bytes < expected_bytes else "too large"
        raise where.error(
            f"raw file is {state} for the given shape, dtype and header", field="shape_zyx",
            expected=f"{expected_bytes} bytes ({header_bytes} header + {shape} x "
                     f"{dtype.itemsize} bytes)", found=f"{file_bytes} bytes")
    return _RawReader(where, shape, dtype, header_bytes), None


def _open_zarr(spec: dict, where: _Where) -> tuple[_StackReader, dict | None]:
    import zarr

    try:
        node = zarr.open(str(where.path), mode="r")
    except Exception as err:
        raise where.error(f"not a readable zarr store ({type(err).__name__}: {err})") from err
    name = spec.get("dataset") or ""
    frame = None  # the store as an xarray Dataset, when it is one (for coords)
    if isinstance(node, zarr.Group):
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = xr.open_zarr(where.path, chunks=None, decode_cf=False, consolidated=None)
        arrays = [path for path, member in node.members(max_depth=None)
                  if isinstance(member, zarr.Array)]
        if not name:
            candidates = list(frame.data_vars) if frame is not None else arrays
            if len(candidates) != 1:
                raise where.error("the store holds several arrays: name one", field="dataset",
                                  expected=f"one of: {', '.join(arrays) or 'no arrays'}",
                                  found=None)
            name = candidates[0]
        if name not in arrays:
            raise where.error("array not found in the zarr store", field="dataset",
                              expected=f"one of: {', '.join(arrays) or 'no arrays'}", found=name)
        array, group_attrs = node[name], dict(node.attrs)
    elif name:
        raise where.error("the store is a single array; it has no named arrays",
                          field="dataset", expected="no dataset", found=name)
    else:
        array, group_attrs = node, {}
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    _check_numeric(dtype, where)
    _check_3d(shape, where, f"{where.path}/{name}" if name else None)
    voxel = (_voxel_size_from_attr(array.attrs.get("voxel_size_um"))
             or _voxel_size_from_attr(group_attrs.get("voxel_size_um")))
    if voxel is None and frame is not None and name in frame.data_vars:
        voxel = _coords_voxel_size_um(frame, name)
    return _ZarrReader(where, shape, dtype, name), voxel


_OPENERS = {"tiff": _open_tiff, "tiff_folder": _open_tiff_folder, "hdf5": _open_hdf5,
            "raw": _open_raw, "zarr": _open_zarr}


def _open_reader(spec: dict, sample: str) -> tuple[_StackReader, dict | None]:
    where = _Where(sample, spec)
    if where.fmt not in _OPENERS:
        raise where.error("unknown input format", field="format",
                          expected=f"one of {', '.join(FORMATS)}", found=where.fmt)
    if where.path is None:
        raise where.error("no input path", field="path", expected="a file or folder", found=None)
    want_dir = where.fmt in FOLDER_FORMATS
    if not (where.path.is_dir() if want_dir else where.path.is_file()):
        found = ("a file" if where.path.is_file() else "a folder" if where.path.is_dir()
                 else "nothing")
        raise where.error("input not found", field="path",
                          expected=f"an existing {'folder' if want_dir else 'file'}",
                          found=found)
    return _OPENERS[where.fmt](spec, where)


def _as_dask(reader: _StackReader, chunk_z: int) -> da.Array:
    """One task per ``chunk_z`` slices, each reading whole (windowed) slices of its z-range."""
    return da.from_array(reader, chunks=(chunk_z, -1, -1), name=f"read-{reader.token()}",
                         lock=False, asarray=False, fancy=False, inline_array=True,
                         meta=np.empty((0, 0, 0), dtype=reader.dtype))


# --------------------------------------------------------------------------- public API
def open_channel(spec: dict, *, sample: str, chunk_z: int = 16) -> tuple[da.Array, dict | None]:
    """Open one channel lazily: a (z, y, x) dask array chunked by ``chunk_z`` slices along z,
    and the voxel size the file's metadata gives, ``{"z":, "y":, "x":}`` in µm (only the axes
    it knows) or None. Checks the file up front; bad input raises InputError."""
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


def read_raw_stack(channels: list[dict], *, sample: str, voxel_size_um: dict | None = None,
                   crop: dict | None = None, chunks_zyx=(16, 1024, 1024)) -> xr.DataArray:
    """Combine channel stacks into one lazy ``raw`` DataArray (channel, z, y, x), chunked
    ``(1, *chunks_zyx)``, with µm coords at voxel centres of the (cropped) stack.

    Voxel size per axis: the sample-file value (``voxel_size_um``), else the file metadata;
    ``voxel_size_source`` says which ("sample file", "file metadata", or "sample file + file
    metadata" when mixed per axis). ``crop`` takes voxel index ranges ``[start, stop)`` per
    axis; only the cropped slices are read."""
    if not channels:
        raise InputError("no input channels", sample=sample, field="inputs",
                         expected="at least one channel", found=[])
    opened = [(spec, *_open_reader(spec, sample)) for spec in channels]
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
    full_shape = first_reader.shape
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
    channel_info = []
    for spec, reader, voxel in opened:
        info = {"name": spec["name"], "format": spec["format"], "path": str(spec["path"]),
                "dtype": str(reader.dtype), "shape_zyx": list(reader.shape)}
        if spec.get("dataset"):
            info["dataset"] = spec["dataset"]
        if voxel:
            info["metadata_voxel_size_um"] = voxel
        channel_info.append(info)
    attrs = {"voxel_size_um": sizes_um, "voxel_size_source": size_source,
             "channels": channel_info,
             "crop": {axis: [start, stop] for axis, (start, stop) in zip(AXES, ranges)},
             "source_shape_zyx": list(full_shape)}
    return xr.DataArray(data, dims=("channel",) + AXES, coords=coords, name="raw", attrs=attrs)


def as_channel_stack(stack: xr.DataArray) -> xr.DataArray:
    """A (channel, z, y, x) view of an image stack; a single (z, y, x) volume gets one channel
    named "image". Other layouts raise InputError."""
    if stack.dims == ("z", "y", "x"):
        stack = stack.expand_dims(channel=["image"])
    if stack.dims != ("channel", "z", "y", "x"):
        raise InputError("stack has unexpected dimensions", field="dims",
                         expected="(channel, z, y, x) or (z, y, x)", found=stack.dims)
    return stack


def volume_voxel_size_um(volume: xr.DataArray | xr.Dataset, axes=AXES) -> tuple[float, ...]:
    """Voxel size (µm) along ``axes`` of a volume written by a voxelyte stage: its
    ``voxel_size_um`` attribute [vz, vy, vx], else the spacing of its µm coords."""
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


def write_zarr_atomic(ds: xr.Dataset, path, *, num_workers: int = 1) -> None:
    """Write ``ds`` to the zarr store ``path`` (consolidated metadata) so that ``path`` only
    ever holds a complete store: write into a sibling ``<path>.tmp-<random>``, then replace.

    Dask-backed variables are computed chunk by chunk with the threaded scheduler limited to
    ``num_workers``; their dask chunks define the zarr chunks, and the in-memory dtypes are
    written (encodings inherited from an opened store are dropped). On failure the temporary store is removed and nothing at
    ``path`` changes."""
    import zarr

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{secrets.token_hex(6)}")
    ds = ds.copy(deep=False)
    for variable in ds.variables.values():
        # encodings inherited from a store this data was read from (dtype, scale, chunks)
        # would silently cast or re-chunk derived data: write what is in memory
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


def open_volume(path, *, sample: str | None = None) -> xr.Dataset:
    """Open a zarr volume store lazily (dask chunks = stored chunks). A missing or unreadable
    store raises InputError naming the path."""
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
