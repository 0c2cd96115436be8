"""compute_descriptors: all descriptors of a labelled volume; write_descriptors."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import numpy as np

from voxelyte.errors import InputError
from voxelyte.descriptors._common import (AXES, DEFAULT_SMOOTHING_VOXELS, _axis_index, _clean, _load,
                                          _phase_table, _shape, _voxel)
from voxelyte.descriptors.chords import chord_length_summary, chord_lengths
from voxelyte.descriptors.correlation import two_point_correlation
from voxelyte.descriptors.fractions import (nominal_volume_fractions, through_thickness_profile,
                                            volume_fractions)
from voxelyte.descriptors.sizes import _size_analysis, separate_particles
from voxelyte.descriptors.slices2d import slice_descriptors_2d
from voxelyte.descriptors.surfaces import (interface_areas, particle_contact_area,
                                            phase_surface_areas)
from voxelyte.descriptors.topology import connectivity


def compute_descriptors(labels, *, voxel_size_um, phases: dict,
                        nominal_composition: dict | None = None, electrode_normal_axis="z",
                        current_collector_side: str = "start",
                        mass_reference_phase: str | None = "CAM", chord_step_voxels: int = 2,
                        surface_smoothing_voxels: float = DEFAULT_SMOOTHING_VOXELS,
                        connectivity_order: int = 1, slice_axis="z",
                        min_particle_area_px: int = 1, size_phases: list[str] | None = None,
                        n_sizes: int = 24, particle_phase: str | None = "CAM",
                        watershed_min_distance_um: float = 0.4,
                        watershed_smoothing_voxels: float = 0.5,
                        two_point_max_lag_um: float | None = None,
                        pore_phase: str = "pore", slab_voxels: int = 64) -> tuple[dict, dict]:
    """All descriptors of a labelled volume (numpy, dask or xarray (z, y, x) integer labels).

    Returns (scalars, tables). Scalars (JSON types, NaN -> None, units in the names; a pair
    ``a_b`` follows the order of the phase table): ``volume_fraction_<p>``, ``..._nominal``
    and ``..._minus_nominal``, ``surface_area_<p>_um2``, ``specific_surface_area_<p>_um-1`` (per
    total volume) and ``..._per_<p>_mass_m2_g``, ``interface_area_<a>_<b>_um2`` (Eq. 1),
    ``specific_interface_area_<a>_<b>_um-1`` and ``..._per_<ref>_mass_m2_g``,
    ``surface_coverage_<ref>_by_<p>`` (= S_ref,p / S_ref), ``particle_contact_area_<p>_um2`` and
    ``surface_coverage_<p>_particles_by_<p>`` (contacts between watershed particles), chord
    counts and
    ``mean_chord_length_<p>[_<axis>]_um``, ``connectivity_<p>_{percolating,dead_end,isolated}_
    <axis>`` and ``connectivity_<p>_isolated_from_current_collector``, ``profile_*``,
    ``slice2d_*``, ``mean/median_local_thickness_<p>_um``, ``granulometry_mean_radius_<p>_um``,
    ``correlation_length_<p>_<axis>_um``, ``integral_range_<p>_<axis>_um``, ``particle_*``.
    Tables (pandas.DataFrame): chord_length_distribution, connectivity,
    through_thickness_profile, slice_descriptors_2d, local_thickness_distribution,
    granulometry, two_point_correlation, particle_sizes.

    ``mass_reference_phase`` absent from the table or without a positive density: per-mass
    interface areas are left out. ``size_phases``: phases for local thickness, granulometry and
    two-point correlation (None: all). ``particle_phase``: watershed phase (None or absent:
    skipped). Memory: see the package docstring (global descriptors hold the whole volume)."""
    import pandas as pd

    table = _phase_table(phases)
    voxel = _voxel(voxel_size_um)
    shape = _shape(labels)
    normal = AXES[_axis_index(electrode_normal_axis)]
    if current_collector_side not in ("start", "end"):
        raise InputError("unknown current-collector side", field="current_collector_side",
                         expected="start or end", found=current_collector_side)
    total_um3 = float(np.prod(shape) * np.prod(voxel))
    s: dict = {"shape_z": shape[0], "shape_y": shape[1], "shape_x": shape[2],
               "voxel_size_z_um": voxel[0], "voxel_size_y_um": voxel[1], "voxel_size_x_um": voxel[2],
               "total_volume_um3": total_um3, "electrode_normal_axis": normal,
               "current_collector_side": current_collector_side}
    tables: dict = {}

    vf = volume_fractions(labels, table, slab_voxels=slab_voxels)
    for name in table:
        s[f"volume_fraction_{name}"] = vf[name]
        s[f"volume_{name}_um3"] = vf[name] * total_um3
    s["volume_fraction_unassigned"] = vf["unassigned"]
    for name, v in nominal_volume_fractions(nominal_composition, table, pore_phase=pore_phase).items():
        s[f"volume_fraction_{name}_nominal"] = v
        s[f"volume_fraction_{name}_minus_nominal"] = vf[name] - v

    areas = phase_surface_areas(labels, table, voxel, smoothing_voxels=surface_smoothing_voxels,
                                slab_voxels=slab_voxels)
    inter = interface_areas(labels, table, voxel, surface_areas_um2=areas,
                            smoothing_voxels=surface_smoothing_voxels, slab_voxels=slab_voxels)
    s["surface_smoothing_voxels"] = surface_smoothing_voxels
    ref = table.get(mass_reference_phase) if mass_reference_phase else None
    ref_mass_g = (vf[mass_reference_phase] * total_um3 * ref["density_g_cm3"]
                  if ref and (ref.get("density_g_cm3") or 0) > 0 else 0.0)  # in 1e-12 g
    for name, spec in table.items():
        s[f"surface_area_{name}_um2"] = areas[name]
        s[f"specific_surface_area_{name}_um-1"] = areas[name] / total_um3
        rho, vol = spec.get("density_g_cm3") or 0.0, vf[name] * total_um3
        # µm² / (µm³ · g cm⁻³) = 1e-12 m² / 1e-12 g = m² g⁻¹
        s[f"specific_surface_area_{name}_per_{name}_mass_m2_g"] = \
            areas[name] / (vol * rho) if rho > 0 and vol > 0 else None
    for (a, b), area in inter.items():
        s[f"interface_area_{a}_{b}_um2"] = area
        s[f"specific_interface_area_{a}_{b}_um-1"] = area / total_um3
        if ref_mass_g > 0:
            key = f"specific_interface_area_{a}_{b}_per_{mass_reference_phase}_mass_m2_g"
            s[key] = area / ref_mass_g
    if ref:
        for (a, b), area in inter.items():
            if mass_reference_phase in (a, b):
                other = b if a == mass_reference_phase else a
                s[f"surface_coverage_{mass_reference_phase}_by_{other}"] = \
                    area / areas[mass_reference_phase] if areas[mass_reference_phase] > 0 else None

    counts = chord_lengths(labels, table, voxel, step_voxels=chord_step_voxels, slab_voxels=slab_voxels)
    chord_scalars, tables["chord_length_distribution"] = chord_length_summary(counts, voxel)
    s["chord_step_voxels"] = int(chord_step_voxels)
    s.update(chord_scalars)

    conn = connectivity(labels, table, connectivity_order=connectivity_order,
                        electrode_normal_axis=normal, current_collector_side=current_collector_side)
    rows = []
    for name, res in conn.items():
        for key, v in res.items():
            s[f"connectivity_{name}_{key}"] = v
        for axis in AXES:
            rows.append({"phase": name, "axis": axis, **{k: res[f"{k}_{axis}"] for k in
                                                         ("percolating", "dead_end", "isolated")}})
    tables["connectivity"] = pd.DataFrame(rows)

    tables["through_thickness_profile"], prof = through_thickness_profile(
        labels, table, voxel, electrode_normal_axis=normal, slab_voxels=slab_voxels)
    s.update(prof)
    tables["slice_descriptors_2d"], s2d = slice_descriptors_2d(
        labels, table, voxel, slice_axis=slice_axis, min_particle_area_px=min_particle_area_px,
        slab_voxels=slab_voxels)
    s.update(s2d)

    arr = _load(labels)
    lt_rows, gr_rows, tp_rows = [], [], []
    for name in (size_phases if size_phases is not None else list(table)):
        if name not in table:
            raise InputError("unknown phase", field="size_phases", expected=f"one of {sorted(table)}",
                             found=name)
        mask = arr == table[name]["label"]
        if mask.any():
            lt, lt_stats, gr, gr_stats = _size_analysis(mask, voxel, n_sizes)
            lt.insert(0, "phase", name)
            gr.insert(0, "phase", name)
            lt_rows.append(lt)
            gr_rows.append(gr)
            s[f"mean_local_thickness_{name}_um"] = lt_stats["mean_local_thickness_um"]
            s[f"median_local_thickness_{name}_um"] = lt_stats["median_local_thickness_um"]
            s[f"granulometry_mean_radius_{name}_um"] = gr_stats["granulometry_mean_radius_um"]
        del mask
        tp, stats = two_point_correlation(arr, table[name]["label"], voxel,
                                          max_lag_um=two_point_max_lag_um, slab_voxels=slab_voxels)
        tp.insert(0, "phase", name)
        tp_rows.append(tp)
        for axis, st in stats.items():
            s[f"correlation_length_{name}_{axis}_um"] = st["correlation_length_um"]
            s[f"integral_range_{name}_{axis}_um"] = st["integral_range_um"]
    for key, rows_ in (("local_thickness_distribution", lt_rows), ("granulometry", gr_rows),
                       ("two_point_correlation", tp_rows)):
        if rows_:
            tables[key] = pd.concat(rows_, ignore_index=True)

    if particle_phase and particle_phase in table:
        particle_labels, particles = separate_particles(
            arr, table[particle_phase]["label"], voxel, min_distance_um=watershed_min_distance_um,
            smoothing_voxels=watershed_smoothing_voxels)
        contacts = particle_contact_area(particle_labels, voxel)
        del particle_labels
        s[f"particle_contact_area_{particle_phase}_um2"] = contacts["contact_area_um2"]
        s[f"surface_coverage_{particle_phase}_particles_by_{particle_phase}"] = \
            contacts["contact_fraction"]
        tables["particle_sizes"] = particles
        d = particles["equivalent_diameter_um"].to_numpy()
        s[f"particle_count_{particle_phase}"] = int(len(d))
        s[f"particle_count_{particle_phase}_interior"] = int((~particles["touches_boundary"]).sum())
        s[f"particle_mean_equivalent_diameter_{particle_phase}_um"] = \
            float(d.mean()) if d.size else None
        vol = particles["volume_um3"].to_numpy()
        order = np.argsort(d)                  # volume-weighted median equivalent diameter
        s[f"particle_d50_volume_weighted_{particle_phase}_um"] = float(
            d[order][np.searchsorted(np.cumsum(vol[order]), vol.sum() / 2)]) if d.size else None
    return _clean(s), tables


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_descriptors(scalars: dict, tables: dict, out_dir) -> dict[str, Path]:
    """Write ``descriptors.json`` (NaN as null) and one ``<name>.csv`` per DataFrame table
    (``<name>.nc`` for xarray Datasets) into ``out_dir``, each atomically (tmp + rename).
    Returns {name: path}."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    text = json.dumps(_clean(scalars), indent=2, allow_nan=False) + "\n"
    paths["descriptors"] = out / "descriptors.json"
    _atomic_write(paths["descriptors"], lambda p: p.write_text(text))
    for name, tab in tables.items():
        if hasattr(tab, "to_netcdf"):
            paths[name] = out / f"{name}.nc"
            _atomic_write(paths[name], lambda p, t=tab: t.to_netcdf(p))
        else:
            paths[name] = out / f"{name}.csv"
            _atomic_write(paths[name], lambda p, t=tab: t.to_csv(p, index=False))
    return paths
