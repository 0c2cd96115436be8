"""Conduction solves of labelled volumes: the conductivity field ``lut[labels]`` normalised to its
largest value, solved once per field and axis (σ_eff(c·σ) = c·σ_eff(σ)) and scaled back."""
from __future__ import annotations

import hashlib

import numpy as np

from voxelyte.conduction import DEFAULT_RTOL, effective_conductivity
from voxelyte.contract import voxel_size_um as checked_voxel

_SOLVER_KEYS = ("iterations", "relative_residual", "converged", "current_imbalance_rel",
                "n_unknowns")
#: The result of a field without any conductor (no solve).
_NO_CONDUCTOR = {"sigma_eff_S_cm": 0.0, "percolating": False, "network_fraction": 0.0,
                 "n_unknowns": 0, "iterations": 0, "relative_residual": 0.0, "converged": True,
                 "current_imbalance_rel": 0.0, "assemble_time_s": 0.0, "setup_time_s": 0.0,
                 "solve_time_s": 0.0}


def solver_info(result: dict) -> dict:
    """The solver columns of a conduction result.

    Parameters
    ----------
    result : dict
        A result of :func:`voxelyte.conduction.effective_conductivity`.

    Returns
    -------
    dict
        iterations, relative_residual, converged, current_imbalance_rel, n_unknowns and
        solve_time_s (labelling and assembly + preconditioner setup + CG).
    """
    out = {k: result[k] for k in _SOLVER_KEYS}
    out["solve_time_s"] = (result["assemble_time_s"] + result["setup_time_s"]
                           + result["solve_time_s"])
    return out


def one_hot_lut(label: int, size: int) -> np.ndarray:
    """Conductivity per label value with one conducting phase (σ_bulk = 1).

    Parameters
    ----------
    label : int
        The phase's label value.
    size : int
        Minimum length of the table.

    Returns
    -------
    numpy.ndarray
        float64, 1 at ``label``, 0 elsewhere.
    """
    lut = np.zeros(max(int(size), int(label) + 1))
    lut[label] = 1.0
    return lut


class SolveCache:
    """Conduction solves of the fields ``lut[labels]`` along an axis, keyed by the field
    normalised to its largest value (a hash of it) and the axis: σ_eff(c·σ) = c·σ_eff(σ), so a
    kind with one conducting phase reuses that phase's single-phase solve and a scenario reuses
    every solve its relabelling leaves alone. Current fields are kept (|j| and j_axis, float32)
    for the keys marked with :meth:`keep_field`.

    Parameters
    ----------
    voxel_size_um : sequence of 3 float
    rtol : float
        Relative residual of the CG solves.
    **solver_kw
        Further arguments of :func:`voxelyte.conduction.effective_conductivity` (periodic,
        preconditioner, maxiter, dtype).
    """

    def __init__(self, voxel_size_um, *, rtol: float = DEFAULT_RTOL, **solver_kw):
        self.voxel = checked_voxel(voxel_size_um)
        self.kw = dict(solver_kw, rtol=rtol)
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

    def keep_field(self, lab: np.ndarray, lut: np.ndarray, axis: int) -> None:
        """Keep the current field of the solve of ``lut[lab]`` along ``axis``.

        Parameters
        ----------
        lab : numpy.ndarray
            Label volume (z, y, x) of the field.
        lut : numpy.ndarray
            Conductivity per label value (S cm⁻¹); the key is that of the field normalised to
            its largest value, as in the cache's lookups.
        axis : int
            Array axis (0, 1, 2 = z, y, x) of the solve.
        """
        self.field_keys.add((self._normalised(lab, lut)[2], axis))

    def _solve(self, sigma, top, axis, field) -> dict:
        """The unscaled result of the normalised field; ``field``: None, 'flux' (|j| and j_axis,
        float32) or 'raw' (potential and current density)."""
        if top <= 0:
            r = dict(_NO_CONDUCTOR)
            if field == "flux":
                zero = np.zeros(sigma.shape, np.float32)
                r["j_magnitude"], r["j_axis"] = zero, zero
            elif field == "raw":
                r["potential_V"] = np.full(sigma.shape, np.nan)
                r["current_density_A_cm2"] = tuple(np.zeros(sigma.shape) for _ in range(3))
            return r
        r = effective_conductivity(sigma, self.voxel, axis, return_field=field is not None,
                                   **self.kw)
        self.n_solves += 1
        if field == "flux":
            j = r.pop("current_density_A_cm2")
            r.pop("potential_V", None)
            r["j_axis"] = np.asarray(j[axis], np.float32)
            r["j_magnitude"] = np.sqrt(sum(np.square(c) for c in j)).astype(np.float32)
            del j
        return r

    def __call__(self, lab: np.ndarray, lut: np.ndarray, axis: int, *,
                 return_field: bool = False) -> dict:
        """Result of the solve with conductivities ``lut[lab]`` along ``axis``, scaled to ``lut``:
        sigma_eff_S_cm, percolating, network_fraction, n_unknowns, solver info; for kept keys
        j_magnitude / j_axis (A cm⁻², ΔV = 1 V); with ``return_field`` (solved apart from the
        cache) potential_V and current_density_A_cm2."""
        sigma, top, digest = self._normalised(lab, lut)
        if return_field:
            r = self._solve(sigma, top, axis, "raw")
            r["sigma_eff_S_cm"] = r["sigma_eff_S_cm"] * top
            r["current_density_A_cm2"] = tuple(c * top for c in r["current_density_A_cm2"])
            return r
        key = (digest, axis)
        if key not in self.cache:
            self.cache[key] = self._solve(sigma, top, axis,
                                          "flux" if key in self.field_keys else None)
        del sigma
        r = dict(self.cache[key])
        r["sigma_eff_S_cm"] = r["sigma_eff_S_cm"] * top
        for name in ("j_magnitude", "j_axis"):
            if name in r:
                r[name] = r[name] * np.float32(top)
        return r
