"""Transport properties of a labelled volume: the flux-based tortuosity factor of one phase, the
effective conductivity of the composite, and the experimental tortuosity factor κ_exp."""
from __future__ import annotations

import math

import numpy as np

from voxelyte.conduction import DEFAULT_RTOL
from voxelyte.contract import AXES, axis_index, load_labels, phase_table
from voxelyte.errors import InputError

from .solves import SolveCache, one_hot_lut, solver_info


def label_counts(labels, phases, *, sample: str | None = None) -> np.ndarray:
    """Voxels per label value, checked against the phase table.

    Parameters
    ----------
    labels : numpy.ndarray of int
    phases : dict or PhaseTable
    sample : str, optional
        Named in errors.

    Returns
    -------
    numpy.ndarray of int
        ``counts[label]``; a label value of no phase raises InputError.
    """
    table = phase_table(phases)
    if labels.dtype.kind != "u" and labels.min(initial=0) < 0:
        table.check_labels(np.unique(labels[labels < 0]), sample=sample)
    counts = np.bincount(labels.ravel())
    table.check_labels(np.flatnonzero(counts), sample=sample)
    return counts


def bulk_conductivities(phases, kind: str) -> dict[str, float]:
    """Bulk conductivity of every phase for ``kind``, 0 where the phase table gives none.

    Parameters
    ----------
    phases : dict or PhaseTable
    kind : {'electronic', 'ionic'}

    Returns
    -------
    dict
        Phase name -> σ_bulk (S cm⁻¹).
    """
    return {n: float(s.get(f"sigma_{kind}_S_cm") or 0.0) for n, s in phase_table(phases).items()}


def tortuosity(labels, phase_label: int, voxel_size_um, axis, *, rtol: float = DEFAULT_RTOL,
               sigma_bulk_S_cm: float = 1.0, return_field: bool = False,
               solves: SolveCache | None = None, **kw) -> dict:
    """Flux-based tortuosity factor of one phase along an axis: the phase conducts (σ_bulk = 1),
    all others not; τ = φ·σ_bulk/σ_eff (not squared), N_M = σ_bulk/σ_eff, φ = the phase's volume
    fraction (all its voxels). A phase that does not connect the two faces has σ_eff = 0,
    τ = N_M = inf and ``percolating: False``.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
    phase_label : int
        Label value of the phase.
    voxel_size_um : sequence of 3 float
    axis : str or int
    rtol : float
        Relative residual of the CG solve.
    sigma_bulk_S_cm : float
        Bulk conductivity for ``sigma_eff_S_cm``.
    return_field : bool
        Also ``potential_V`` and ``current_density_A_cm2`` (σ_bulk = 1).
    solves : SolveCache, optional
        Shared solves (the stage's); its rtol and solver settings apply.
    **kw
        Solver settings of :func:`voxelyte.conduction.effective_conductivity` (without
        ``solves``).

    Returns
    -------
    dict
        axis, phase_label, volume_fraction, sigma_eff_rel (σ_eff/σ_bulk), sigma_eff_S_cm,
        tortuosity_factor, macmullin_number, percolating, percolating_fraction (the phase's
        voxels in the network that connects both faces) and the solver columns.

    References
    ----------
    Minnmann et al., J. Electrochem. Soc. 171, 060514 (2024), Eq. 3; Cooper et al., SoftwareX
    5, 203 (2016) (TauFactor convention).
    """
    lab = load_labels(labels)
    a = axis_index(axis)
    if isinstance(phase_label, bool) or not isinstance(phase_label, (int, np.integer)) \
            or phase_label < 0:
        raise InputError("phase label must be a non-negative integer", field="phase_label",
                         expected="int >= 0", found=phase_label)
    if solves is None:
        solves = SolveCache(voxel_size_um, rtol=rtol, **kw)
    n_phase = int(np.count_nonzero(lab == phase_label))
    phi = n_phase / lab.size
    r = solves(lab, one_hot_lut(phase_label, int(lab.max(initial=0)) + 1), a,
               return_field=return_field)
    rel = r["sigma_eff_S_cm"]  # σ_bulk = 1
    out = {"axis": AXES[a], "phase_label": int(phase_label), "volume_fraction": phi,
           "sigma_eff_rel": rel, "sigma_eff_S_cm": rel * sigma_bulk_S_cm,
           "tortuosity_factor": phi / rel if rel > 0 else math.inf,
           "macmullin_number": 1.0 / rel if rel > 0 else math.inf,
           "percolating": r["percolating"],
           "percolating_fraction": r["n_unknowns"] / (phi * lab.size) if n_phase else 0.0,
           **solver_info(r)}
    if return_field:
        out["potential_V"] = r["potential_V"]
        out["current_density_A_cm2"] = r["current_density_A_cm2"]
    return out


def multiphase_conductivity(labels, phases, voxel_size_um, axis, kind: str = "electronic", *,
                            rtol: float = DEFAULT_RTOL, insulating_ratio: float = 0.0,
                            return_field: bool = False, solves: SolveCache | None = None,
                            sample: str | None = None, **kw) -> dict:
    """Effective conductivity (S cm⁻¹) of the composite along an axis, every phase at its bulk
    conductivity ``phases[name]['sigma_<kind>_S_cm']`` (harmonic-mean face conductances between
    phases), and κ_sim = φ_carrier·σ_bulk,carrier/σ_eff of the carrier phase (the largest σ_bulk).

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
    phases : dict or PhaseTable
    voxel_size_um : sequence of 3 float
    axis : str or int
    kind : {'electronic', 'ionic'}
    rtol : float
    insulating_ratio : float
        Phases below this × the best conductor are insulating (0 = keep all).
    return_field : bool
        Also ``potential_V`` and ``current_density_A_cm2``.
    solves : SolveCache, optional
        Shared solves (the stage's); its rtol and solver settings apply.
    sample : str, optional
        Named in errors.
    **kw
        Solver settings of :func:`voxelyte.conduction.effective_conductivity`.

    Returns
    -------
    dict
        axis, kind, sigma_eff_S_cm, percolating, network_fraction, carrier_phase,
        carrier_sigma_bulk_S_cm, carrier_volume_fraction, tortuosity_factor_carrier,
        insulating_phases and the solver columns.

    References
    ----------
    Minnmann et al., J. Electrochem. Soc. 171, 060514 (2024), Eq. 3 and Fig. 6b.
    """
    table = phase_table(phases)
    lab = load_labels(labels)
    a = axis_index(axis)
    lut = table.conductivity_lut(kind, size=int(lab.max(initial=0)) + 1,
                                 insulating_ratio=insulating_ratio, sample=sample)
    bulk = table.conductivities_S_cm(kind, sample=sample)
    counts = label_counts(lab, table, sample=sample)
    carrier = max(bulk, key=bulk.get)
    phi = float(counts[table[carrier]["label"]]) / lab.size \
        if table[carrier]["label"] < counts.size else 0.0
    if solves is None:
        solves = SolveCache(voxel_size_um, rtol=rtol, **kw)
    r = solves(lab, lut, a, return_field=return_field)
    s_eff = r["sigma_eff_S_cm"]
    out = {"axis": AXES[a], "kind": kind, "sigma_eff_S_cm": s_eff, "percolating": r["percolating"],
           "network_fraction": r["network_fraction"], "carrier_phase": carrier,
           "carrier_sigma_bulk_S_cm": bulk[carrier], "carrier_volume_fraction": phi,
           "tortuosity_factor_carrier": (phi * bulk[carrier] / s_eff) if s_eff > 0 else math.inf,
           "insulating_phases": sorted(n for n, s in table.items() if lut[s["label"]] == 0),
           **solver_info(r)}
    if return_field:
        out["potential_V"] = r["potential_V"]
        out["current_density_A_cm2"] = r["current_density_A_cm2"]
    return out


def kappa_experimental(phases, volume_fractions: dict, measured: dict | None,
                       kind: str) -> dict | None:
    """κ_exp = φ·σ_bulk/σ_eff,measured of the carrier phase of ``kind`` (its largest σ_bulk).

    Parameters
    ----------
    phases : dict or PhaseTable
    volume_fractions : dict
        Phase name -> volume fraction.
    measured : dict, optional
        The sample's ``measured`` entry (``sigma_eff_<kind>_S_cm``).
    kind : {'electronic', 'ionic'}

    Returns
    -------
    dict or None
        phase, volume_fraction, sigma_bulk_S_cm, sigma_eff_measured_S_cm, kappa; None when not
        measured or no phase conducts.

    References
    ----------
    Minnmann et al., J. Electrochem. Soc. 171, 060514 (2024), Fig. 6b.
    """
    key = f"sigma_eff_{kind}_S_cm"
    if not measured or measured.get(key) is None:
        return None
    bulk = bulk_conductivities(phases, kind)
    carrier = max(bulk, key=bulk.get)
    s_meas = float(measured[key])
    if bulk[carrier] <= 0:
        return None
    phi = volume_fractions[carrier]
    return {"phase": carrier, "volume_fraction": phi, "sigma_bulk_S_cm": bulk[carrier],
            "sigma_eff_measured_S_cm": s_meas,
            "kappa": phi * bulk[carrier] / s_meas if s_meas > 0 else math.inf}


def kappa_comparison(kappa_exp: dict | None, simulated: dict | None, axis: str) -> dict | None:
    """κ_exp next to κ_sim of one kind along the electrode normal.

    Parameters
    ----------
    kappa_exp : dict or None
        :func:`kappa_experimental`.
    simulated : dict or None
        :func:`multiphase_conductivity` along ``axis``.
    axis : str

    Returns
    -------
    dict or None
        axis, phase, kappa_sim, sigma_eff_sim_S_cm, kappa_exp, sigma_eff_measured_S_cm,
        kappa_exp_over_sim; None when neither is known.
    """
    kexp, sim = kappa_exp, simulated
    if kexp is None and sim is None:
        return None
    return {
        "axis": axis,
        "phase": (kexp or sim)["phase" if kexp else "carrier_phase"],
        "kappa_sim": sim["tortuosity_factor_carrier"] if sim else None,
        "sigma_eff_sim_S_cm": sim["sigma_eff_S_cm"] if sim else None,
        "kappa_exp": kexp["kappa"] if kexp else None,
        "sigma_eff_measured_S_cm": kexp["sigma_eff_measured_S_cm"] if kexp else None,
        "kappa_exp_over_sim": (kexp["kappa"] / sim["tortuosity_factor_carrier"]
                               if kexp and sim and sim["tortuosity_factor_carrier"] > 0
                               and math.isfinite(sim["tortuosity_factor_carrier"])
                               else None)}
