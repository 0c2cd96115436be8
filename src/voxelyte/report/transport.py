"""The transport sections of a sample page, from transport/transport.json and
transport/flux.zarr: tortuosity factors, effective conductivities, κ simulated vs experiment,
scenarios and flux-density maps."""
from __future__ import annotations

import logging
import math

from voxelyte.contract import AXES
from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.html import (cell, dig, figure_block, key_cell, not_run, phase_cell, section,
                                  table_block)
from voxelyte.report.volumes import mid_planes, open_store

log = logging.getLogger(__name__)


def _tau(r: dict, key: str):
    """τ of a transport.json entry; a null τ of a phase that does not percolate is infinite."""
    v = r.get(key)
    return math.inf if v is None and r.get("percolating") is False else v


def tortuosity_data(t: dict) -> dict:
    """Single-phase tortuosity factors for :func:`voxelyte.report.figures.tortuosity_axes_figure`.

    Parameters
    ----------
    t : dict
        transport.json.

    Returns
    -------
    dict
        ``{phase: {axis: {"flux": τ, "random walk": τ}}}``; τ is ``inf`` where the phase does
        not connect the two faces (stored as null beside ``percolating: false``).
    """
    out: dict = {}
    for phase, per_axis in (t.get("tortuosity") or {}).items():
        for axis, r in (per_axis or {}).items():
            if not isinstance(r, dict):
                continue
            entry = out.setdefault(phase, {}).setdefault(axis, {})
            if "tortuosity_factor" in r:
                entry["flux"] = _tau(r, "tortuosity_factor")
            if r.get("tortuosity_factor_random_walk") is not None:
                entry["random walk"] = r["tortuosity_factor_random_walk"]
    for phase, per_axis in (t.get("random_walk") or {}).items():
        for axis, r in (per_axis or {}).items() if isinstance(per_axis, dict) else ():
            if axis in AXES and isinstance(r, dict) and r.get("tortuosity_factor") is not None:
                out.setdefault(phase, {}).setdefault(axis, {}).setdefault(
                    "random walk", r["tortuosity_factor"])
    return out


def kappa_data(t: dict, normal: str) -> dict:
    """κ of the carrier phase along the electrode normal, for
    :func:`voxelyte.report.figures.kappa_figure`.

    Parameters
    ----------
    t : dict
        transport.json.
    normal : str
        The electrode normal axis (used where an entry names no axis).

    Returns
    -------
    dict
        ``{kind: {"phase", "flux", "random walk", "experiment"}}``: simulated (multi-phase
        flux), random walk (single phase) and from the measured σ_eff; missing ones left out.
    """
    out = {}
    tau = tortuosity_data(t)
    for kind, k in (t.get("kappa") or {}).items():
        if not isinstance(k, dict):
            continue
        axis = k.get("axis") or normal
        entry = {"phase": k.get("phase"), "flux": k.get("kappa_sim"),
                 "experiment": k.get("kappa_exp")}
        rw = tau.get(k.get("phase"), {}).get(axis, {}).get("random walk")
        if rw is not None:
            entry["random walk"] = rw
        out[kind] = {m: v for m, v in entry.items() if v is not None}
    return out


def normal_axis(res: SampleResults) -> str:
    """The electrode normal axis of a sample.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    str
        From transport.json's settings, else descriptors.json, else the sample file, else 'z'.
    """
    return (dig(res.json, "transport", "settings", "electrode_normal_axis")
            or (res.descriptors or {}).get("electrode_normal_axis")
            or res.config.get("electrode_normal_axis") or "z")


def _tortuosity_rows(t: dict, src: str, colors: dict) -> list:
    rows = []
    for phase, per_axis in (t.get("tortuosity") or {}).items():
        for axis, r in (per_axis or {}).items():
            if not isinstance(r, dict):
                continue
            key = ["tortuosity", phase, axis]
            rows.append([phase_cell(phase, colors), axis] + [
                key_cell(r, k, src, key)
                for k in ("volume_fraction", "tortuosity_factor", "tortuosity_factor_random_walk",
                          "tortuosity_factor_random_walk_stderr", "macmullin_number",
                          "percolating", "percolating_fraction")])
    return rows


def _conductivity_rows(t: dict, src: str) -> list:
    rows = []
    for kind, per_axis in (t.get("conductivity") or {}).items():
        if not isinstance(per_axis, dict):
            rows.append([kind, "—", "no conducting phase", "—", "—"])
            continue
        for axis, r in per_axis.items():
            key = ["conductivity", kind, axis]
            rows.append([kind, axis, cell(r.get("sigma_eff_S_cm"), src, [*key, "sigma_eff_S_cm"]),
                         r.get("carrier_phase", "—"),
                         cell(r.get("tortuosity_factor_carrier"), src,
                              [*key, "tortuosity_factor_carrier"])])
    return rows


def _kappa_rows(t: dict, src: str) -> list:
    return [[kind, k.get("phase", "—"), k.get("axis", "—")] + [
        cell(k.get(f), src, ["kappa", kind, f]) for f in
        ("sigma_eff_sim_S_cm", "kappa_sim", "sigma_eff_measured_S_cm", "kappa_exp",
         "kappa_exp_over_sim")]
        for kind, k in (t.get("kappa") or {}).items() if isinstance(k, dict)]


def _scenario_rows(t: dict, src: str, normal: str) -> list:
    rows = []
    for name, sc in (t.get("scenarios") or {}).items():
        for kind, per_axis in (sc.get("conductivity") or {}).items():
            r = per_axis.get(normal) if isinstance(per_axis, dict) else None
            if isinstance(r, dict):
                key = ["scenarios", name, "conductivity", kind, normal]
                rows.append([name, sc.get("description", ""), kind,
                             cell(r.get("sigma_eff_S_cm"), src, [*key, "sigma_eff_S_cm"]),
                             cell(r.get("tortuosity_factor_carrier"), src,
                                  [*key, "tortuosity_factor_carrier"])])
    return rows


def tortuosity_section(res: SampleResults, colors: dict) -> dict:
    """The tortuosity and effective-conductivity section.

    Parameters
    ----------
    res : SampleResults
    colors : dict
        Phase colours.

    Returns
    -------
    dict
        A section: τ per phase and direction, κ simulated vs experiment, and the tables of
        transport.json.
    """
    t = res.json.get("transport")
    if t is None:
        return section("tortuosity", "Tortuosity and effective conductivity", [],
                       missing=not_run("transport"))
    src = res.source("transport")
    normal = normal_axis(res)
    return section("tortuosity", "Tortuosity and effective conductivity", [
        figure_block(fg.tortuosity_axes_figure(tortuosity_data(t), colors),
                     "Single-phase tortuosity factor τ = φ·σ_bulk/σ_eff (not squared; Minnmann et "
                     "al. 2024, Eq. 3) of each phase along each direction: flux-based (steady "
                     "conduction, Dirichlet on two opposite faces) and random walk (hatched, "
                     "where computed). ∞: the phase does not connect the two faces.",
                     "tortuosity per direction"),
        figure_block(fg.kappa_figure({res.name: kappa_data(t, normal)}, colors),
                     f"Tortuosity factors of electronic and ionic transport along the electrode "
                     f"normal ({normal}): simulated on the microstructure with every phase at its "
                     "bulk conductivity (flux), random walk in the carrier phase, and experiment "
                     "(from the measured σ_eff), as Minnmann et al. 2024, Fig. 6b.",
                     "kappa simulated vs experiment"),
        table_block(["phase", "axis", "φ", "τ flux", "τ random walk", "± std. err.",
                     "MacMullin N_M", "percolating", "percolating fraction"],
                    _tortuosity_rows(t, src, colors),
                    caption="Single-phase tortuosity factors (— : not computed, or the phase "
                    "does not percolate)."),
        table_block(["kind", "axis", "σ_eff (S cm⁻¹)", "carrier", "κ simulated"],
                    _conductivity_rows(t, src),
                    caption="Multi-phase effective conductivity (every phase at its bulk σ)."),
        table_block(["kind", "carrier", "axis", "σ_eff simulated (S cm⁻¹)", "κ simulated",
                     "σ_eff measured (S cm⁻¹)", "κ experiment", "κ exp / κ sim"],
                    _kappa_rows(t, src)),
        table_block(["scenario", "description", "kind", f"σ_eff along {normal} (S cm⁻¹)",
                     "κ simulated"], _scenario_rows(t, src, normal),
                    caption="What-if scenarios (e.g. pores filled).")])


def flux_rows(res: SampleResults) -> tuple[list[dict], str]:
    """Slice-figure rows of the current-density magnitude and the transport axis.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    rows : list of dict
        One row per case of transport/flux.zarr (empty when the store is missing or unreadable).
    axis : str
        The store's transport axis ('?' when unknown).
    """
    if "flux" not in res.stores:
        return [], "?"
    try:
        ds = open_store(res.stores["flux"])
    except Exception as err:
        log.warning("%s: cannot read the flux field: %s", res.name, err)
        return [], "?"
    rows = []
    var = next((v for v in ("current_density_magnitude_A_cm2", "current_density_axial_A_cm2")
                if v in ds), None)
    if var is not None and "case" in ds[var].dims:
        for case in ds["case"].values:
            rows.append({"title": f"{case} |j|", "unit": "|j| (A cm⁻²)",
                         "planes": mid_planes(ds[var].sel(case=case))})
    else:
        for v in ds.data_vars:
            if v.startswith("current_density") and ds[v].dims == AXES:
                rows.append({"title": f"|j| {v.split('_')[2]}", "unit": "|j| (A cm⁻²)",
                             "planes": mid_planes(ds[v])})
    return rows, ds.attrs.get("transport_axis") or ds.attrs.get("field_axis") or "?"


def flux_section(res: SampleResults) -> dict:
    """The flux-density section: mid-planes of |j| of every case of transport/flux.zarr.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    dict
        A section.
    """
    if res.json.get("transport") is None:
        return section("flux", "Flux-density maps", [], missing=not_run("transport"))
    rows, axis = flux_rows(res)
    if not rows:
        return section("flux", "Flux-density maps", [],
                       missing="The transport stage wrote no flux field (transport/flux.zarr).")
    return section("flux", "Flux-density maps", [
        figure_block(fg.field_slices_figure(rows),
                     "Current-density magnitude |j| for 1 V across the volume along the "
                     f"transport axis ({axis}), every phase at its bulk conductivity; "
                     "orthogonal mid-planes (Minnmann et al. 2024, Fig. 6a).",
                     "flux density maps")])
