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
measured σ_eff: κ_exp = φ · σ_bulk / σ_eff,measured (Minnmann et al. 2024, Fig. 6b), shown next to
the simulated κ_sim along the electrode normal.

The stage (:func:`run_transport`) adds the random-walk τ (:mod:`voxelyte.random_walk`) as a
cross-check column, "what if" scenarios (pores reassigned to CAM or SE — Minnmann's filled
porosity — and user phase → conductivity tables), and the current-density fields (|j| and the
component along the transport axis) for flux maps. Phases below ``insulating_ratio`` × the best
conductor of a kind are treated as insulating (e.g. SE at 1e-9 S cm⁻¹ for electrons next to CAM
at 0.1): the system then holds only the carrier's percolating network, and a kind with one
conducting phase reuses that phase's single-phase solve (σ_eff scales with σ_bulk).
"""
from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import xarray as xr

from voxelyte.conduction import DEFAULT_RTOL, effective_conductivity
from voxelyte.descriptors._common import (AXES, _axis_index, _clean, _load, _phase_table,
                                          _voxel)
from voxelyte.errors import InputError
from voxelyte.random_walk import random_walk_tortuosity

KINDS = ("electronic", "ionic")
#: Peak memory of one conduction solve with its current field, bytes per voxel of the volume, by
#: preconditioner (None = the conduction module's default, gmg). Measured as peak RSS above a
#: warmed-up interpreter, 96³–160³ phantom volumes, solve + field: gmg 74–89 B, pyamg "sa"
#: 95–157 B; the values below add margin for denser phases.
SOLVE_BYTES_PER_VOXEL = {"gmg": 150.0, "sa": 250.0, "rs": 250.0, "jacobi": 200.0, "none": 200.0}
#: Labels (1 B), the phase mask of the random walk (1 B) and the conductivity field (8 B).
STAGE_BYTES_PER_VOXEL = 10.0
#: Each saved flux case keeps |j| and j_axis as float32 (8 B per voxel).
FIELD_BYTES_PER_VOXEL = 8.0
#: The interpreter with numpy, scipy, numba, xarray, zarr loaded (GB).
BASE_MEMORY_GB = 0.5
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
    (labelling + preconditioner setup + CG). ``kw`` goes to
    :func:`voxelyte.conduction.effective_conductivity`."""
    lab = _load(labels)
    a = _axis_index(axis)
    phase = lab == phase_label
    n_phase = int(np.count_nonzero(phase))
    phi = n_phase / phase.size
    r = effective_conductivity(phase, voxel_size_um, a, rtol=rtol,  # bool: no float64 copy
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


# --------------------------------------------------------------------------- the stage
def estimate_memory_gb(shape_zyx, *, n_field_cases: int = 0, preconditioner: str | None = None
                       ) -> float:
    """Peak memory (GB) of :func:`run_transport` on a volume of ``shape_zyx``: one solve at a time
    (:data:`SOLVE_BYTES_PER_VOXEL`), the stage's own per-voxel arrays, ``n_field_cases`` saved
    current fields and the interpreter."""
    n = float(np.prod([int(s) for s in shape_zyx]))
    per_voxel = (SOLVE_BYTES_PER_VOXEL.get(str(preconditioner or "gmg").lower(), 200.0)
                 + STAGE_BYTES_PER_VOXEL + FIELD_BYTES_PER_VOXEL * n_field_cases)
    return BASE_MEMORY_GB + n * per_voxel / 1e9


def check_memory(shape_zyx, max_memory_gb: float | None, *, sample: str | None = None,
                 n_field_cases: int = 0, preconditioner: str | None = None) -> float:
    """Raise InputError (naming the sample, its shape and ``max_memory_gb``) when
    :func:`estimate_memory_gb` exceeds ``max_memory_gb``; return the estimate."""
    need = estimate_memory_gb(shape_zyx, n_field_cases=n_field_cases,
                              preconditioner=preconditioner)
    if max_memory_gb is not None and need > float(max_memory_gb):
        shape = [int(s) for s in shape_zyx]
        n = float(np.prod(shape))
        fit = max(0.0, (float(max_memory_gb) - BASE_MEMORY_GB) / (need - BASE_MEMORY_GB))
        side = [max(1, int(s * fit ** (1 / 3))) for s in shape]
        raise InputError(
            f"volume {shape[0]}×{shape[1]}×{shape[2]} ({n:.3g} voxels, ≈ "
            f"{(need - BASE_MEMORY_GB) * 1e9 / n:.0f} bytes per voxel) needs ≈ {need:.1f} GB for "
            f"the transport solves; crop it (stages.transport.crop_zyx, e.g. {side}) or run on "
            f"a node with more memory and raise stages.transport.max_memory_gb",
            sample=sample, field="stages.transport.max_memory_gb",
            expected=f"an estimate <= {float(max_memory_gb):g} GB", found=f"{need:.1f} GB")
    return need


def _lut(table: dict, kind: str, insulating_ratio: float, size: int,
         sample: str | None = None) -> tuple[np.ndarray, dict]:
    """Conductivity per label value (S cm⁻¹) for ``kind``; phases below ``insulating_ratio`` × the
    best conductor are set to 0. Returns (lut, bulk {phase: σ as given})."""
    key = f"sigma_{kind}_S_cm"
    lut = np.zeros(size)
    bulk = {}
    for name, spec in table.items():
        value = spec.get(key)
        if value is None:
            raise InputError("phase conductivity missing", sample=sample,
                             field=f"phases.{name}.{key}",
                             expected="a conductivity in S cm⁻¹ (>= 0)", found=None)
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise InputError("phase conductivity must be finite and >= 0", sample=sample,
                             field=f"phases.{name}.{key}", expected=">= 0 S cm⁻¹", found=value)
        bulk[name] = value
        lut[spec["label"]] = value
    top = lut.max(initial=0.0)
    lut[lut < insulating_ratio * top] = 0.0
    return lut, bulk


class _Solves:
    """Conduction solves keyed by the conductivity field normalised to its largest value (a hash
    of it) and the axis: σ_eff(c·σ) = c·σ_eff(σ), so a kind with one conducting phase reuses that
    phase's single-phase solve, and a scenario reuses every solve its relabelling leaves alone.
    Current fields are kept (as |j| and j_axis, float32) only for keys in ``field_keys``."""

    def __init__(self, voxel, solver_kw):
        self.voxel, self.kw = voxel, solver_kw
        self.cache: dict = {}
        self.field_keys: set = set()
        self.n_solves = 0

    @staticmethod
    def _normalised(lab: np.ndarray, lut: np.ndarray):
        top = float(lut.max(initial=0.0))
        norm = lut / top if top > 0 else lut
        sigma = norm[lab]
        digest = hashlib.sha1(np.ascontiguousarray(sigma).view(np.uint8)).hexdigest()
        return sigma, top, digest

    def key(self, lab: np.ndarray, lut: np.ndarray, axis: int):
        return self._normalised(lab, lut)[2], axis

    def __call__(self, lab: np.ndarray, lut: np.ndarray, axis: int) -> dict:
        """Result of the solve with conductivities ``lut[lab]`` along ``axis``, scaled to
        ``lut``: sigma_eff_S_cm, percolating, network_fraction, n_unknowns, solver info and,
        for field keys, j_magnitude / j_axis (A cm⁻², ΔV = 1 V)."""
        sigma, top, digest = self._normalised(lab, lut)
        key = (digest, axis)
        if key not in self.cache:
            field = key in self.field_keys
            if top <= 0:
                r = {"sigma_eff_S_cm": 0.0, "percolating": False, "network_fraction": 0.0,
                     "n_unknowns": 0, "iterations": 0, "relative_residual": 0.0,
                     "converged": True, "current_imbalance_rel": 0.0, "assemble_time_s": 0.0,
                     "setup_time_s": 0.0, "solve_time_s": 0.0}
                if field:
                    zero = np.zeros(lab.shape, np.float32)
                    r["j_magnitude"], r["j_axis"] = zero, zero
            else:
                r = effective_conductivity(sigma, self.voxel, axis, return_field=field,
                                           **self.kw)
                self.n_solves += 1
                if field:
                    j = r.pop("current_density_A_cm2")
                    r.pop("potential_V", None)
                    r["j_axis"] = np.asarray(j[axis], np.float32)
                    r["j_magnitude"] = np.sqrt(sum(np.square(c) for c in j)).astype(np.float32)
                    del j
            self.cache[key] = r
        del sigma
        r = dict(self.cache[key])
        r["sigma_eff_S_cm"] = r["sigma_eff_S_cm"] * top
        for name in ("j_magnitude", "j_axis"):
            if name in r:
                r[name] = r[name] * np.float32(top)
        return r


def _apply_scenario(lab: np.ndarray, table: dict, scenario: dict, sample: str | None
                    ) -> tuple[np.ndarray, dict]:
    """Labels and phase table of a scenario: ``reassign`` {from phase: to phase} relabels voxels,
    ``conductivities`` {phase: {sigma_electronic_S_cm, sigma_ionic_S_cm}} replaces bulk values."""
    name = scenario.get("name", "?")
    new_table = {n: dict(s) for n, s in table.items()}
    out = lab
    for src, dst in (scenario.get("reassign") or {}).items():
        for phase in (src, dst):
            if phase not in table:
                raise InputError(f"scenario '{name}' names an unknown phase", sample=sample,
                                 field=f"stages.transport.scenarios.{name}.reassign",
                                 expected=f"one of {sorted(table)}", found=phase)
        if out is lab:
            out = lab.copy()
        out[lab == table[src]["label"]] = table[dst]["label"]
    for phase, values in (scenario.get("conductivities") or {}).items():
        if phase not in table:
            raise InputError(f"scenario '{name}' names an unknown phase", sample=sample,
                             field=f"stages.transport.scenarios.{name}.conductivities",
                             expected=f"one of {sorted(table)}", found=phase)
        new_table[phase].update({k: float(v) for k, v in values.items()})
    return out, new_table


def _multiphase_entry(r: dict, lab_fraction: dict, bulk: dict, lut: np.ndarray, table: dict,
                      kind: str, axis: str) -> dict:
    carrier = max(bulk, key=bulk.get)
    phi = lab_fraction[carrier]
    s_eff = r["sigma_eff_S_cm"]
    return {"axis": axis, "kind": kind, "sigma_eff_S_cm": s_eff,
            "percolating": r["percolating"], "network_fraction": r["network_fraction"],
            "carrier_phase": carrier, "carrier_sigma_bulk_S_cm": bulk[carrier],
            "carrier_volume_fraction": phi,
            "tortuosity_factor_carrier": (phi * bulk[carrier] / s_eff) if s_eff > 0
            else math.inf,
            "insulating_phases": sorted(n for n, s in table.items()
                                        if lut[s["label"]] == 0),
            **_solver_info(r)}


def _central_crop(lab, crop_zyx, sample):
    """The central box of ``crop_zyx`` voxels (clipped to the volume) and its start index."""
    if crop_zyx is None:
        return lab, [0, 0, 0]
    size = [int(c) for c in crop_zyx]
    if len(size) != 3 or min(size) < 1:
        raise InputError("crop must be three positive sizes (z, y, x)", sample=sample,
                         field="stages.transport.crop_zyx", expected="[nz, ny, nx] >= 1",
                         found=crop_zyx)
    size = [min(c, n) for c, n in zip(size, lab.shape)]
    start = [(n - c) // 2 for c, n in zip(size, lab.shape)]
    sl = tuple(slice(s, s + c) for s, c in zip(start, size))
    if hasattr(lab, "dims"):
        return lab.isel(dict(zip(lab.dims, sl))), start
    return lab[sl], start


def run_transport(labels, *, phases: dict, voxel_size_um, axes=AXES, measured: dict | None = None,
                  rtol: float = DEFAULT_RTOL, tortuosity_phases=None, kinds=KINDS,
                  scenarios=(), random_walk: dict | None = None, flux_fields=("electronic",
                                                                              "ionic"),
                  field_axis=None, electrode_normal_axis="z", insulating_ratio: float = 1e-6,
                  periodic: bool = False, solver: dict | None = None, crop_zyx=None,
                  max_memory_gb: float | None = None, sample: str | None = None):
    """The transport stage on a labelled volume (z, y, x).

    - ``tortuosity``: per phase in ``tortuosity_phases`` (None: all) × axis in ``axes``: φ,
      σ_eff/σ_bulk, σ_eff (S cm⁻¹) for each kind the phase conducts, τ = φ·σ_bulk/σ_eff,
      N_M = σ_bulk/σ_eff, percolating flag and fraction, iterations, residual, times; with
      ``random_walk`` (settings of :func:`voxelyte.random_walk.random_walk_tortuosity`, plus
      ``enabled``) the random-walk τ and its standard error beside the flux τ.
    - ``conductivity``: per kind × axis, all phases at their bulk conductivity (phases below
      ``insulating_ratio`` × the best conductor insulate): σ_eff, carrier phase and its κ_sim.
    - ``scenarios``: the same per scenario (``reassign`` {phase: phase}, ``conductivities``
      {phase: {sigma_<kind>_S_cm: value}}), e.g. pores filled with CAM or with SE.
    - ``kappa``: per kind, κ_exp from ``measured.sigma_eff_<kind>_S_cm`` next to κ_sim along
      ``electrode_normal_axis`` (when it is one of ``axes``).

    ``flux_fields`` (kinds or phase names) are solved with their current field along
    ``field_axis`` (default ``electrode_normal_axis``). ``crop_zyx``: central box solved instead
    of the whole volume; ``max_memory_gb``: refuse (InputError) a volume whose estimated need
    (:func:`estimate_memory_gb`) is larger. ``solver``: preconditioner / maxiter for
    :func:`voxelyte.conduction.effective_conductivity`.

    Returns ``(summary, fields)``: summary JSON-ready after :func:`clean_summary` (inf → null);
    fields an xr.Dataset with ``current_density_magnitude_A_cm2`` and
    ``current_density_axial_A_cm2`` (case, z, y, x), float32, µm coords at voxel centres,
    ΔV = 1 V across the sample along ``field_axis`` (single-phase cases at σ_bulk = 1 S cm⁻¹)."""
    table = _phase_table(phases)
    voxel = _voxel(voxel_size_um)
    if not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    if len(labels.shape) != 3:
        raise InputError("labels must be a 3D array (z, y, x)", sample=sample, field="labels",
                         expected="3 dimensions", found=tuple(labels.shape))
    full_shape = [int(n) for n in labels.shape]
    labels, crop_start = _central_crop(labels, crop_zyx, sample)   # lazy for dask / xarray
    axes = [AXES[_axis_index(ax)] for ax in axes]
    normal = AXES[_axis_index(electrode_normal_axis)]
    field_axis = AXES[_axis_index(field_axis)] if field_axis is not None else normal
    kinds = list(kinds)
    for kind in kinds:
        if kind not in KINDS:
            raise InputError("unknown conduction kind", sample=sample,
                             field="stages.transport.kinds", expected=" or ".join(KINDS),
                             found=kind)
    names = list(table) if tortuosity_phases is None else list(tortuosity_phases)
    flux_fields = list(flux_fields or ())
    for name in names:
        if name not in table:
            raise InputError("unknown phase", sample=sample,
                             field="stages.transport.tortuosity_phases",
                             expected=f"one of {sorted(table)}", found=name)
    for case in flux_fields:
        if case not in table and case not in KINDS:
            raise InputError("unknown flux field case", sample=sample,
                             field="stages.transport.flux_fields",
                             expected=f"a kind ({', '.join(KINDS)}) or a phase {sorted(table)}",
                             found=case)
    solver = {k: v for k, v in (solver or {}).items() if v is not None}
    need = check_memory(labels.shape, max_memory_gb, sample=sample,
                        n_field_cases=len(flux_fields),
                        preconditioner=solver.get("preconditioner"))
    lab = np.ascontiguousarray(_load(labels))
    found = np.unique(lab)
    unknown = np.setdiff1d(found, [s["label"] for s in table.values()])
    if unknown.size:
        raise InputError("labels not in the phase table", sample=sample, field="phases",
                         expected=f"labels {sorted(s['label'] for s in table.values())}",
                         found=unknown.tolist())
    t0 = time.perf_counter()
    size = int(max(lab.max(initial=0), max(s["label"] for s in table.values()))) + 1
    solves = _Solves(voxel, dict(solver, rtol=rtol, periodic=bool(periodic)))
    a_field = _axis_index(field_axis)

    def fractions_of(lab_):
        counts = np.bincount(lab_.ravel(), minlength=size)
        return {n: float(counts[s["label"]]) / lab_.size for n, s in table.items()}

    fractions = fractions_of(lab)
    one_hot = {}
    for name, spec in table.items():
        lut = np.zeros(size)
        lut[spec["label"]] = 1.0
        one_hot[name] = lut
    # which solves keep their current field
    for case in flux_fields:
        lut = (one_hot[case] if case in table
               else _lut(table, case, insulating_ratio, size, sample)[0])
        solves.field_keys.add(solves.key(lab, lut, a_field))

    rw = dict(random_walk or {})
    rw_enabled = bool(rw.pop("enabled", True)) and random_walk is not None
    rw_phases = rw.pop("phases", None)
    rw_phases = names if rw_phases is None else list(rw_phases)
    summary: dict = {
        "shape_zyx": list(lab.shape), "input_shape_zyx": full_shape, "crop_start_zyx": crop_start,
        "voxel_size_um": list(voxel), "volume_fractions": fractions, "tortuosity": {},
        "conductivity": {}, "scenarios": {}, "kappa": {},
        "settings": {"axes": axes, "rtol": rtol, "kinds": kinds, "tortuosity_phases": names,
                     "insulating_ratio": insulating_ratio, "periodic": bool(periodic),
                     "solver": solver, "field_axis": field_axis,
                     "electrode_normal_axis": normal, "flux_fields": flux_fields,
                     "random_walk": dict(rw, enabled=rw_enabled, phases=rw_phases),
                     "boundary": "Dirichlet on the two faces of the axis (ΔV = 1 V), no flux "
                                 "elsewhere" + (" (periodic sides)" if periodic else ""),
                     "tortuosity_definition": "tau = phi * sigma_bulk / sigma_eff (not squared)",
                     "macmullin_definition": "N_M = sigma_bulk / sigma_eff"},
        "memory": {"estimated_peak_gb": need, "max_memory_gb": max_memory_gb}}

    # single-phase tortuosity (+ random walk)
    bulk_by_kind = {k: {n: float(s.get(f"sigma_{k}_S_cm") or 0.0) for n, s in table.items()}
                    for k in KINDS}
    for name in names:
        per_axis = {}
        for ax in axes:
            r = solves(lab, one_hot[name], _axis_index(ax))
            rel = r["sigma_eff_S_cm"]
            n_phase = fractions[name] * lab.size
            per_axis[ax] = {
                "volume_fraction": fractions[name], "sigma_eff_rel": rel,
                "sigma_eff_S_cm": {k: rel * bulk_by_kind[k][name] for k in KINDS
                                   if bulk_by_kind[k][name] > 0},
                "tortuosity_factor": fractions[name] / rel if rel > 0 else math.inf,
                "macmullin_number": 1.0 / rel if rel > 0 else math.inf,
                "percolating": r["percolating"],
                "percolating_fraction": r["n_unknowns"] / n_phase if n_phase else 0.0,
                **_solver_info(r)}
        summary["tortuosity"][name] = per_axis
    if rw_enabled:
        summary["random_walk"] = {}
        for name in rw_phases:
            if name not in table:
                raise InputError("unknown phase", sample=sample,
                                 field="stages.transport.random_walk.phases",
                                 expected=f"one of {sorted(table)}", found=name)
            w = random_walk_tortuosity(lab, table[name]["label"], voxel, axes=axes,
                                       return_msd=True, **rw)
            summary["random_walk"][name] = w
            for ax in axes:
                entry = summary["tortuosity"].get(name, {}).get(ax)
                if entry is not None:
                    entry["tortuosity_factor_random_walk"] = w[ax]["tortuosity_factor"]
                    entry["tortuosity_factor_random_walk_stderr"] = \
                        w[ax]["tortuosity_factor_stderr"]

    def conductivities(lab_, table_, fractions_):
        out = {}
        for kind in kinds:
            lut, bulk = _lut(table_, kind, insulating_ratio, size, sample)
            if lut.max(initial=0.0) <= 0:
                out[kind] = None
                continue
            out[kind] = {ax: _multiphase_entry(solves(lab_, lut, _axis_index(ax)), fractions_,
                                               bulk, lut, table_, kind, ax)
                         for ax in axes}
        return out

    summary["conductivity"] = conductivities(lab, table, fractions)
    for kind in kinds:
        per_axis = summary["conductivity"].get(kind)
        kexp = kappa_experimental(table, fractions, measured, kind)
        sim = per_axis.get(normal) if per_axis else None
        if kexp is None and sim is None:
            continue
        summary["kappa"][kind] = {
            "axis": normal,
            "phase": (kexp or sim)["phase" if kexp else "carrier_phase"],
            "kappa_sim": sim["tortuosity_factor_carrier"] if sim else None,
            "sigma_eff_sim_S_cm": sim["sigma_eff_S_cm"] if sim else None,
            "kappa_exp": kexp["kappa"] if kexp else None,
            "sigma_eff_measured_S_cm": kexp["sigma_eff_measured_S_cm"] if kexp else None,
            "kappa_exp_over_sim": (kexp["kappa"] / sim["tortuosity_factor_carrier"]
                                   if kexp and sim and sim["tortuosity_factor_carrier"] > 0
                                   and math.isfinite(sim["tortuosity_factor_carrier"])
                                   else None)}
    for scenario in scenarios or ():
        name = scenario.get("name")
        if not name or name in summary["scenarios"]:
            raise InputError("scenario needs a unique name", sample=sample,
                             field="stages.transport.scenarios", expected="a unique name",
                             found=name)
        lab_s, table_s = _apply_scenario(lab, table, scenario, sample)
        frac_s = fractions_of(lab_s)
        summary["scenarios"][name] = {
            "description": scenario.get("description", ""),
            "reassign": dict(scenario.get("reassign") or {}),
            "conductivities": dict(scenario.get("conductivities") or {}),
            "volume_fractions": frac_s,
            "conductivity": conductivities(lab_s, table_s, frac_s)}
        del lab_s

    # the saved current fields
    coords = {ax: xr.Variable(ax, (np.arange(n) + 0.5 + s) * d, attrs={"units": "um"})
              for ax, n, d, s in zip(AXES, lab.shape, voxel, crop_start)}
    for ax in AXES:   # the input volume's own µm coords, where it has them
        given = getattr(labels, "coords", {}).get(ax) if hasattr(labels, "coords") else None
        if given is not None and given.size == coords[ax].size:
            coords[ax] = xr.Variable(ax, np.asarray(given.values, float), attrs={"units": "um"})
    fields = xr.Dataset(coords=coords)
    if flux_fields:
        mags, axials, sig = [], [], []
        for case in flux_fields:
            if case in table:
                lut = one_hot[case]
            else:
                lut = _lut(table, case, insulating_ratio, size, sample)[0]
            r = solves(lab, lut, a_field)
            mags.append(r["j_magnitude"])
            axials.append(r["j_axis"])
            sig.append(r["sigma_eff_S_cm"])
        dims = ("case", *AXES)
        fields = fields.assign_coords(case=("case", flux_fields))
        fields["current_density_magnitude_A_cm2"] = (dims, np.stack(mags), {
            "units": "A cm-2", "long_name": "|j| at voxel centres"})
        fields["current_density_axial_A_cm2"] = (dims, np.stack(axials), {
            "units": "A cm-2", "component": field_axis,
            "long_name": f"j along the transport axis {field_axis}"})
        fields["sigma_eff_S_cm"] = (("case",), np.asarray(sig, float), {"units": "S cm-1"})
        del mags, axials
    fields.attrs.update({"voxel_size_um": list(voxel), "transport_axis": field_axis,
                         "potential_difference_V": 1.0,
                         "single_phase_sigma_bulk_S_cm": 1.0,
                         "crop_start_zyx": crop_start})
    summary["n_solves"] = solves.n_solves
    summary["total_time_s"] = time.perf_counter() - t0
    return summary, fields


def clean_summary(summary: dict) -> dict:
    """The summary for strict JSON: numpy scalars → Python, inf / NaN → null (a non-percolating
    phase has ``percolating: false`` beside its null τ and N_M)."""
    return _clean(summary)
