"""The ``ssrm`` stage: a sample's labels to its SSRM resistance map, histograms, isolation against
the geometry, current fields and DC mode (ssrm.zarr and ssrm.json)."""
from __future__ import annotations

import numpy as np

from voxelyte.contract import AXES, axis_index, phase_table, voxel_size_um
from voxelyte.errors import InputError
from voxelyte.ssrm.analysis import (carrier_isolation, field_positions, isolation_threshold,
                                    resistance_histograms)
from voxelyte.ssrm.direct import DEPTH_PER_HALO, estimate_memory_bytes, resistance_map
from voxelyte.ssrm.model import Model, _orient, _orient_voxel, _unorient, build_model
from voxelyte.ssrm.tip import dc_resistance, tip_field

#: Solver numbers of the resistance map copied into ssrm.json.
SOLVER_KEYS = ("n_tiles", "n_probe_solves", "probe_time_s", "factor_time_s", "tile_voxels",
               "halo_voxels", "depth_voxels")


def simulate(labels, phases, voxel_size, *, conductivity, floor_S_cm, scanned_axis,
             scanned_side, tip_size_voxels, disc_radius_um, contact_resistance_ohm, stride,
             region, crop, method, tile_voxels, halo_voxels, depth_voxels,
             isolation_threshold_ohm, n_current_fields, histogram_bins, dc_mode, max_memory_gb,
             sample: str | None = None, progress=None):
    """The ``ssrm`` stage.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
    phases : dict or PhaseTable
        Phase table with ``sigma_<conductivity>_S_cm``.
    voxel_size : sequence of 3 float
        Voxel size (µm).
    conductivity, floor_S_cm, scanned_axis, scanned_side, tip_size_voxels, disc_radius_um,
    contact_resistance_ohm, stride, region, crop, method, tile_voxels, halo_voxels, depth_voxels,
    isolation_threshold_ohm, n_current_fields, histogram_bins, dc_mode, max_memory_gb
        The stage settings (the sample schema's ``stages.ssrm``, where their defaults live).
    sample : str, optional
        Named in errors.
    progress : callable, optional
        ``progress(done, total)`` over the tip positions.

    Returns
    -------
    tuple
        (xarray.Dataset for ssrm.zarr, JSON-able summary dict for ssrm.json).
    """
    table = phase_table(phases)
    lab_full = np.asarray(labels)
    vox = voxel_size_um(voxel_size)
    lab, crop_ranges = _crop(lab_full, crop, sample)
    map_kw = dict(scanned_axis=scanned_axis, stride=stride, region=region,
                  tip_size_voxels=tip_size_voxels, method=method, tile_voxels=tile_voxels,
                  halo_voxels=halo_voxels, depth_voxels=depth_voxels,
                  max_memory_gb=max_memory_gb)
    need = _check_memory(lab.shape, map_kw, sample)
    sigma = table.conductivity_field(lab, conductivity, floor_S_cm=floor_S_cm, sample=sample)
    a = axis_index(scanned_axis)
    ovox = _orient_voxel(vox, a)
    olab = np.ascontiguousarray(_orient(lab, a, scanned_side))
    model = build_model(np.ascontiguousarray(_orient(sigma, a, scanned_side)), ovox)
    tip = dict(tip_size_voxels=tip_size_voxels, disc_radius_um=disc_radius_um,
               contact_resistance_ohm=contact_resistance_ohm)
    depth = depth_voxels or DEPTH_PER_HALO * int(halo_voxels)
    m = resistance_map(None, None, stride=stride, region=region, method=method,
                       tile_voxels=tile_voxels, halo_voxels=halo_voxels, depth_voxels=depth,
                       progress=progress, max_memory_gb=max_memory_gb, model=model, **tip)
    pos, R = m["positions"], m["resistance_ohm"]
    tip_phase = olab[0][pos[:, 0], pos[:, 1]]
    thr = isolation_threshold(table, conductivity, floor_S_cm, ovox[1:], **tip,
                              threshold_ohm=isolation_threshold_ohm)
    edges, hist, per_phase = resistance_histograms(R, tip_phase, table, thr["threshold_ohm"],
                                                   histogram_bins)
    connectivity = _connectivity(m, olab, lab, lab_full, crop_ranges, a, scanned_side, table,
                                 thr, isolation_threshold_ohm)
    on_carrier = tip_phase == table[thr["carrier"]]["label"]
    chosen = field_positions(R, on_carrier, n_current_fields)
    fields = _current_fields(model, m, chosen, contact_resistance_ohm, thr["carrier"], a,
                             scanned_side)
    dc = _dc_mode(model, scanned_axis) if dc_mode else None
    ds = _dataset(m, olab, fields, vox, a, crop_ranges, lab.shape, scanned_axis, scanned_side)
    summary = {
        "method": m["method"],
        "solver": {k: m[k] for k in SOLVER_KEYS if k in m} | {"time_s": m["time_s"]},
        "n_positions": int(len(pos)), "stride": stride, "region": region, "crop": crop_ranges,
        "tip": dict(tip, half_space_spreading_resistance_carrier_ohm=thr[
            "carrier_spreading_ohm"]),
        "conductivity": conductivity,
        "log10_resistance_histogram": {"bin_edges_log10_ohm": edges.tolist(), "counts": hist},
        "per_phase": per_phase, "connectivity": connectivity,
        "current_fields": fields["info"], "dc": dc, "estimated_memory_gb": need / 1e9,
    }
    return ds, summary


def _dc_mode(model: Model, scanned_axis) -> dict:
    """ssrm.json's ``dc``: :func:`dc_resistance` of the model, with the scan axis."""
    dc = dc_resistance(None, None, model=model)
    return {"resistance_ohm": dc["resistance_ohm"], "sigma_eff_S_cm": dc["sigma_eff_S_cm"],
            "axis": scanned_axis, "depth_profile_A_cm2": dc["depth_profile_A_cm2"].tolist()}


def _crop(arr: np.ndarray, crop, sample) -> tuple[np.ndarray, list]:
    """The simulated part of the volume and its index ranges [[z0, z1], [y0, y1], [x0, x1]]."""
    if not crop:
        return arr, [[0, s] for s in arr.shape]
    ranges = []
    for ax, name in enumerate(AXES):
        lo, hi = (crop.get(name) or [0, arr.shape[ax]])
        lo, hi = max(0, int(lo)), min(arr.shape[ax], int(hi))
        if hi - lo < 2:
            raise InputError("SSRM crop leaves fewer than 2 voxels", sample=sample,
                             field=f"stages.ssrm.crop.{name}",
                             expected=f"a range inside [0, {arr.shape[ax]})", found=crop.get(name))
        ranges.append([lo, hi])
    return arr[tuple(slice(a, b) for a, b in ranges)], ranges


def _check_memory(shape, map_kw: dict, sample) -> int:
    """The map's memory estimate (bytes); InputError beyond ``max_memory_gb``."""
    need = estimate_memory_bytes(shape, **map_kw)
    if need > map_kw["max_memory_gb"] * 1e9:
        raise InputError(
            f"SSRM needs about {need / 1e9:.1f} GB for a {shape} volume; set "
            "stages.ssrm.crop, a smaller tile_voxels/halo_voxels, or run on a node with more "
            "memory and raise max_memory_gb", sample=sample, field="stages.ssrm.max_memory_gb",
            expected=f">= {need / 1e9:.1f}", found=map_kw["max_memory_gb"])
    return need


def _connectivity(m, olab, lab, lab_full, crop_ranges, a, side, table, thr, rule) -> dict:
    """ssrm.json's ``connectivity``: isolated carrier pixels of the map against the geometry of
    the mapped and of the whole volume (orienting flips the scan axis only, so face indices
    shift by the crop's start)."""
    whole = None
    if lab is not lab_full:
        whole = np.ascontiguousarray(_orient(lab_full, a, side))
    offset = [crop_ranges[d][0] for d in range(3) if d != a]
    iso = carrier_isolation(m["resistance_ohm"], m["positions"], olab,
                            table[thr["carrier"]]["label"], thr["threshold_ohm"],
                            whole_oriented=whole, offset=offset)
    return {
        "carrier_phase": thr["carrier"],
        "isolation_threshold_ohm": thr["threshold_ohm"],
        "threshold_rule": "auto: sqrt(R_sp(carrier) R_sp(next phase))"
        if rule == "auto" else "given",
        **iso,
        "geometric_rule": "carrier cluster (face-connected) not reaching the counter electrode",
    }


def _current_fields(model: Model, m: dict, chosen, contact_ohm, carrier, a, side) -> dict:
    """The 3D current fields of the chosen tip positions (:func:`tip_field`), back in (z, y, x):
    {"arrays": [(|j|, j_normal)], "profiles": [...], "info": [...] for ssrm.json}."""
    pos, R = m["positions"], m["resistance_ohm"]
    face_axes = [AXES[d] for d in range(3) if d != a]
    out = {"arrays": [], "profiles": [], "info": []}
    for k in chosen:
        f = tip_field(None, None, pos[k], offsets=m["offsets"],
                      contact_resistance_ohm=contact_ohm, model=model)
        jd, jr, jc = f["current_density_A_cm2"]
        mag = np.sqrt(jd ** 2 + jr ** 2 + jc ** 2)
        out["arrays"].append((_unorient(mag, a, side), _unorient(jd, a, side)))
        out["profiles"].append(f["depth_profile_A_cm2"])
        out["info"].append({"position": {face_axes[0]: int(pos[k, 0]),
                                         face_axes[1]: int(pos[k, 1])},
                            "resistance_ohm": float(R[k]),
                            "resistance_check_ohm": float(f["resistance_ohm"]),
                            "phase": carrier,
                            "depth_profile_A_cm2": f["depth_profile_A_cm2"].tolist()})
    return out


def _dataset(m, olab, fields, vox, a, crop_ranges, shape, scanned_axis, side):
    """ssrm.zarr: the resistance map, its log10 and the phase under the tip on the face, the
    current fields in (field, z, y, x)."""
    import xarray as xr

    pos, R = m["positions"], m["resistance_ohm"]
    face_shape = olab.shape[1:]
    face_axes = [AXES[d] for d in range(3) if d != a]
    r_map = np.full(face_shape, np.nan)
    r_map[pos[:, 0], pos[:, 1]] = R
    phase_map = np.full(face_shape, 255, np.uint8)
    phase_map[pos[:, 0], pos[:, 1]] = olab[0][pos[:, 0], pos[:, 1]]
    coords = {}
    for d, name in enumerate(face_axes):
        ax = [x for x in range(3) if x != a][d]
        coords[name] = (np.arange(face_shape[d]) + crop_ranges[ax][0] + 0.5) * vox[ax]
    ds = xr.Dataset(
        {"resistance_ohm": (face_axes, r_map),
         "log10_resistance_ohm": (face_axes, np.log10(np.where(r_map > 0, r_map, np.nan))),
         "phase_under_tip": (face_axes, phase_map)},
        coords=coords)
    ds["phase_under_tip"].attrs["description"] = "label under the tip; 255 = not scanned"
    arrays = fields["arrays"]
    if arrays:
        zc = {name: (np.arange(shape[d]) + crop_ranges[d][0] + 0.5) * vox[d]
              for d, name in enumerate(AXES)}
        ds = ds.assign_coords(field=np.arange(len(arrays)), **zc)
        ds["current_density_magnitude_A_cm2"] = (
            ("field", *AXES), np.stack([f[0] for f in arrays]).astype(np.float32))
        ds["current_density_normal_A_cm2"] = (
            ("field", *AXES), np.stack([f[1] for f in arrays]).astype(np.float32))
        ds["depth_profile_A_cm2"] = (("field", "depth"), np.stack(fields["profiles"]))
        ds["field_resistance_ohm"] = ("field", np.array([fi["resistance_ohm"]
                                                          for fi in fields["info"]]))
    ds.attrs.update(voxel_size_um=list(vox), scanned_axis=scanned_axis,
                    scanned_side=side, bias_V=1.0, crop=crop_ranges)
    return ds
