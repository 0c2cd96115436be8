"""Format readers: one lazy ``(z, y, x)`` reader per input format (multi-page TIFF, folder of
TIFF slices, HDF5, raw binary, zarr), each checked up front; every problem raises
:class:`voxelyte.errors.InputError` naming the sample, channel, file or field."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from voxelyte.errors import InputError
from voxelyte.ingest.metadata import (_coords_voxel_size_um, _tiff_voxel_size_um,
                                      _voxel_size_from_attr)

#: Input formats (the sample file's ``inputs[].format``).
FORMATS = ("tiff", "tiff_folder", "hdf5", "raw", "zarr")
#: Formats whose ``path`` is a folder.
FOLDER_FORMATS = ("tiff_folder", "zarr")


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


