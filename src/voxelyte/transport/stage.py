"""The transport stage (:func:`run_transport`): per-phase tortuosity factors, the random-walk τ
beside them, multi-phase conductivities and κ, "what if" scenarios and the current fields, all
from :func:`tortuosity` / :func:`multiphase_conductivity` on one set of shared solves."""
from __future__ import annotations

import time

import numpy as np
import xarray as xr

from voxelyte.contract import (AXES, CONDUCTIVITY_KINDS, axis_index, load_labels, phase_table,
                               volume_fractions, voxel_size_um as checked_voxel)
from voxelyte.errors import InputError
from voxelyte.random_walk import random_walk_tortuosity

from .memory import check_memory
from .properties import (bulk_conductivities, kappa_comparison, kappa_experimental,
                         label_counts, multiphase_conductivity, tortuosity)
from .solves import SolveCache, one_hot_lut

_FIELD = "stages.transport"


def _unknown(what: str, field: str, expected: str, found, sample):
    return InputError(f"unknown {what}", sample=sample, field=f"{_FIELD}.{field}",
                      expected=expected, found=found)


def central_crop(lab, crop_zyx, sample: str | None = None):
    """The central box of ``crop_zyx`` voxels of a volume (clipped to it).

    Parameters
    ----------
    lab : numpy.ndarray, dask array or xarray.DataArray, (z, y, x)
        Sliced lazily where it is lazy.
    crop_zyx : sequence of 3 int or None
        Box size; None = the whole volume.
    sample : str, optional
        Named in errors.

    Returns
    -------
    tuple
        (the box, its start index [z, y, x]).
    """
    if crop_zyx is None:
        return lab, [0, 0, 0]
    size = [int(c) for c in crop_zyx]
    if len(size) != 3 or min(size) < 1:
        raise InputError("crop must be three positive sizes (z, y, x)", sample=sample,
                         field=f"{_FIELD}.crop_zyx", expected="[nz, ny, nx] >= 1",
                         found=crop_zyx)
    size = [min(c, n) for c, n in zip(size, lab.shape)]
    start = [(n - c) // 2 for c, n in zip(size, lab.shape)]
    sl = tuple(slice(s, s + c) for s, c in zip(start, size))
    if hasattr(lab, "dims"):
        return lab.isel(dict(zip(lab.dims, sl))), start
    return lab[sl], start


def apply_scenario(lab: np.ndarray, phases, scenario: dict, sample: str | None = None):
    """Labels and phase table of a "what if" scenario.

    Parameters
    ----------
    lab : numpy.ndarray of int
    phases : dict or PhaseTable
    scenario : dict
        ``name``; ``reassign`` {from phase: to phase} relabels voxels (e.g. {pore: CAM}: filled
        porosity); ``conductivities`` {phase: {sigma_<kind>_S_cm: value}} replaces bulk values.
    sample : str, optional

    Returns
    -------
    tuple
        (labels, phase table as dict); the input is not changed.
    """
    table = phase_table(phases)
    name = scenario.get("name", "?")
    new_table = {n: dict(s) for n, s in table.items()}
    out = lab
    for src, dst in (scenario.get("reassign") or {}).items():
        for phase in (src, dst):
            if phase not in table:
                raise InputError(f"scenario '{name}' names an unknown phase", sample=sample,
                                 field=f"{_FIELD}.scenarios.{name}.reassign",
                                 expected=f"one of {sorted(table)}", found=phase)
        if out is lab:
            out = lab.copy()
        out[lab == table[src]["label"]] = table[dst]["label"]
    for phase, values in (scenario.get("conductivities") or {}).items():
        if phase not in table:
            raise InputError(f"scenario '{name}' names an unknown phase", sample=sample,
                             field=f"{_FIELD}.scenarios.{name}.conductivities",
                             expected=f"one of {sorted(table)}", found=phase)
        new_table[phase].update({k: float(v) for k, v in values.items()})
    return out, new_table


def case_lut(phases, case: str, size: int, insulating_ratio: float,
             sample: str | None = None) -> np.ndarray:
    """Conductivity per label value of a flux-field case: a phase name (σ_bulk = 1, the single
    phase solve) or a kind (every phase at its bulk value, the multi-phase solve).

    Parameters
    ----------
    phases : dict or PhaseTable
    case : str
    size : int
        Minimum length of the table.
    insulating_ratio : float
    sample : str, optional

    Returns
    -------
    numpy.ndarray
    """
    table = phase_table(phases)
    if case in table:
        return one_hot_lut(table[case]["label"], size)
    return table.conductivity_lut(case, size=size, insulating_ratio=insulating_ratio,
                                  sample=sample)


def _settings(table, *, axes, kinds, tortuosity_phases, flux_fields, random_walk,
              electrode_normal_axis, field_axis, sample) -> dict:
    """The stage's checked selections (axis names, kinds, phases, cases, random walk)."""
    axes = [AXES[axis_index(ax)] for ax in axes]
    normal = AXES[axis_index(electrode_normal_axis)]
    field_axis = AXES[axis_index(field_axis)] if field_axis is not None else normal
    kinds = list(kinds)
    kind_list = " or ".join(CONDUCTIVITY_KINDS)
    for kind in kinds:
        if kind not in CONDUCTIVITY_KINDS:
            raise _unknown("conduction kind", "kinds", kind_list, kind, sample)
    names = list(table) if tortuosity_phases is None else list(tortuosity_phases)
    for name in names:
        if name not in table:
            raise _unknown("phase", "tortuosity_phases", f"one of {sorted(table)}", name, sample)
    flux_fields = list(flux_fields or ())
    for case in flux_fields:
        if case not in table and case not in CONDUCTIVITY_KINDS:
            raise _unknown("flux field case", "flux_fields", f"a kind "
                           f"({', '.join(CONDUCTIVITY_KINDS)}) or a phase {sorted(table)}",
                           case, sample)
    rw = dict(random_walk or {})
    rw_enabled = bool(rw.pop("enabled", True)) and random_walk is not None
    rw_phases = rw.pop("phases", None)
    rw_phases = names if rw_phases is None else list(rw_phases)
    for name in rw_phases if rw_enabled else ():
        if name not in table:
            raise _unknown("phase", "random_walk.phases", f"one of {sorted(table)}", name,
                           sample)
    return {"axes": axes, "kinds": kinds, "names": names, "flux_fields": flux_fields,
            "normal": normal, "field_axis": field_axis, "walk": rw, "walk_enabled": rw_enabled,
            "walk_phases": rw_phases}


def _tortuosity_entry(r: dict, table, name: str) -> dict:
    """The summary entry of one :func:`tortuosity` result: σ_eff per kind the phase conducts."""
    entry = {k: v for k, v in r.items() if k not in ("axis", "phase_label")}
    entry["sigma_eff_S_cm"] = {k: r["sigma_eff_rel"] * bulk_conductivities(table, k)[name]
                               for k in CONDUCTIVITY_KINDS
                               if bulk_conductivities(table, k)[name] > 0}
    return entry


def _random_walks(lab, table, voxel, sel, tortuosities) -> dict:
    """Random-walk τ of the walked phases; adds its columns beside the flux τ."""
    out = {}
    for name in sel["walk_phases"]:
        w = random_walk_tortuosity(lab, table[name]["label"], voxel, axes=sel["axes"],
                                   return_msd=True, **sel["walk"])
        out[name] = w
        for ax in sel["axes"]:
            entry = tortuosities.get(name, {}).get(ax)
            if entry is not None:
                entry["tortuosity_factor_random_walk"] = w[ax]["tortuosity_factor"]
                entry["tortuosity_factor_random_walk_stderr"] = w[ax]["tortuosity_factor_stderr"]
    return out


def _conductivities(lab, table, voxel, sel, solves, insulating_ratio, sample) -> dict:
    """:func:`multiphase_conductivity` per kind × axis; None for a kind no phase conducts."""
    table = phase_table(table)
    out = {}
    for kind in sel["kinds"]:
        lut = table.conductivity_lut(kind, insulating_ratio=insulating_ratio, sample=sample)
        if lut.max(initial=0.0) <= 0:
            out[kind] = None
            continue
        out[kind] = {ax: multiphase_conductivity(lab, table, voxel, ax, kind,
                                                 insulating_ratio=insulating_ratio,
                                                 solves=solves, sample=sample)
                     for ax in sel["axes"]}
    return out


def _scenarios(lab, table, voxel, sel, solves, scenarios, insulating_ratio, sample) -> dict:
    """Fractions and conductivities of every scenario (:func:`apply_scenario`)."""
    out = {}
    for scenario in scenarios or ():
        name = scenario.get("name")
        if not name or name in out:
            raise InputError("scenario needs a unique name", sample=sample,
                             field=f"{_FIELD}.scenarios", expected="a unique name", found=name)
        lab_s, table_s = apply_scenario(lab, table, scenario, sample)
        out[name] = {
            "description": scenario.get("description", ""),
            "reassign": dict(scenario.get("reassign") or {}),
            "conductivities": dict(scenario.get("conductivities") or {}),
            "volume_fractions": volume_fractions(lab_s, table_s),
            "conductivity": _conductivities(lab_s, table_s, voxel, sel, solves,
                                            insulating_ratio, sample)}
        del lab_s
    return out


def _field_coords(labels, shape, voxel, crop_start) -> dict:
    """µm coordinates of the voxel centres; the input volume's own, where it has them."""
    coords = {ax: xr.Variable(ax, (np.arange(n) + 0.5 + s) * d, attrs={"units": "um"})
              for ax, n, d, s in zip(AXES, shape, voxel, crop_start)}
    for ax in AXES:
        given = getattr(labels, "coords", {}).get(ax) if hasattr(labels, "coords") else None
        if given is not None and given.size == coords[ax].size:
            coords[ax] = xr.Variable(ax, np.asarray(given.values, float), attrs={"units": "um"})
    return coords


def current_fields(lab, phases, cases, axis: str, solves: SolveCache, coords: dict, *,
                   insulating_ratio: float, sample: str | None = None) -> xr.Dataset:
    """The saved current fields: |j| and j along ``axis`` per case (ΔV = 1 V; single-phase cases
    at σ_bulk = 1 S cm⁻¹), float32, and σ_eff of each case.

    Parameters
    ----------
    lab : numpy.ndarray of int, (z, y, x)
    phases : dict or PhaseTable
    cases : list of str
        Kinds and / or phase names (:func:`case_lut`).
    axis : str
    solves : SolveCache
        With the cases' solves marked by :meth:`SolveCache.keep_field`.
    coords : dict
        z, y, x coordinates.
    insulating_ratio : float
    sample : str, optional

    Returns
    -------
    xarray.Dataset
        ``current_density_magnitude_A_cm2`` and ``current_density_axial_A_cm2`` (case, z, y, x),
        ``sigma_eff_S_cm`` (case); no variables without cases.
    """
    fields = xr.Dataset(coords=coords)
    if not cases:
        return fields
    size = int(lab.max(initial=0)) + 1
    mags, axials, sig = [], [], []
    for case in cases:
        r = solves(lab, case_lut(phases, case, size, insulating_ratio, sample), axis_index(axis))
        mags.append(r["j_magnitude"])
        axials.append(r["j_axis"])
        sig.append(r["sigma_eff_S_cm"])
    dims = ("case", *AXES)
    fields = fields.assign_coords(case=("case", list(cases)))
    fields["current_density_magnitude_A_cm2"] = (dims, np.stack(mags), {
        "units": "A cm-2", "long_name": "|j| at voxel centres"})
    fields["current_density_axial_A_cm2"] = (dims, np.stack(axials), {
        "units": "A cm-2", "component": axis,
        "long_name": f"j along the transport axis {axis}"})
    fields["sigma_eff_S_cm"] = (("case",), np.asarray(sig, float), {"units": "S cm-1"})
    return fields


def _summary_head(lab, full_shape, crop_start, voxel, fractions, sel, *, rtol, solver,
                  insulating_ratio, periodic, need, max_memory_gb) -> dict:
    """The summary's header: shapes, fractions, the settings used and the memory estimate."""
    return {
        "shape_zyx": list(lab.shape), "input_shape_zyx": full_shape, "crop_start_zyx": crop_start,
        "voxel_size_um": list(voxel), "volume_fractions": fractions, "tortuosity": {},
        "conductivity": {}, "scenarios": {}, "kappa": {},
        "settings": {"axes": sel["axes"], "rtol": rtol, "kinds": sel["kinds"],
                     "tortuosity_phases": sel["names"], "insulating_ratio": insulating_ratio,
                     "periodic": bool(periodic), "solver": solver,
                     "field_axis": sel["field_axis"], "electrode_normal_axis": sel["normal"],
                     "flux_fields": sel["flux_fields"],
                     "random_walk": dict(sel["walk"], enabled=sel["walk_enabled"],
                                         phases=sel["walk_phases"]),
                     "boundary": "Dirichlet on the two faces of the axis (ΔV = 1 V), no flux "
                                 "elsewhere" + (" (periodic sides)" if periodic else ""),
                     "tortuosity_definition": "tau = phi * sigma_bulk / sigma_eff (not squared)",
                     "macmullin_definition": "N_M = sigma_bulk / sigma_eff"},
        "memory": {"estimated_peak_gb": need, "max_memory_gb": max_memory_gb}}


def _properties(lab, table, voxel, sel, solves, summary, *, measured, scenarios,
                insulating_ratio, sample) -> None:
    """Fill the summary: tortuosity (+ random walk), conductivity, κ and scenarios."""
    summary["tortuosity"] = {
        name: {ax: _tortuosity_entry(tortuosity(lab, table[name]["label"], voxel, ax,
                                                solves=solves), table, name)
               for ax in sel["axes"]}
        for name in sel["names"]}
    if sel["walk_enabled"]:
        summary["random_walk"] = _random_walks(lab, table, voxel, sel, summary["tortuosity"])
    summary["conductivity"] = _conductivities(lab, table, voxel, sel, solves, insulating_ratio,
                                              sample)
    for kind in sel["kinds"]:
        per_axis = summary["conductivity"].get(kind)
        entry = kappa_comparison(
            kappa_experimental(table, summary["volume_fractions"], measured, kind),
            per_axis.get(sel["normal"]) if per_axis else None, sel["normal"])
        if entry is not None:
            summary["kappa"][kind] = entry
    summary["scenarios"] = _scenarios(lab, table, voxel, sel, solves, scenarios,
                                      insulating_ratio, sample)


def run_transport(labels, *, phases, voxel_size_um, axes, tortuosity_phases, kinds,
                  insulating_ratio: float, scenarios, random_walk: dict | None, flux_fields,
                  field_axis, periodic: bool, rtol: float, solver: dict | None, crop_zyx,
                  max_memory_gb: float | None, electrode_normal_axis, measured: dict | None = None,
                  sample: str | None = None):
    """The transport stage on a labelled volume: :func:`tortuosity` per phase × axis (with the
    random-walk τ of :func:`voxelyte.random_walk.random_walk_tortuosity` beside it),
    :func:`multiphase_conductivity` per kind × axis (phases below ``insulating_ratio`` × the best
    conductor insulate), κ_exp next to κ_sim along the electrode normal, the same per scenario
    (:func:`apply_scenario`), and the current fields (:func:`current_fields`) along
    ``field_axis`` — every solve shared through one :class:`SolveCache`.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray (its µm coordinates are kept).
    phases : dict or PhaseTable
    voxel_size_um : sequence of 3 float
    axes, tortuosity_phases, kinds, insulating_ratio, scenarios, random_walk, flux_fields,
    field_axis, periodic, rtol, solver, crop_zyx, max_memory_gb
        The ``stages.transport`` settings (defaults and meaning: the sample schema).
    electrode_normal_axis : str
        Axis of κ_sim (and of the fields when ``field_axis`` is None).
    measured : dict, optional
        The sample's measured σ_eff (``sigma_eff_<kind>_S_cm``) for κ_exp.
    sample : str, optional
        Named in errors.

    Returns
    -------
    summary : dict
        JSON-ready through :func:`voxelyte.contract.to_jsonable` (inf → null).
    fields : xarray.Dataset
        |j| and j along ``field_axis`` per case (case, z, y, x), float32, µm coords at voxel
        centres, ΔV = 1 V (single-phase cases at σ_bulk = 1 S cm⁻¹).
    """
    table = phase_table(phases)
    voxel = checked_voxel(voxel_size_um)
    if not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    if len(labels.shape) != 3:
        raise InputError("labels must be a 3D array (z, y, x)", sample=sample, field="labels",
                         expected="3 dimensions", found=tuple(labels.shape))
    full_shape = [int(n) for n in labels.shape]
    labels, crop_start = central_crop(labels, crop_zyx, sample)   # lazy for dask / xarray
    sel = _settings(table, axes=axes, kinds=kinds, tortuosity_phases=tortuosity_phases,
                    flux_fields=flux_fields, random_walk=random_walk, sample=sample,
                    electrode_normal_axis=electrode_normal_axis, field_axis=field_axis)
    solver = {k: v for k, v in (solver or {}).items() if v is not None}
    need = check_memory(labels.shape, max_memory_gb, sample=sample,
                        n_field_cases=len(sel["flux_fields"]),
                        preconditioner=solver.get("preconditioner"))
    lab = np.ascontiguousarray(load_labels(labels))
    label_counts(lab, table, sample=sample)
    t0 = time.perf_counter()
    solves = SolveCache(voxel, **solver, rtol=rtol, periodic=bool(periodic))
    a_field, size = axis_index(sel["field_axis"]), int(lab.max(initial=0)) + 1
    for case in sel["flux_fields"]:
        solves.keep_field(lab, case_lut(table, case, size, insulating_ratio, sample), a_field)
    summary = _summary_head(lab, full_shape, crop_start, voxel, volume_fractions(lab, table),
                            sel, rtol=rtol, solver=solver, insulating_ratio=insulating_ratio,
                            periodic=periodic, need=need, max_memory_gb=max_memory_gb)
    _properties(lab, table, voxel, sel, solves, summary, measured=measured, scenarios=scenarios,
                insulating_ratio=insulating_ratio, sample=sample)
    fields = current_fields(lab, table, sel["flux_fields"], sel["field_axis"], solves,
                            _field_coords(labels, lab.shape, voxel, crop_start),
                            insulating_ratio=insulating_ratio, sample=sample)
    fields.attrs.update({"voxel_size_um": list(voxel), "transport_axis": sel["field_axis"],
                         "potential_difference_V": 1.0, "single_phase_sigma_bulk_S_cm": 1.0,
                         "crop_start_zyx": crop_start})
    summary["n_solves"] = solves.n_solves
    summary["total_time_s"] = time.perf_counter() - t0
    return summary, fields
