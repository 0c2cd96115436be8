"""Transport stage: effective conductivities and tortuosity factors of a labelled microstructure.

Single-phase (flux-based tortuosity): the phase conducts with σ_bulk = 1, all others not; the
steady conduction problem of :mod:`voxelyte.conduction` (Dirichlet on two opposite faces, no flux
elsewhere) gives σ_eff/σ_bulk and

    τ = φ · σ_bulk / σ_eff,     N_M = σ_bulk / σ_eff

with φ the volume fraction of all voxels of the phase (Minnmann et al. 2024, Eq. 3; TauFactor
convention, Cooper et al. 2016 / Kench et al. 2023; not squared). A phase that does not connect
the two faces has σ_eff = 0, τ = N_M = inf and ``percolating: False``.

Multi-phase: every phase conducts with its bulk conductivity from the sample phase table
(``sigma_electronic_S_cm`` / ``sigma_ionic_S_cm``) → σ_eff in S cm⁻¹. The experimental
tortuosity factor of the carrier phase (the most conductive one for that kind) follows from a
measured σ_eff: κ_exp = φ · σ_bulk / σ_eff,measured (Minnmann et al. 2024, Fig. 6b).
"""
from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr

from voxelyte.conduction import DEFAULT_RTOL, effective_conductivity
from voxelyte.descriptors._common import AXES, _axis_index, _load, _phase_table, _voxel
from voxelyte.errors import InputError

KINDS = ("electronic", "ionic")
_SOLVER_KEYS = ("iterations", "relative_residual", "converged", "current_imbalance_rel",
                "n_unknowns")


def _solver_info(r: dict) -> dict:
    out = {k: r[k] for k in _SOLVER_KEYS}
    out["solve_time_s"] = r["assemble_time_s"] + r["setup_time_s"] + r["solve_time_s"]
    return out


def tortuosity(labels, phase_label: int, voxel_size_um, axis, *, rtol: float = DEFAULT_RTOL,
               sigma_bulk_S_cm: float = 1.0, return_field: bool = False, **kw) -> dict:
    """Flux-based tortuosity factor of the phase ``phase_label`` along ``axis`` ('z', 'y', 'x' or
    0–2): τ = φ·σ_bulk/σ_eff (not squared), N_M = σ_bulk/σ_eff, φ = the phase's volume fraction
    (all its voxels). Returns axis, phase_label, volume_fraction, sigma_eff_rel (σ_eff/σ_bulk),
    sigma_eff_S_cm (for ``sigma_bulk_S_cm``), tortuosity_factor, macmullin_number, percolating,
    percolating_fraction (the phase's voxels in the network that connects both faces),
    iterations, relative_residual, converged, current_imbalance_rel, n_unknowns, solve_time_s
    (assembly + AMG setup + CG). ``kw`` goes to :func:`voxelyte.conduction.effective_conductivity`."""
    lab = _load(labels)
    a = _axis_index(axis)
    phase = lab == phase_label
    n_phase = int(np.count_nonzero(phase))
    phi = n_phase / phase.size
    r = effective_conductivity(phase.astype(np.float64), voxel_size_um, a, rtol=rtol,
                               return_field=return_field, **kw)
    rel = r["sigma_eff_S_cm"]  # σ_bulk = 1
    out = {"axis": AXES[a], "phase_label": int(phase_label), "volume_fraction": phi,
           "sigma_eff_rel": rel, "sigma_eff_S_cm": rel * sigma_bulk_S_cm,
           "tortuosity_factor": phi / rel if rel > 0 else math.inf,
           "macmullin_number": 1.0 / rel if rel > 0 else math.inf,
           "percolating": r["percolating"],
           "percolating_fraction": r["n_unknowns"] / n_phase if n_phase else 0.0,
           **_solver_info(r)}
    if return_field:
        out["potential_V"] = r["potential_V"]
        out["current_density_A_cm2"] = r["current_density_A_cm2"]
    return out


def _sigma_field(lab: np.ndarray, table: dict, kind: str) -> tuple[np.ndarray, dict]:
    if kind not in KINDS:
        raise InputError("unknown conduction kind", field="kind", expected=" or ".join(KINDS),
                         found=kind)
    key = f"sigma_{kind}_S_cm"
    lut = np.zeros(int(max(lab.max(initial=0), max(s["label"] for s in table.values()))) + 1)
    bulk = {}
    for name, spec in table.items():
        value = spec.get(key)
        if value is None:
            raise InputError("phase conductivity missing", field=f"phases.{name}.{key}",
                             expected="a conductivity in S cm⁻¹ (>= 0)", found=None)
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise InputError("phase conductivity must be finite and >= 0",
                             field=f"phases.{name}.{key}", expected=">= 0 S cm⁻¹", found=value)
        lut[spec["label"]] = value
        bulk[name] = value
    unknown = np.setdiff1d(np.unique(lab), [s["label"] for s in table.values()])
    if unknown.size:
        raise InputError("labels not in the phase table", field="phases",
                         expected=f"labels {sorted(s['label'] for s in table.values())}",
                         found=unknown.tolist())
    return lut[lab], bulk


def multiphase_conductivity(labels, phases: dict, voxel_size_um, axis, kind: str = "electronic", *,
                            rtol: float = DEFAULT_RTOL, return_field: bool = False, **kw) -> dict:
    """Effective conductivity (S cm⁻¹) of the composite along ``axis`` with every phase at its bulk
    conductivity ``phases[name]['sigma_<kind>_S_cm']`` (kind 'electronic' or 'ionic'); harmonic
    mean face conductances between phases. Also reports the carrier phase (largest σ_bulk), its
    volume fraction and κ_sim = φ_carrier·σ_bulk,carrier/σ_eff (Minnmann et al. 2024, Eq. 3)."""
    table = _phase_table(phases)
    lab = _load(labels)
    a = _axis_index(axis)
    sigma, bulk = _sigma_field(lab, table, kind)
    carrier = max(bulk, key=bulk.get)
    phi = float(np.count_nonzero(lab == table[carrier]["label"])) / lab.size
    r = effective_conductivity(sigma, voxel_size_um, a, rtol=rtol, return_field=return_field, **kw)
    s_eff = r["sigma_eff_S_cm"]
    out = {"axis": AXES[a], "kind": kind, "sigma_eff_S_cm": s_eff, "percolating": r["percolating"],
           "network_fraction": r["network_fraction"], "carrier_phase": carrier,
           "carrier_sigma_bulk_S_cm": bulk[carrier], "carrier_volume_fraction": phi,
           "tortuosity_factor_carrier": (phi * bulk[carrier] / s_eff) if s_eff > 0 else math.inf,
           **_solver_info(r)}
    if return_field:
        out["potential_V"] = r["potential_V"]
        out["current_density_A_cm2"] = r["current_density_A_cm2"]
    return out


def kappa_experimental(phases: dict, volume_fractions: dict, measured: dict | None,
                       kind: str) -> dict | None:
    """κ_exp = φ·σ_bulk/σ_eff,measured of the carrier phase of ``kind`` from the sample's
    ``measured.sigma_eff_<kind>_S_cm``; None when not measured or no phase conducts."""
    key = f"sigma_eff_{kind}_S_cm"
    if not measured or measured.get(key) is None:
        return None
    table = _phase_table(phases)
    bulk = {n: float(s.get(f"sigma_{kind}_S_cm") or 0.0) for n, s in table.items()}
    carrier = max(bulk, key=bulk.get)
    s_meas = float(measured[key])
    if bulk[carrier] <= 0:
        return None
    phi = volume_fractions[carrier]
    return {"phase": carrier, "volume_fraction": phi, "sigma_bulk_S_cm": bulk[carrier],
            "sigma_eff_measured_S_cm": s_meas,
            "kappa": phi * bulk[carrier] / s_meas if s_meas > 0 else math.inf}


def run_transport(labels, *, phases: dict, voxel_size_um, axes=AXES, measured: dict | None = None,
                  rtol: float = DEFAULT_RTOL, tortuosity_phases=None, kinds=KINDS,
                  field_axis=None, sample: str | None = None, **kw):
    """The transport stage: single-phase τ for every phase × axis, multi-phase electronic and ionic
    σ_eff per axis, κ_exp from the sample's measured σ_eff (``measured``: the sample file's
    ``measured`` block). Returns ``(summary, fields)``: summary a JSON-ready dict (inf → stays
    float inf; clean before strict JSON), fields an xr.Dataset (z, y, x; µm coords at voxel centres)
    with the potential (V) and the current density along the transport axis (A cm⁻²) of each
    multi-phase kind along ``field_axis`` (default: the first of ``axes``)."""
    table = _phase_table(phases)
    voxel = _voxel(voxel_size_um)
    lab = _load(labels)
    if lab.ndim != 3:
        raise InputError("labels must be a 3D array (z, y, x)", sample=sample, field="labels",
                         expected="3 dimensions", found=lab.shape)
    axes = [AXES[_axis_index(ax)] for ax in axes]
    field_axis = AXES[_axis_index(field_axis)] if field_axis is not None else axes[0]
    t0 = time.perf_counter()
    fractions = {n: float(np.count_nonzero(lab == s["label"])) / lab.size for n, s in table.items()}
    names = list(table) if tortuosity_phases is None else list(tortuosity_phases)
    summary: dict = {"volume_fractions": fractions, "tortuosity": {}, "conductivity": {},
                     "kappa_experimental": {},
                     "settings": {"rtol": rtol, "axes": axes, "voxel_size_um": list(voxel),
                                  "boundary": "Dirichlet on the two faces of the axis, no flux "
                                              "elsewhere", "tortuosity_definition":
                                              "tau = phi * sigma_bulk / sigma_eff (not squared)"}}
    for name in names:
        if name not in table:
            raise InputError("unknown phase", sample=sample, field="tortuosity_phases",
                             expected=f"one of {sorted(table)}", found=name)
        summary["tortuosity"][name] = {
            ax: tortuosity(lab, table[name]["label"], voxel, ax, rtol=rtol, **kw) for ax in axes}
    coords = {ax: xr.Variable(ax, (np.arange(n) + 0.5) * d, attrs={"units": "um"})
              for ax, n, d in zip(AXES, lab.shape, voxel)}
    fields = xr.Dataset(coords=coords)
    for kind in kinds:
        key = f"sigma_{kind}_S_cm"
        if all(float(s.get(key) or 0.0) <= 0 for s in table.values()):
            summary["conductivity"][kind] = None
            continue
        per_axis = {}
        for ax in axes:
            want = ax == field_axis
            r = multiphase_conductivity(lab, table, voxel, ax, kind, rtol=rtol, return_field=want,
                                        **kw)
            if want:
                a = _axis_index(ax)
                fields[f"potential_{kind}_V"] = (AXES, r.pop("potential_V").astype(np.float32),
                                                 {"units": "V", "transport_axis": ax})
                j = r.pop("current_density_A_cm2")[a]
                fields[f"current_density_{kind}_A_cm2"] = (
                    AXES, j.astype(np.float32),
                    {"units": "A cm-2", "component": ax, "transport_axis": ax,
                     "potential_difference_V": 1.0})
            per_axis[ax] = r
        summary["conductivity"][kind] = per_axis
        kexp = kappa_experimental(table, fractions, measured, kind)
        if kexp is not None:
            summary["kappa_experimental"][kind] = kexp
    summary["total_time_s"] = time.perf_counter() - t0
    fields.attrs.update({"voxel_size_um": list(voxel), "field_axis": field_axis})
    return summary, fields
