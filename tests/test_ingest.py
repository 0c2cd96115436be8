"""Tests for voxelyte.ingest: every input format read back exactly with µm coords, voxel-size
precedence, crop, one clear InputError per bad input, atomic zarr writes (voxelyte.contract),
and streaming a stack larger than the memory budget."""
import logging
import pickle
import tracemalloc

import dask.array as da
import h5py
import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr

from voxelyte import contract, ingest
from voxelyte.errors import InputError

SAMPLE = "S1"
SHAPE = (6, 10, 12)


def spec(name, fmt, path, **extra):
    """A channel spec as the config loader hands it over (defaults filled)."""
    base = {"name": name, "format": fmt, "path": path, "dataset": None, "pattern": "*.tif*",
            "shape_zyx": None, "dtype": None, "byte_order": "little", "header_bytes": 0}
    return dict(base, **extra)


def stack(dtype="uint16", shape=SHAPE, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 20, size=shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


def write_imagej(path, data, *, xy_um=0.02, z_um=0.05, unit="um"):
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / xy_um, 1 / xy_um),
                     metadata={"spacing": z_um, "unit": unit, "axes": "ZYX"})


def expect_coords(raw, sizes_um, starts=(0, 0, 0)):
    for axis, size, start in zip("zyx", sizes_um, starts):
        n = raw.sizes[axis]
        np.testing.assert_allclose(raw[axis].values, (np.arange(n) + start + 0.5) * size)
        assert raw[axis].attrs["units"] == "um"


def raises_input_error(*needles, call):
    with pytest.raises(InputError) as info:
        call()
    text = str(info.value)
    for needle in (f"sample '{SAMPLE}'",) + needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return text


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("unit, factor", [("um", 1.0), ("micron", 1.0), ("\\u00B5m", 1.0),
                                          ("nm", 1e-3)])
def test_multipage_imagej_tiff_round_trip(tmp_path, unit, factor):
    data = stack()
    path = tmp_path / "BSE.tif"
    write_imagej(path, data, xy_um=20, z_um=50, unit=unit)
    raw = ingest.read_raw_stack([spec("BSE", "tiff", path)], sample=SAMPLE, chunks_zyx=(4, 8, 8))
    assert isinstance(raw.data, da.Array)
    assert raw.dims == ("channel", "z", "y", "x") and raw.name == "raw"
    assert list(raw.channel.values) == ["BSE"]
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw.values[0], data)
    sizes = [50 * factor, 20 * factor, 20 * factor]
    np.testing.assert_allclose(raw.attrs["voxel_size_um"], sizes)
    assert raw.attrs["voxel_size_source"] == "file metadata"
    assert raw.attrs["channels"][0]["path"] == str(path)
    expect_coords(raw, sizes)
    assert raw.data.chunksize == (1, 4, 8, 8)


def test_open_channel_is_lazy_and_picklable(tmp_path):
    data = stack(shape=(20, 8, 8))
    path = tmp_path / "plain.tif"
    with tifffile.TiffWriter(path) as tif:  # compressed pages: not memory-mappable
        for page in data:
            tif.write(page, compression="zlib")
    array, voxel = ingest.open_channel(spec("BSE", "tiff", path), sample=SAMPLE, chunk_z=3)
    assert voxel is None and array.chunks[0][:2] == (3, 3)
    np.testing.assert_array_equal(array[4:11, 2:5].compute(), data[4:11, 2:5])
    np.testing.assert_array_equal(array[7].compute(), data[7])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(array)).compute(), data)


def test_tiff_folder_natural_sort(tmp_path):
    data = stack(shape=(11, 5, 7))
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, page in enumerate(data):  # s1 ... s11: lexical order would put s10 after s1
        tifffile.imwrite(folder / f"s{z + 1}.tif", page, resolution=(1e4 / 0.03, 1e4 / 0.03),
                         resolutionunit="CENTIMETER")
    (folder / "notes.txt").write_text("not a slice")
    raw = ingest.read_raw_stack([spec("SE", "tiff_folder", folder, pattern="s*.tif")],
                            sample=SAMPLE, voxel_size_um={"z": 0.05})
    np.testing.assert_array_equal(raw.values[0], data)
    np.testing.assert_allclose(raw.attrs["voxel_size_um"], [0.05, 0.03, 0.03])
    assert raw.attrs["voxel_size_source"] == "sample file + file metadata"


def test_hdf5_round_trip_with_element_size(tmp_path):
    data = stack("float32")
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("exchange/data", data=data, chunks=(2, 10, 12))
        h5["exchange/data"].attrs["element_size_um"] = [0.1, 0.04, 0.04]
    raw = ingest.read_raw_stack([spec("xray", "hdf5", path, dataset="exchange/data")],
                                sample=SAMPLE)
    assert raw.dtype == np.float32
    np.testing.assert_array_equal(raw.values[0], data)
    expect_coords(raw, [0.1, 0.04, 0.04])


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_raw_round_trip(tmp_path, byte_order):
    data = stack("int16")
    path = tmp_path / "stack.raw"
    header = b"H" * 64
    path.write_bytes(header + data.astype(data.dtype.newbyteorder("<" if byte_order == "little"
                                                                   else ">")).tobytes())
    channel = spec("BSE", "raw", path, shape_zyx=list(SHAPE), dtype="int16",
                   byte_order=byte_order, header_bytes=len(header))
    raw = ingest.read_raw_stack([channel], sample=SAMPLE, voxel_size_um={"z": 1, "y": 2, "x": 3})
    assert raw.dtype == np.dtype("int16") and raw.dtype.isnative
    np.testing.assert_array_equal(raw.values[0], data)
    expect_coords(raw, [1, 2, 3])
    assert raw.attrs["voxel_size_source"] == "sample file"


def test_zarr_inputs(tmp_path):
    data = stack()
    # an xarray store (coords in µm) with a single data variable: taken without naming it
    frame = xr.Dataset({"volume": (("z", "y", "x"), data)},
                       coords={"z": (np.arange(6) + 0.5) * 0.2, "y": np.arange(10) * 0.1,
                               "x": np.arange(12) * 0.1})
    frame.to_zarr(tmp_path / "xr.zarr", consolidated=False)
    raw = ingest.read_raw_stack([spec("BSE", "zarr", tmp_path / "xr.zarr")], sample=SAMPLE)
    np.testing.assert_array_equal(raw.values[0], data)
    np.testing.assert_allclose(raw.attrs["voxel_size_um"], [0.2, 0.1, 0.1])
    # a plain zarr group, array named, voxel size from its attrs
    group = zarr.open_group(tmp_path / "plain.zarr", mode="w")
    group.create_array("scans/bse", data=data, chunks=(2, 5, 6))
    group["scans/bse"].attrs["voxel_size_um"] = [0.3, 0.2, 0.1]
    group.create_array("other", data=data)
    channel = spec("BSE", "zarr", tmp_path / "plain.zarr", dataset="scans/bse")
    raw = ingest.read_raw_stack([channel], sample=SAMPLE, crop={"y": [2, 7]})
    np.testing.assert_array_equal(raw.values[0], data[:, 2:7])
    np.testing.assert_allclose(raw.attrs["voxel_size_um"], [0.3, 0.2, 0.1])
    raises_input_error("field 'dataset'", "scans/bse", "other", call=lambda: ingest.open_channel(
        spec("BSE", "zarr", tmp_path / "plain.zarr"), sample=SAMPLE))


def test_two_channels_of_different_formats(tmp_path):
    bse, se = stack(seed=1), stack(seed=2)
    write_imagej(tmp_path / "BSE.tif", bse)
    with h5py.File(tmp_path / "se.h5", "w") as h5:
        h5["se"] = se
    channels = [spec("BSE", "tiff", tmp_path / "BSE.tif"),
                spec("SE", "hdf5", tmp_path / "se.h5", dataset="se")]
    raw = ingest.read_raw_stack(channels, sample=SAMPLE, chunks_zyx=(4, 4, 4))
    assert list(raw.channel.values) == ["BSE", "SE"]
    np.testing.assert_array_equal(raw.sel(channel="BSE").values, bse)
    np.testing.assert_array_equal(raw.sel(channel="SE").values, se)
    assert [c["format"] for c in raw.attrs["channels"]] == ["tiff", "hdf5"]


# --------------------------------------------------------------------------- voxel size, crop
def test_voxel_size_precedence(tmp_path, caplog):
    path = tmp_path / "BSE.tif"
    write_imagej(path, stack(), xy_um=0.02, z_um=0.05)
    channels = [spec("BSE", "tiff", path)]
    with caplog.at_level(logging.WARNING, logger="voxelyte.ingest"):
        raw = ingest.read_raw_stack(channels, sample=SAMPLE,
                                voxel_size_um={"z": 0.06, "y": 0.02, "x": 0.02})
    assert raw.attrs["voxel_size_um"] == [0.06, 0.02, 0.02]
    assert raw.attrs["voxel_size_source"] == "sample file"
    expect_coords(raw, [0.06, 0.02, 0.02])
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "voxel size z" in warned[0]  # 20 % off; y, x agree

    raw = ingest.read_raw_stack(channels, sample=SAMPLE, voxel_size_um={"z": 0.1})
    np.testing.assert_allclose(raw.attrs["voxel_size_um"], [0.1, 0.02, 0.02])

    raw_file = tmp_path / "stack.raw"
    raw_file.write_bytes(stack().tobytes())
    no_metadata = [spec("BSE", "raw", raw_file, shape_zyx=list(SHAPE), dtype="uint16")]
    raises_input_error("field 'voxel_size_um'", "axis z, y, x",
                       call=lambda: ingest.read_raw_stack(no_metadata, sample=SAMPLE))
    raises_input_error("field 'voxel_size_um'", "axis x", call=lambda: ingest.read_raw_stack(
        no_metadata, sample=SAMPLE, voxel_size_um={"z": 1, "y": 1}))


def test_crop_values_and_coords(tmp_path):
    data = stack()
    write_imagej(tmp_path / "BSE.tif", data, xy_um=0.5, z_um=2.0)
    raw = ingest.read_raw_stack([spec("BSE", "tiff", tmp_path / "BSE.tif")], sample=SAMPLE,
                            crop={"z": [1, 5], "x": [3, 11]}, chunks_zyx=(3, 4, 4))
    np.testing.assert_array_equal(raw.values[0], data[1:5, :, 3:11])
    expect_coords(raw, [2.0, 0.5, 0.5], starts=(1, 0, 3))
    assert raw.attrs["crop"] == {"z": [1, 5], "y": [0, 10], "x": [3, 11]}
    assert raw.data.chunks[1] == (3, 1)


@pytest.mark.parametrize("crop, field", [({"z": [0, 7]}, "crop.z"), ({"y": [4, 4]}, "crop.y"),
                                         ({"x": [-1, 5]}, "crop.x"), ({"w": [0, 1]}, "crop.w")])
def test_bad_crop(tmp_path, crop, field):
    write_imagej(tmp_path / "BSE.tif", stack())
    channels = [spec("BSE", "tiff", tmp_path / "BSE.tif")]
    text = raises_input_error(f"field '{field}'", call=lambda: ingest.read_raw_stack(
        channels, sample=SAMPLE, crop=crop))
    if field != "crop.w":
        assert "(6, 10, 12)" in text  # the stack shape


# --------------------------------------------------------------------------- bad input
def test_missing_inputs(tmp_path):
    raises_input_error("BSE", str(tmp_path / "gone.tif"), "input not found",
                       call=lambda: ingest.open_channel(spec("BSE", "tiff", tmp_path / "gone.tif"),
                                                    sample=SAMPLE))
    raises_input_error("gone", "folder", call=lambda: ingest.open_channel(
        spec("BSE", "tiff_folder", tmp_path / "gone"), sample=SAMPLE))
    (tmp_path / "empty").mkdir()
    raises_input_error(str(tmp_path / "empty"), "field 'pattern'", call=lambda: ingest.open_channel(
        spec("BSE", "tiff_folder", tmp_path / "empty"), sample=SAMPLE))


@pytest.mark.parametrize("odd_slice", [np.zeros((5, 8), np.uint16), np.zeros((5, 7), np.uint8)])
def test_tiff_folder_mismatched_slices(tmp_path, odd_slice):
    for z in range(3):
        tifffile.imwrite(tmp_path / f"s{z}.tif", np.zeros((5, 7), np.uint16))
    tifffile.imwrite(tmp_path / "s3.tif", odd_slice)
    raises_input_error(str(tmp_path / "s3.tif"), "slice z=3", "shape (5, 7), dtype uint16",
                       call=lambda: ingest.open_channel(spec("BSE", "tiff_folder", tmp_path),
                                                    sample=SAMPLE))


def test_channels_of_different_shapes(tmp_path):
    write_imagej(tmp_path / "BSE.tif", stack())
    write_imagej(tmp_path / "SE.tif", stack(shape=(6, 10, 11)))
    channels = [spec("BSE", "tiff", tmp_path / "BSE.tif"), spec("SE", "tiff", tmp_path / "SE.tif")]
    raises_input_error("'BSE'", "'SE'", "(6, 10, 12)", "(6, 10, 11)", str(tmp_path / "SE.tif"),
                       call=lambda: ingest.read_raw_stack(channels, sample=SAMPLE))


def test_non_numeric_data(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as h5:
        h5["complex"] = np.zeros(SHAPE, np.complex64)
        h5["text"] = np.array([[["a"]]], dtype="S1")
    for name in ("complex", "text"):
        raises_input_error(str(tmp_path / "c.h5"), "an integer or float image",
                           call=lambda: ingest.open_channel(spec("BSE", "hdf5", tmp_path / "c.h5",
                                                             dataset=name), sample=SAMPLE))
    zarr.create_array(tmp_path / "mask.zarr", data=np.zeros(SHAPE, bool))
    raises_input_error("mask.zarr", "an integer or float image", "bool",
                       call=lambda: ingest.open_channel(spec("BSE", "zarr", tmp_path / "mask.zarr"),
                                                    sample=SAMPLE))
    tifffile.imwrite(tmp_path / "c.tif", np.zeros(SHAPE, np.complex64))
    raises_input_error("c.tif", "an integer or float image", call=lambda: ingest.open_channel(
        spec("BSE", "tiff", tmp_path / "c.tif"), sample=SAMPLE))


def test_hdf5_dataset_missing_or_not_3d(tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as h5:
        h5["entry/image"] = np.zeros((10, 12), np.uint16)
        h5["entry/stack"] = np.zeros(SHAPE, np.uint16)
    text = raises_input_error(str(path), "field 'dataset'", "entry/stack", call=lambda: (
        ingest.open_channel(spec("BSE", "hdf5", path, dataset="entry/volume"), sample=SAMPLE)))
    assert "entry/volume" in text
    raises_input_error(str(path), "2D image", "(10, 12)", call=lambda: ingest.open_channel(
        spec("BSE", "hdf5", path, dataset="entry/image"), sample=SAMPLE))


def test_raw_errors(tmp_path):
    path = tmp_path / "stack.raw"
    path.write_bytes(bytes(16 + 6 * 10 * 12 * 2))
    good = {"shape_zyx": list(SHAPE), "dtype": "uint16", "header_bytes": 16}
    for key in ("shape_zyx", "dtype"):
        raises_input_error(str(path), f"field '{key}'", call=lambda: ingest.open_channel(
            spec("BSE", "raw", path, **dict(good, **{key: None})), sample=SAMPLE))
    text = raises_input_error(str(path), "truncated", call=lambda: ingest.open_channel(
        spec("BSE", "raw", path, **dict(good, shape_zyx=[7, 10, 12])), sample=SAMPLE))
    assert "1696 bytes" in text and "1456 bytes" in text
    raises_input_error(str(path), "too large", "1456 bytes", call=lambda: ingest.open_channel(
        spec("BSE", "raw", path, **dict(good, header_bytes=0)), sample=SAMPLE))
    raises_input_error(str(path), "an integer or float image", call=lambda: ingest.open_channel(
        spec("BSE", "raw", path, **dict(good, dtype="complex64")), sample=SAMPLE))


def test_truncated_tiff_files(tmp_path):
    contiguous, paged = tmp_path / "contiguous.tif", tmp_path / "paged.tif"
    write_imagej(contiguous, stack(shape=(20, 32, 32)))
    with tifffile.TiffWriter(paged) as tif:
        for page in stack(shape=(20, 32, 32)):
            tif.write(page, compression="zlib")
    for path in (contiguous, paged):
        with open(path, "r+b") as handle:
            handle.truncate(int(path.stat().st_size * 0.6))
        raises_input_error(str(path), "truncated", call=lambda: ingest.open_channel(
            spec("BSE", "tiff", path), sample=SAMPLE))


def test_corrupt_tiff_page_named_on_read(tmp_path):
    path = tmp_path / "paged.tif"
    with tifffile.TiffWriter(path) as tif:
        for page in stack(shape=(8, 32, 32)):
            tif.write(page, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[5].dataoffsets[0]
    with open(path, "r+b") as handle:  # garbage in slice 5's compressed data: fails to decode
        handle.seek(offset)
        handle.write(b"\xff" * 64)
    array, _ = ingest.open_channel(spec("BSE", "tiff", path), sample=SAMPLE, chunk_z=4)
    np.testing.assert_array_equal(array[:4].compute().shape, (4, 32, 32))
    raises_input_error(str(path), "slice z=5", call=array.compute)


def test_tiff_2d_and_rgb(tmp_path):
    tifffile.imwrite(tmp_path / "single.tif", np.zeros((10, 12), np.uint16))
    raises_input_error("single.tif", "2D image", "(10, 12)", call=lambda: ingest.open_channel(
        spec("BSE", "tiff", tmp_path / "single.tif"), sample=SAMPLE))
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((4, 10, 12, 3), np.uint8), photometric="rgb")
    raises_input_error("rgb.tif", "RGB", "one grey-value channel per file",
                       call=lambda: ingest.open_channel(spec("BSE", "tiff", tmp_path / "rgb.tif"),
                                                    sample=SAMPLE))


# --------------------------------------------------------------------------- zarr stores
def test_write_zarr_atomic_round_trip(tmp_path):
    data = stack()
    write_imagej(tmp_path / "BSE.tif", data)
    raw = ingest.read_raw_stack([spec("BSE", "tiff", tmp_path / "BSE.tif")], sample=SAMPLE,
                            chunks_zyx=(4, 8, 8))
    dataset = raw.to_dataset()
    dataset.attrs["sample"] = SAMPLE
    target = tmp_path / "out" / "raw.zarr"
    contract.write_zarr_atomic(dataset, target)
    contract.write_zarr_atomic(dataset, target)  # replaces the old store
    assert sorted(p.name for p in target.parent.iterdir()) == ["raw.zarr"]
    stored = xr.open_zarr(target)
    assert stored.raw.dims == ("channel", "z", "y", "x")
    np.testing.assert_array_equal(stored.raw.values, raw.values)
    assert list(stored.channel.values) == ["BSE"]
    for axis in "zyx":
        np.testing.assert_array_equal(stored[axis].values, raw[axis].values)
    ome = dict(stored.attrs).pop("ome")    # OME-NGFF metadata added by the writer
    assert stored.raw.attrs == raw.attrs
    assert {k: v for k, v in stored.attrs.items() if k != "ome"} == {"sample": SAMPLE}
    assert ome["multiscales"][0]["datasets"][0]["path"] == "raw"
    opened = contract.open_volume(target, sample=SAMPLE)
    assert opened.raw.data.chunksize == (1, 4, 8, 8)
    xr.testing.assert_identical(opened.load(), stored.load())


def test_write_zarr_atomic_failure_leaves_nothing(tmp_path):
    def fail_on_third(block, block_info=None):
        if block_info[None]["chunk-location"][0] == 2:
            raise RuntimeError("disk on fire")
        return block

    volume = da.zeros((8, 4, 4), chunks=(2, 4, 4), dtype="uint8").map_blocks(fail_on_third,
                                                                          dtype="uint8")
    target = tmp_path / "labels.zarr"
    with pytest.raises(RuntimeError, match="disk on fire"):
        contract.write_zarr_atomic(xr.Dataset({"labels": (("z", "y", "x"), volume)}), target)
    assert list(tmp_path.iterdir()) == []


def test_open_volume_errors(tmp_path):
    raises_input_error(str(tmp_path / "none.zarr"), "not found",
                       call=lambda: contract.open_volume(tmp_path / "none.zarr", sample=SAMPLE))
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / "zarr.json").write_text("{not json")
    raises_input_error(str(tmp_path / "junk.zarr"), "not a readable zarr store",
                       call=lambda: contract.open_volume(tmp_path / "junk.zarr", sample=SAMPLE))


# --------------------------------------------------------------------------- streaming
def test_large_tiff_streams_within_memory_budget(tmp_path):
    """~200 MB stack, 64 MB budget: read_raw_stack -> write_zarr_atomic never holds it whole."""
    shape = (200, 1000, 512)
    ramp = np.arange(shape[1] * shape[2], dtype=np.uint32).reshape(shape[1:])

    def page(z):
        return ((ramp + 7919 * z) % 65521).astype(np.uint16)

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, (page(z) for z in range(shape[0])), shape=shape, dtype=np.uint16)
    target = tmp_path / "raw.zarr"
    tracemalloc.start()
    try:
        raw = ingest.read_raw_stack([spec("BSE", "tiff", path)], sample=SAMPLE,
                                voxel_size_um={"z": 0.05, "y": 0.02, "x": 0.02},
                                chunks_zyx=(8, 1024, 1024))
        contract.write_zarr_atomic(raw.to_dataset(), target, num_workers=1)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    path.unlink()
    assert peak_bytes < 64 * 2**20, f"peak {peak_bytes / 2**20:.1f} MiB"
    stored = xr.open_zarr(target).raw
    assert stored.shape == (1,) + shape
    for z in (0, 77, 199):
        np.testing.assert_array_equal(stored[0, z].values, page(z))


def test_derived_data_keeps_its_dtype_when_written(tmp_path):
    """Data read from a uint16 store and turned into floats must not be cast back on write."""
    counts = xr.DataArray(np.arange(2 * 4 * 5 * 6, dtype=np.uint16).reshape(2, 4, 5, 6),
                          dims=("channel", "z", "y", "x"), name="raw")
    contract.write_zarr_atomic(counts.to_dataset(), tmp_path / "raw.zarr")
    opened = contract.open_volume(tmp_path / "raw.zarr")["raw"]
    scaled = (opened.astype(np.float32) / 1000.0).rename("scaled")
    scaled = opened.copy(data=scaled.data).rename("scaled")   # keeps the uint16 encoding
    contract.write_zarr_atomic(scaled.to_dataset(), tmp_path / "scaled.zarr")
    back = contract.open_volume(tmp_path / "scaled.zarr")["scaled"]
    assert back.dtype == np.float32
    np.testing.assert_allclose(back.values, counts.values / 1000.0, rtol=1e-6)


# --------------------------------------------------------------------------- label volumes
LABEL_PHASES = {"pore": {"label": 0}, "CAM": {"label": 1}, "SE": {"label": 2}}


def _label_file(tmp_path, values=(0, 85, 170), dtype=np.uint8):
    """A label TIFF with three slabs along x holding ``values`` (the tortuosity tools' 0 / 85 /
    170 convention), and what the sample's phase table makes of it."""
    data = np.full((6, 8, 12), values[0], dtype)
    data[:, :, 4:8], data[:, :, 8:] = values[1], values[2]
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, data, imagej=True)
    expected = np.zeros(data.shape, np.uint8)
    expected[:, :, 4:8], expected[:, :, 8:] = 1, 2
    return path, expected


def test_label_volume_is_mapped_onto_the_phase_table(tmp_path):
    path, expected = _label_file(tmp_path)
    spec = {"format": "tiff", "path": path, "values": {0: "pore", 85: "CAM", 170: "SE"}}
    ds = ingest.read_label_volume(spec, LABEL_PHASES, sample="L1",
                                  voxel_size_um={"z": 0.3, "y": 0.1, "x": 0.1},
                                  crop={"z": [1, 5]}, chunks_zyx=(2, 1024, 1024))
    np.testing.assert_array_equal(ds["labels"].values, expected[1:5])
    assert ds["labels"].dtype == np.uint8 and ds["labels"].dims == ("z", "y", "x")
    np.testing.assert_allclose(ds["z"].values, (np.arange(1, 5) + 0.5) * 0.3)
    assert ds.attrs["phases"] == {"pore": 0, "CAM": 1, "SE": 2}
    assert ds.attrs["label_file"]["values"] == {"0": "pore", "85": "CAM", "170": "SE"}
    assert ds.attrs["method"] == "label file"


def test_label_values_must_match_the_map_both_ways(tmp_path):
    path, _ = _label_file(tmp_path)
    spec = {"format": "tiff", "path": path, "values": {0: "pore", 85: "CAM"}}
    with pytest.raises(InputError) as err:          # 170 in the file has no phase
        ingest.read_label_volume(spec, LABEL_PHASES, sample="L1",
                                 voxel_size_um={"z": 0.1, "y": 0.1, "x": 0.1})
    text = str(err.value)
    assert "L1" in text and str(path) in text and "labels.values" in text and "[170]" in text
    spec["values"] = {0: "pore", 85: "CAM", 170: "SE", 255: "SE"}
    with pytest.raises(InputError, match=r"absent from the label file.*\[255\]"):
        ingest.read_label_volume(spec, LABEL_PHASES, sample="L1",
                                 voxel_size_um={"z": 0.1, "y": 0.1, "x": 0.1})


def test_label_file_of_floats_is_refused(tmp_path):
    path, _ = _label_file(tmp_path, values=(0.0, 1.0, 2.0), dtype=np.float32)
    spec = {"format": "tiff", "path": path, "values": {0: "pore", 1: "CAM", 2: "SE"}}
    with pytest.raises(InputError, match="must hold integers"):
        ingest.read_label_volume(spec, LABEL_PHASES, sample="L1",
                                 voxel_size_um={"z": 0.1, "y": 0.1, "x": 0.1})
