"""compute_descriptors: all descriptors of a labelled volume, step by step; write_descriptors."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from voxelyte import contract
from voxelyte.contract import AXES, axis_index, load_labels, phase_table, volume_shape
from voxelyte.errors import InputError
from voxelyte.descriptors.chords import chord_length_summary, chord_lengths
from voxelyte.descriptors.correlation import two_point_correlation
from voxelyte.descriptors.fractions import (nominal_volume_fractions, through_thickness_profile,
                                            volume_fractions)
from voxelyte.descriptors.sizes import separate_particles, size_analysis
from voxelyte.descriptors.slices2d import slice_descriptors_2d
from voxelyte.descriptors.surfaces import (interface_areas, particle_contact_area,
                                            phase_surface_areas)
from voxelyte.descriptors.topology import connectivity


def compute_descriptors(labels, *, voxel_size_um, phases: dict,
                        nominal_composition: dict | None = None, electrode_normal_axis="z",
                        current_collector_side: str = "start", mass_reference_phase: str | None,
                        chord_step_voxels: int, surface_smoothing_voxels: float,
                        connectivity_order: int, slice_axis, min_particle_area_px: int,
                        size_phases: list[str] | None, n_sizes: int, particle_phase: str | None,
                        watershed_min_distance_um: float, watershed_smoothing_voxels: float,
                        two_point_max_lag_um: float | None, pore_phase: str,
                        slab_voxels: int) -> tuple[dict, dict]:
    """All descriptors of a labelled volume (the ``descriptors`` stage).

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    phases : dict
        The sample's phase table.
    nominal_composition : dict, optional
        ``volume_fraction`` or ``mass_fraction`` (+ densities) of the sample file.
    electrode_normal_axis : str or int
        The electrode normal.
    current_collector_side : {'start', 'end'}
        The side of the current collector along the normal.
    mass_reference_phase, chord_step_voxels, surface_smoothing_voxels, connectivity_order, \
slice_axis, min_particle_area_px, size_phases, n_sizes, particle_phase, \
watershed_min_distance_um, watershed_smoothing_voxels, two_point_max_lag_um, pore_phase, \
slab_voxels
        The ``stages.descriptors`` settings, each described (with its default) in the sample
        schema (``config.stage_defaults()["descriptors"]`` gives them all).

    Returns
    -------
    scalars : dict
        JSON types (non-finite -> None), units in the names; a pair ``a_b`` follows the order of
        the phase table: ``volume_fraction_<p>`` (+ ``_nominal``, ``_minus_nominal``),
        ``surface_area_<p>_um2``, ``specific_surface_area_<p>_um-1`` and
        ``..._per_<p>_mass_m2_g``, ``interface_area_<a>_<b>_um2`` (Eq. 1),
        ``specific_interface_area_<a>_<b>_um-1`` and ``..._per_<ref>_mass_m2_g``,
        ``surface_coverage_<ref>_by_<p>``, chord statistics, ``connectivity_<p>_*``,
        ``profile_*``, ``slice2d_*``, local thickness, granulometry, correlation lengths,
        ``particle_*``.
    tables : dict of pandas.DataFrame
        chord_length_distribution, connectivity, through_thickness_profile, slice_descriptors_2d,
        local_thickness_distribution, granulometry, two_point_correlation, particle_sizes.

    References
    ----------
    Minnmann et al. 2024 (fractions, marching-cubes areas, Eq. 1 interfaces, chords);
    Etiemble et al. 2017 (granulometry, local thickness, watershed sizes, profiles);
    Gamo et al. SI Tables S1/S2 (2D slice descriptors).
    """
    table = phase_table(phases)
    voxel = contract.voxel_size_um(voxel_size_um)
    normal = AXES[axis_index(electrode_normal_axis)]
    s = volume_header(labels, voxel, normal, current_collector_side)
    vf = volume_fractions(labels, table, slab_voxels=slab_voxels)
    s.update(fraction_descriptors(vf, table, s["total_volume_um3"], nominal_composition,
                                  pore_phase))
    s.update(surface_descriptors(labels, table, voxel, vf, s["total_volume_um3"],
                                 mass_reference_phase, surface_smoothing_voxels, slab_voxels))
    s["chord_step_voxels"] = int(chord_step_voxels)
    line_scalars, line_tables = line_and_slice_descriptors(
        labels, table, voxel, normal, current_collector_side, chord_step_voxels,
        connectivity_order, slice_axis, min_particle_area_px, slab_voxels)
    s.update(line_scalars)
    tables = dict(line_tables)
    arr = load_labels(labels)
    size_scalars, size_tables = size_descriptors(arr, table, voxel, size_phases, n_sizes,
                                                 two_point_max_lag_um, slab_voxels)
    s.update(size_scalars)
    tables.update(size_tables)
    if particle_phase and particle_phase in table:
        s_part, tables["particle_sizes"] = particle_descriptors(
            arr, table, voxel, particle_phase, watershed_min_distance_um,
            watershed_smoothing_voxels)
        s.update(s_part)
    return contract.to_jsonable(s), tables


def line_and_slice_descriptors(labels, table, voxel, normal: str, current_collector_side: str,
                               chord_step_voxels: int, connectivity_order: int, slice_axis,
                               min_particle_area_px: int, slab_voxels: int):
    """Chords, connectivity, through-thickness profiles and 2D slice statistics.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
    table : PhaseTable
    voxel : tuple of float
        (dz, dy, dx) in µm.
    normal : str
        Electrode-normal axis name.
    current_collector_side : {'start', 'end'}
    chord_step_voxels, connectivity_order, slice_axis, min_particle_area_px, slab_voxels
        Settings of :func:`chord_lengths`, :func:`connectivity` and
        :func:`slice_descriptors_2d`.

    Returns
    -------
    scalars : dict
    tables : dict of pandas.DataFrame
        chord_length_distribution, connectivity, through_thickness_profile,
        slice_descriptors_2d.
    """
    s, tables = {}, {}
    counts = chord_lengths(labels, table, voxel, step_voxels=chord_step_voxels,
                           slab_voxels=slab_voxels)
    chord_scalars, tables["chord_length_distribution"] = chord_length_summary(counts, voxel)
    s.update(chord_scalars)
    conn_scalars, tables["connectivity"] = connectivity_descriptors(
        labels, table, connectivity_order, normal, current_collector_side)
    s.update(conn_scalars)
    tables["through_thickness_profile"], prof = through_thickness_profile(
        labels, table, voxel, electrode_normal_axis=normal, slab_voxels=slab_voxels)
    s.update(prof)
    tables["slice_descriptors_2d"], s2d = slice_descriptors_2d(
        labels, table, voxel, slice_axis=slice_axis, min_particle_area_px=min_particle_area_px,
        slab_voxels=slab_voxels)
    s.update(s2d)
    return s, tables


def volume_header(labels, voxel, normal: str, current_collector_side: str) -> dict:
    """Shape, voxel size, total volume and orientation of the volume.

    Parameters
    ----------
    labels : array_like, (z, y, x)
    voxel : tuple of float
        (dz, dy, dx) in µm.
    normal : str
        Electrode-normal axis name.
    current_collector_side : {'start', 'end'}

    Returns
    -------
    dict
        ``shape_<axis>``, ``voxel_size_<axis>_um``, ``total_volume_um3``,
        ``electrode_normal_axis``, ``current_collector_side``.
    """
    shape = volume_shape(labels)
    if current_collector_side not in ("start", "end"):
        raise InputError("unknown current-collector side", field="current_collector_side",
                         expected="start or end", found=current_collector_side)
    return {"shape_z": shape[0], "shape_y": shape[1], "shape_x": shape[2],
            "voxel_size_z_um": voxel[0], "voxel_size_y_um": voxel[1],
            "voxel_size_x_um": voxel[2],
            "total_volume_um3": float(np.prod(shape) * np.prod(voxel)),
            "electrode_normal_axis": normal, "current_collector_side": current_collector_side}


def fraction_descriptors(vf: dict, table, total_um3: float, nominal_composition: dict | None,
                         pore_phase: str) -> dict:
    """Volume fractions, phase volumes and the difference to the nominal composition.

    Parameters
    ----------
    vf : dict
        :func:`volume_fractions` of the labels.
    table : PhaseTable
    total_um3 : float
        Volume of the box (µm³).
    nominal_composition : dict, optional
    pore_phase : str

    Returns
    -------
    dict
        ``volume_fraction_<p>``, ``volume_<p>_um3``, ``volume_fraction_unassigned``,
        ``volume_fraction_<p>_nominal`` and ``..._minus_nominal``.
    """
    s = {}
    for name in table:
        s[f"volume_fraction_{name}"] = vf[name]
        s[f"volume_{name}_um3"] = vf[name] * total_um3
    s["volume_fraction_unassigned"] = vf["unassigned"]
    for name, v in nominal_volume_fractions(nominal_composition, table,
                                            pore_phase=pore_phase).items():
        s[f"volume_fraction_{name}_nominal"] = v
        s[f"volume_fraction_{name}_minus_nominal"] = vf[name] - v
    return s


def surface_descriptors(labels, table, voxel, vf: dict, total_um3: float,
                        mass_reference_phase: str | None, smoothing_voxels: float,
                        slab_voxels: int) -> dict:
    """Surface and interface areas, per volume and per mass, and surface coverage.

    S_a,b = (S_a + S_b − S_a∪b) / 2 (Eq. 1 of Minnmann et al. 2024); per mass: area divided by
    the phase's mass φ V ρ (µm² / (µm³ g cm⁻³) = m² g⁻¹).

    Parameters
    ----------
    labels : array_like, (z, y, x)
    table : PhaseTable
    voxel : tuple of float
    vf : dict
        Volume fractions.
    total_um3 : float
    mass_reference_phase : str, optional
    smoothing_voxels : float
    slab_voxels : int

    Returns
    -------
    dict
        ``surface_smoothing_voxels``, ``surface_area_<p>_um2``, ``specific_surface_area_*``,
        ``interface_area_<a>_<b>_um2``, ``specific_interface_area_*``,
        ``surface_coverage_<ref>_by_<p>``.
    """
    areas = phase_surface_areas(labels, table, voxel, smoothing_voxels=smoothing_voxels,
                                slab_voxels=slab_voxels)
    inter = interface_areas(labels, table, voxel, surface_areas_um2=areas,
                            smoothing_voxels=smoothing_voxels, slab_voxels=slab_voxels)
    s = {"surface_smoothing_voxels": smoothing_voxels}
    ref = table.get(mass_reference_phase) if mass_reference_phase else None
    ref_mass_g = (vf[mass_reference_phase] * total_um3 * ref["density_g_cm3"]
                  if ref and (ref.get("density_g_cm3") or 0) > 0 else 0.0)  # in 1e-12 g
    for name, spec in table.items():
        s[f"surface_area_{name}_um2"] = areas[name]
        s[f"specific_surface_area_{name}_um-1"] = areas[name] / total_um3
        rho, vol = spec.get("density_g_cm3") or 0.0, vf[name] * total_um3
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
                    area / areas[mass_reference_phase] if areas[mass_reference_phase] > 0 \
                    else None
    return s


def connectivity_descriptors(labels, table, connectivity_order: int, normal: str,
                             current_collector_side: str):
    """Percolating / dead-end / isolated fractions per phase and axis (:func:`connectivity`).

    Parameters
    ----------
    labels : array_like, (z, y, x)
    table : PhaseTable
    connectivity_order : int
    normal : str
    current_collector_side : {'start', 'end'}

    Returns
    -------
    scalars : dict
        ``connectivity_<p>_<measure>``.
    table : pandas.DataFrame
        One row per phase and axis.
    """
    import pandas as pd

    conn = connectivity(labels, table, connectivity_order=connectivity_order,
                        electrode_normal_axis=normal, current_collector_side=current_collector_side)
    s, rows = {}, []
    for name, res in conn.items():
        for key, v in res.items():
            s[f"connectivity_{name}_{key}"] = v
        for axis in AXES:
            rows.append({"phase": name, "axis": axis, **{k: res[f"{k}_{axis}"] for k in
                                                         ("percolating", "dead_end", "isolated")}})
    return s, pd.DataFrame(rows)


def size_descriptors(arr: np.ndarray, table, voxel, size_phases, n_sizes: int,
                     two_point_max_lag_um, slab_voxels: int):
    """Local thickness, granulometry and two-point correlation of each size phase.

    Parameters
    ----------
    arr : numpy.ndarray of int, (z, y, x)
    table : PhaseTable
    voxel : tuple of float
    size_phases : list of str, optional
        None: every phase.
    n_sizes : int
    two_point_max_lag_um : float, optional
    slab_voxels : int

    Returns
    -------
    scalars : dict
    tables : dict of pandas.DataFrame
        local_thickness_distribution, granulometry, two_point_correlation.

    References
    ----------
    Etiemble et al. 2017 (local thickness, granulometry); Torquato 2002 (two-point correlation).
    """
    import pandas as pd

    s, lt_rows, gr_rows, tp_rows = {}, [], [], []
    for name in (size_phases if size_phases is not None else list(table)):
        if name not in table:
            raise InputError("unknown phase", field="size_phases",
                             expected=f"one of {sorted(table)}", found=name)
        mask = arr == table[name]["label"]
        if mask.any():
            lt, lt_stats, gr, gr_stats = size_analysis(mask, voxel, n_sizes)
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
    tables = {key: pd.concat(rows, ignore_index=True)
              for key, rows in (("local_thickness_distribution", lt_rows),
                                ("granulometry", gr_rows), ("two_point_correlation", tp_rows))
              if rows}
    return s, tables


def particle_descriptors(arr: np.ndarray, table, voxel, particle_phase: str,
                         min_distance_um: float, smoothing_voxels: float):
    """Watershed particles of one phase: count, sizes, contacts between particles.

    Parameters
    ----------
    arr : numpy.ndarray of int, (z, y, x)
    table : PhaseTable
    voxel : tuple of float
    particle_phase : str
    min_distance_um, smoothing_voxels : float
        Watershed settings (:func:`separate_particles`).

    Returns
    -------
    scalars : dict
        ``particle_contact_area_<p>_um2``, ``surface_coverage_<p>_particles_by_<p>``,
        ``particle_count_<p>`` (+ ``_interior``), mean and volume-weighted median equivalent
        diameter.
    particles : pandas.DataFrame
        One row per particle.

    References
    ----------
    Etiemble et al. 2017 (watershed particle sizes).
    """
    p = particle_phase
    particle_labels, particles = separate_particles(
        arr, table[p]["label"], voxel, min_distance_um=min_distance_um,
        smoothing_voxels=smoothing_voxels)
    contacts = particle_contact_area(particle_labels, voxel)
    del particle_labels
    d = particles["equivalent_diameter_um"].to_numpy()
    vol = particles["volume_um3"].to_numpy()
    order = np.argsort(d)                  # volume-weighted median equivalent diameter
    s = {f"particle_contact_area_{p}_um2": contacts["contact_area_um2"],
         f"surface_coverage_{p}_particles_by_{p}": contacts["contact_fraction"],
         f"particle_count_{p}": int(len(d)),
         f"particle_count_{p}_interior": int((~particles["touches_boundary"]).sum()),
         f"particle_mean_equivalent_diameter_{p}_um": float(d.mean()) if d.size else None,
         f"particle_d50_volume_weighted_{p}_um": float(
             d[order][np.searchsorted(np.cumsum(vol[order]), vol.sum() / 2)])
         if d.size else None}
    return s, particles


def write_descriptors(scalars: dict, tables: dict, out_dir) -> dict[str, Path]:
    """Write ``descriptors.json`` and one ``<name>.csv`` per table, each atomically.

    Parameters
    ----------
    scalars : dict
        Written with :func:`voxelyte.contract.write_json_atomic` (non-finite -> null).
    tables : dict
        DataFrames -> ``<name>.csv``; xarray Datasets -> ``<name>.nc``.
    out_dir : str or Path

    Returns
    -------
    dict
        Name -> path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"descriptors": contract.write_json_atomic(scalars, out / "descriptors.json")}
    for name, tab in tables.items():
        if hasattr(tab, "to_netcdf"):
            paths[name] = contract.atomic_write(out / f"{name}.nc", tab.to_netcdf)
        else:
            paths[name] = contract.atomic_write(
                out / f"{name}.csv", lambda p, t=tab: t.to_csv(p, index=False))
    return paths
