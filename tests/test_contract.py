"""The data contract: axes, voxel sizes, phase table, label arrays, fractions, JSON, writers,
artefact registry."""
from __future__ import annotations

import json
import math

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from voxelyte import contract
from voxelyte.errors import InputError

PHASES = {"pore": {"label": 0, "sigma_electronic_S_cm": 0.0, "sigma_ionic_S_cm": 0.0},
          "CAM": {"label": 1, "sigma_electronic_S_cm": 0.1, "sigma_ionic_S_cm": 0.0},
          "SE": {"label": 2, "sigma_electronic_S_cm": 1e-9, "sigma_ionic_S_cm": 2e-3}}


def test_axes_and_voxel_size():
    assert [contract.axis_index(a) for a in ("z", "y", "x", 2)] == [0, 1, 2, 2]
    with pytest.raises(InputError, match="axis"):
        contract.axis_index("w")
    assert contract.voxel_size_um({"z": 0.2, "y": 0.1, "x": 0.1}) == (0.2, 0.1, 0.1)
    for bad in ([0.1, 0.1], [0.1, -1, 0.1], [0.1, float("nan"), 0.1], "abc"):
        with pytest.raises(InputError, match="voxel size"):
            contract.voxel_size_um(bad)


def test_volume_voxel_size_from_attrs_or_coords():
    ds = xr.Dataset({"v": (("z", "y", "x"), np.zeros((2, 3, 4)))},
                    coords={"z": [0.0, 0.3], "y": [0, 0.1, 0.2], "x": [0, 0.1, 0.2, 0.3]})
    assert contract.volume_voxel_size_um(ds) == pytest.approx((0.3, 0.1, 0.1))
    ds.attrs["voxel_size_um"] = [1.0, 2.0, 3.0]
    assert contract.volume_voxel_size_um(ds, axes=("x",)) == (3.0,)


def test_phase_table_is_a_checked_mapping():
    table = contract.phase_table(PHASES)
    assert table.labels == {"pore": 0, "CAM": 1, "SE": 2}
    assert dict(table.items())["CAM"]["label"] == 1
    assert contract.phase_table({"a": 0, "b": 3}).labels == {"a": 0, "b": 3}
    assert [table.role(p) for p in table] == ["pore", "active_material", "electrolyte"]
    assert contract.phase_table({"NMC": {"label": 1, "role": "active_material"},
                                 "void": 0}).with_role("active_material") == ["NMC"]
    with pytest.raises(InputError, match="unique"):
        contract.phase_table({"a": 1, "b": 1})
    with pytest.raises(InputError, match="non-negative"):
        contract.phase_table({"a": -1})
    with pytest.raises(InputError, match="empty"):
        contract.phase_table({})


def test_conductivity_lut_and_field():
    table = contract.phase_table(PHASES)
    lut = table.conductivity_lut("electronic", size=5)
    assert lut.tolist() == [0.0, 0.1, 1e-9, 0.0, 0.0]
    # SE (1e-9) is below 1e-6 x the best conductor (0.1): insulating
    assert table.conductivity_lut("electronic", insulating_ratio=1e-6).tolist() == [0, 0.1, 0]
    labels = np.array([[[0, 1], [2, 1]]], np.uint8)
    sigma = table.conductivity_field(labels, "ionic", floor_S_cm=1e-12)
    assert sigma.tolist() == [[[1e-12, 1e-12], [2e-3, 1e-12]]]
    with pytest.raises(InputError, match="not in the phase table"):
        table.conductivity_field(labels + 1, "ionic")
    with pytest.raises(InputError, match="missing"):
        contract.phase_table({"a": 0}).conductivity_lut("ionic")
    with pytest.raises(InputError, match="kind"):
        table.conductivity_lut("thermal")


def test_volume_fractions_count_voxels_in_slabs():
    labels = np.zeros((10, 4, 5), np.uint8)
    labels[:3] = 1
    labels[3:4] = 2
    labels[9, 0, 0] = 7                              # in no phase
    expected = {"pore": (6 * 20 - 1) / 200, "CAM": 60 / 200, "SE": 20 / 200}
    for given in (labels, da.from_array(labels, chunks=(3, 4, 5)),
                  xr.DataArray(labels, dims=("z", "y", "x"))):
        vf = contract.volume_fractions(given, PHASES, slab_voxels=4)
        assert vf == pytest.approx(expected, abs=0)
    with_rest = contract.volume_fractions(labels, PHASES, unassigned=True)
    assert with_rest["unassigned"] == pytest.approx(1 / 200)
    with pytest.raises(InputError, match="integer"):
        contract.volume_fractions(labels.astype(float), PHASES)


def test_iter_blocks_covers_every_plane_once():
    labels = np.arange(7 * 2 * 2).reshape(7, 2, 2)
    starts = [a for a, _ in contract.iter_blocks(labels, 0, 3)]
    assert starts == [0, 3, 6]
    assert np.array_equal(np.concatenate([b for _, b in contract.iter_blocks(labels, 0, 3)]),
                          labels)


def test_distance_um_is_exact_on_a_slab():
    mask = np.ones((5, 1, 9), bool)
    mask[:, :, 0] = False
    dist = contract.distance_um(mask, (1.0, 1.0, 0.5))
    assert dist[2, 0, 1:].tolist() == pytest.approx([0.5 * i for i in range(1, 9)])


def test_to_jsonable_has_one_convention_for_non_finite_numbers(tmp_path):
    doc = {"a": np.float32(1.5), "b": [np.inf, -np.inf, np.nan], 3: np.int64(2),
           "c": np.array([1, 2]), "d": (True, None), "p": tmp_path, "bool": np.bool_(True)}
    out = contract.to_jsonable(doc)
    assert out == {"a": 1.5, "b": [None, None, None], "3": 2, "c": [1, 2], "d": [True, None],
                   "p": str(tmp_path), "bool": True}
    path = contract.write_json_atomic({"tau": math.inf}, tmp_path / "x.json")
    assert json.loads(path.read_text()) == {"tau": None}
    assert "Infinity" not in path.read_text()


def test_atomic_writers_leave_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    contract.write_text_atomic("old", target)

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        contract.atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_zarr_store_written_atomically_and_reopened(tmp_path):
    ds = xr.Dataset({"labels": (("z", "y", "x"), np.ones((2, 3, 4), np.uint8))},
                    attrs={"voxel_size_um": [0.1, 0.1, 0.1]})
    contract.write_zarr_atomic(ds, tmp_path / "labels.zarr")
    back = contract.open_volume(tmp_path / "labels.zarr")
    assert np.array_equal(back["labels"].values, ds["labels"].values)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.zarr"]
    with pytest.raises(InputError, match="not found"):
        contract.open_volume(tmp_path / "missing.zarr", sample="S1")


def test_artefact_registry_names_stages_and_paths(tmp_path):
    stages = {a.stage for a in contract.ARTEFACTS.values()}
    assert stages <= {"phantom", "ingest", "register", "preprocess", "segment", "evaluate",
                      "descriptors", "transport", "ssrm", "report"}
    assert contract.artefact_path(tmp_path, "labels") == tmp_path / "labels.zarr"
    assert contract.artefact("labels").is_store and not contract.artefact("drift_table").is_store
    paths = [a.path for a in contract.ARTEFACTS.values()]
    assert len(paths) == len(set(paths))
    with pytest.raises(KeyError, match="known"):
        contract.artefact("nope")


def _volume_dataset():
    z = (np.arange(4) + 0.5) * 0.3
    y = (np.arange(5) + 0.5) * 0.1
    x = (np.arange(6) + 0.5) * 0.1 + 2.0          # a crop: the first voxel centre at 2.05 µm
    return xr.Dataset({"raw": (("channel", "z", "y", "x"), np.ones((2, 4, 5, 6), np.uint16)),
                       "mask": (("z", "y", "x"), np.zeros((4, 5, 6), np.uint8))},
                      coords={"channel": ["BSE", "SE"], "z": z, "y": y, "x": x})


def test_volume_stores_carry_ome_ngff_scale_and_stay_xarray_readable(tmp_path):
    ds = _volume_dataset()
    contract.write_zarr_atomic(ds, tmp_path / "raw.zarr")
    ome = json.loads((tmp_path / "raw.zarr" / "zarr.json").read_text())["attributes"]["ome"]
    assert ome["version"] == "0.5"
    raw, mask = ome["multiscales"]
    assert [a["name"] for a in raw["axes"]] == ["channel", "z", "y", "x"]
    assert raw["axes"][0]["type"] == "channel" and raw["axes"][1]["unit"] == "micrometer"
    scale, shift = raw["datasets"][0]["coordinateTransformations"]
    assert raw["datasets"][0]["path"] == "raw"
    assert scale["scale"] == pytest.approx([1.0, 0.3, 0.1, 0.1])
    assert shift["translation"] == pytest.approx([0.0, 0.15, 0.05, 2.05])
    assert mask["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [0.3, 0.1, 0.1])
    back = contract.open_volume(tmp_path / "raw.zarr")
    np.testing.assert_array_equal(back["raw"].values, ds["raw"].values)
    # no (z, y, x) variable, or no voxel size: no OME metadata
    assert contract.ome_ngff_attrs(xr.Dataset({"v": ("t", np.arange(3))})) is None


def test_ome_zarr_reads_the_physical_scale(tmp_path):
    reader = pytest.importorskip("ome_zarr.reader")
    ome_io = pytest.importorskip("ome_zarr.io")
    contract.write_zarr_atomic(_volume_dataset(), tmp_path / "raw.zarr")
    node = next(iter(reader.Reader(ome_io.parse_url(str(tmp_path / "raw.zarr")))()))
    scale = node.metadata["coordinateTransformations"][0][0]["scale"]
    assert scale == pytest.approx([1.0, 0.3, 0.1, 0.1])
    assert node.data[0].shape == (2, 4, 5, 6)
