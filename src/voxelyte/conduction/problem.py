"""One conduction problem: a conductivity field between two Dirichlet faces of an axis, solved
for the effective conductivity σ_eff = I · L / (A_cross · ΔV) and, optionally, the potential and
current-density fields."""
from __future__ import annotations

import math
import time

import numpy as np

from voxelyte.contract import AXES, axis_index, voxel_size_um as checked_voxel

from .cg import DEFAULT_RTOL, gmg_solve, solve
from .conductances import (UM_TO_CM, _coefficients, _components, _network_from_labels,
                           _pair_slices, _sigma_any, conductivity_array, face_conductances)
from .deflation import ClusterDeflation
from .operator import LinearSystem, assemble, grid_operator

#: Grid size (voxels) above which the multigrid path stores conductances in float32 by default.
FLOAT32_ABOVE_VOXELS = 2 ** 24


def _to_front(arr, a: int):
    return arr if a == 0 else np.ascontiguousarray(np.moveaxis(arr, a, 0))


def effective_conductivity_gmg(sigma, voxel, a, net, *, rtol, maxiter, periodic, potential_in,
                               potential_out, dtype, inlet_mask=None, outlet_mask=None,
                               deflation_labels=None):
    """The matrix-free multigrid-CG solve of one network along an axis.

    Parameters
    ----------
    sigma : numpy.ndarray, (z, y, x)
        Voxel conductivities (S cm⁻¹).
    voxel : tuple of float
        (dz, dy, dx) µm.
    a : int
        Axis index of the Dirichlet faces.
    net : numpy.ndarray of bool
        The voxels in the system.
    rtol, maxiter, periodic, potential_in, potential_out, dtype
        As in :func:`gmg_solve` / :func:`grid_operator`.
    inlet_mask, outlet_mask : array_like of bool, optional
        2D contact masks of the faces (in the frame with ``a`` first).
    deflation_labels : array_like of int, optional
        Voxel clusters deflated in the CG (:class:`ClusterDeflation`).

    Returns
    -------
    tuple
        (potential grid (z, y, x), I_in (A), I_out (A), info dict incl. setup_time_s, levels).
    """
    t0 = time.perf_counter()
    vox = tuple(voxel[d] for d in [a] + [d for d in range(3) if d != a])
    net_t = _to_front(net, a)
    mg = grid_operator(_to_front(sigma, a), vox, net_t, periodic=periodic,
                       inlet_mask=inlet_mask, outlet_mask=outlet_mask, dtype=dtype)
    t1 = time.perf_counter()
    n_axis = net_t.shape[0]
    t = ((np.arange(n_axis) + 0.5) / n_axis).reshape(-1, 1, 1)
    x = np.where(net_t, potential_in + (potential_out - potential_in) * t, 0.0)
    deflation = None
    if deflation_labels is not None:
        deflation = ClusterDeflation(mg, np.where(net_t, _to_front(deflation_labels, a), 0))
    del net_t
    info = gmg_solve(mg, potential_in, potential_out, x, rtol=rtol, maxiter=maxiter,
                     deflation=deflation)
    f = mg.levels[0]
    i_in = float(np.sum(f.b_in.astype(np.float64) * (potential_in - x[0])))
    i_out = float(np.sum(f.b_out.astype(np.float64) * (x[-1] - potential_out)))
    info.update(setup_time_s=t1 - t0, levels=len(mg.levels))
    return np.moveaxis(x, 0, a), i_in, i_out, info


def _linear_guess(system: LinearSystem) -> np.ndarray:
    """Initial guess: the potential falling linearly along the axis."""
    a = system.axis
    n_axis = system.index_map.shape[a]
    pos = np.nonzero(system.index_map >= 0)[a]  # C order = row order
    t = (pos + 0.5) / n_axis
    return system.potential_in + (system.potential_out - system.potential_in) * t


def _face_currents(potential: np.ndarray, sigma: np.ndarray, voxel, on: np.ndarray):
    """Current (A) through every inner face along each axis, positive towards increasing index,
    between the voxels of the network ``on``, from the full potential field (NaN outside)."""
    gz, gy, gx = face_conductances(sigma, voxel)
    phi = np.nan_to_num(potential, nan=0.0)
    currents = []
    for a, g in enumerate((gz, gy, gx)):
        lo, hi = _pair_slices(a)
        both = on[lo] & on[hi]
        currents.append(np.where(both, g * (phi[lo] - phi[hi]), 0.0))
    return currents


def _current_density(potential, sigma, voxel, on, axis: int, potential_in: float,
                     potential_out: float):
    """(jz, jy, jx) in A cm⁻² at voxel centres: mean of the currents through a voxel's two faces
    along each axis (the Dirichlet faces of ``axis`` included) over the face area."""
    face = _face_currents(potential, sigma, voxel, on)
    dz, dy, dx = voxel
    areas_cm2 = np.array([dy * dx, dz * dx, dz * dy]) * UM_TO_CM ** 2
    phi = np.nan_to_num(potential, nan=0.0)
    out = []
    for a in range(3):
        shape = list(sigma.shape)
        shape[a] += 1
        faces = np.zeros(shape)
        inner = [slice(None)] * 3
        inner[a] = slice(1, -1)
        faces[tuple(inner)] = face[a]
        if a == axis:
            g_b = 2.0 * sigma * _coefficients(voxel)[a]
            first = [slice(None)] * 3
            first[a] = slice(0, 1)
            first = tuple(first)
            last = [slice(None)] * 3
            last[a] = slice(-1, None)
            last = tuple(last)
            faces[first] = np.where(on[first], g_b[first] * (potential_in - phi[first]), 0.0)
            faces[last] = np.where(on[last], g_b[last] * (phi[last] - potential_out), 0.0)
        lo, hi = _pair_slices(a)
        out.append(0.5 * (faces[lo] + faces[hi]) / areas_cm2[a])
    return tuple(out)


class ConductionProblem:
    """Steady conduction through the field ``sigma`` (S cm⁻¹) along ``axis``: Dirichlet faces at
    index 0 (``potential_in`` V) and n-1 (``potential_out`` V), no flux elsewhere (or periodic
    sides); only the conducting voxels connected to both faces (the percolating network) enter
    the system.

    ``preconditioner="gmg"`` (default): matrix-free CG on the voxel grid with a geometric
    multigrid V(2,2)-cycle, float64 solution; conductances in ``dtype`` (None: float64 up to
    FLOAT32_ABOVE_VOXELS voxels, float32 above). ``"sa"``, ``"rs"`` or None: the assembled CSR
    matrix (values in ``dtype``, None: float64) with scipy CG and that pyamg preconditioner.
    ``network``: precomputed boolean mask of the network; ``components``: precomputed
    ``(labels, count)`` of the conducting clusters (shared between axes). Construction labels
    the network (and assembles the CSR matrix); :meth:`solve` solves.
    """

    def __init__(self, sigma, voxel_size_um, axis, *, preconditioner: str | None = "gmg",
                 periodic: bool = False, dtype=None, potential_in: float = 1.0,
                 potential_out: float = 0.0, network=None, components=None):
        t0 = time.perf_counter()
        self.matrix_free = preconditioner == "gmg"
        self.preconditioner = preconditioner
        self.sigma = _sigma_any(sigma) if self.matrix_free else conductivity_array(sigma)
        self.voxel = checked_voxel(voxel_size_um)
        self.axis = axis_index(axis)
        self.periodic, self.dtype = periodic, dtype
        self.potential_in, self.potential_out = potential_in, potential_out
        if network is None:
            lab, ncomp = components if components is not None else _components(self.sigma > 0)
            network = _network_from_labels(lab, ncomp, self.axis, periodic)
            del lab
        self.network = np.asarray(network, bool) & (self.sigma > 0)
        self.n_unknowns = int(np.count_nonzero(self.network))
        self.system = None
        if not self.matrix_free:
            self.system = assemble(self.sigma, self.voxel, self.axis, potential_in=potential_in,
                                   potential_out=potential_out, periodic=periodic,
                                   dtype=np.float64 if dtype is None else dtype,
                                   network=self.network)
        self.setup_time_s = time.perf_counter() - t0

    def _sigma_eff(self, current_out_A: float) -> float:
        """σ_eff (S cm⁻¹) = I · L / (A_cross · ΔV) of the outlet current I (lengths µm → cm)."""
        a, sigma, voxel = self.axis, self.sigma, self.voxel
        dv = self.potential_in - self.potential_out
        length_cm = sigma.shape[a] * voxel[a] * UM_TO_CM
        others = [d for d in range(3) if d != a]
        area_cm2 = math.prod(sigma.shape[d] * voxel[d] for d in others) * UM_TO_CM ** 2
        return current_out_A * length_cm / (area_cm2 * dv)

    def _solve_grid(self, rtol, maxiter, return_field):
        dtype = self.dtype
        if dtype is None:
            dtype = np.float32 if self.sigma.size > FLOAT32_ABOVE_VOXELS else np.float64
        x, i_in, i_out, info = effective_conductivity_gmg(
            self.sigma, self.voxel, self.axis, self.network, rtol=rtol, maxiter=maxiter,
            periodic=self.periodic, potential_in=self.potential_in,
            potential_out=self.potential_out, dtype=dtype)
        potential = np.where(self.network, x, np.nan) if return_field else None
        return potential, i_in, i_out, info

    def _solve_csr(self, rtol, maxiter, return_field):
        system = self.system
        x, info = solve(system.A, system.b, rtol=rtol, preconditioner=self.preconditioner,
                        x0=_linear_guess(system), maxiter=maxiter,
                        row_sums=system.g_in_S + system.g_out_S)
        i_in = float(np.dot(system.g_in_S, self.potential_in - x))
        i_out = float(np.dot(system.g_out_S, x - self.potential_out))
        potential = None
        if return_field:
            potential = np.full(self.sigma.shape, np.nan)
            potential[system.index_map >= 0] = x
        return potential, i_in, i_out, info

    def solve(self, *, rtol: float = DEFAULT_RTOL, maxiter: int | None = None,
              return_field: bool = False) -> dict:
        """Solve; the result dict of :func:`effective_conductivity`.

        Parameters
        ----------
        rtol : float, default DEFAULT_RTOL (1e-7)
            Relative residual ‖b − A x‖ / ‖b‖ at which the CG stops.
        maxiter : int, optional
            Most CG iterations; None: 1000 on the matrix-free gmg path, max(1000, 10 n^(1/3))
            for n unknowns on the CSR path.
        return_field : bool, default False
            Also return ``potential_V`` (V, NaN outside the network) and
            ``current_density_A_cm2`` (A cm⁻², (jz, jy, jx) at voxel centres).

        Returns
        -------
        dict
            axis, percolating, n_unknowns, network_fraction, sigma_eff_S_cm (S cm⁻¹),
            current_in_A, current_out_A, current_imbalance_rel, iterations, relative_residual,
            converged, assemble_time_s, setup_time_s, solve_time_s (s), plus the fields with
            ``return_field``; a network that does not span the two faces gives σ_eff = 0 and
            percolating False without a solve.
        """
        n, n_conducting = self.n_unknowns, int(np.count_nonzero(self.sigma))
        out = {"axis": AXES[self.axis], "percolating": n > 0, "n_unknowns": n,
               "network_fraction": n / n_conducting if n_conducting else 0.0,
               "assemble_time_s": self.setup_time_s}
        potential = None
        if n == 0:
            out.update(sigma_eff_S_cm=0.0, current_in_A=0.0, current_out_A=0.0,
                       current_imbalance_rel=0.0, iterations=0, relative_residual=0.0,
                       converged=True, setup_time_s=0.0, solve_time_s=0.0)
            if return_field:
                potential = np.full(self.sigma.shape, np.nan)
        else:
            step = self._solve_grid if self.matrix_free else self._solve_csr
            potential, i_in, i_out, info = step(rtol, maxiter, return_field)
            out.update(sigma_eff_S_cm=self._sigma_eff(i_out), current_in_A=i_in,
                       current_out_A=i_out,
                       current_imbalance_rel=abs(i_in - i_out) / abs(i_out) if i_out else 0.0,
                       **info)
        if return_field:
            out["potential_V"] = potential
            out["current_density_A_cm2"] = _current_density(
                potential, conductivity_array(self.sigma), self.voxel, self.network, self.axis,
                float(self.potential_in), float(self.potential_out))
        return out


def effective_conductivity(sigma, voxel_size_um, axis, *, rtol: float = DEFAULT_RTOL,
                           return_field: bool = False, preconditioner: str | None = "gmg",
                           periodic: bool = False, dtype=None, maxiter: int | None = None,
                           potential_in: float = 1.0, potential_out: float = 0.0,
                           network=None, _labels=None) -> dict:
    """Effective conductivity (S cm⁻¹) of the field ``sigma`` along ``axis``:
    σ_eff = I · L / (A_cross · ΔV), with I the current through the outlet face, L the sample
    length along the axis, A_cross its cross-section (µm → cm) and ΔV = V_in − V_out.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Voxel conductivities (S cm⁻¹); bool / uint8 / float32 stay as they are on the gmg path.
    voxel_size_um : sequence of 3 float
    axis : str or int
    rtol : float
        Relative residual of the CG solve.
    return_field : bool
        Also return the potential and current-density fields.
    preconditioner : {'gmg', 'sa', 'rs', None}
        See :class:`ConductionProblem`.
    periodic : bool
        Periodic instead of no-flux side faces.
    dtype : numpy dtype, optional
        Storage of the conductances (see :class:`ConductionProblem`).
    maxiter : int, optional
    potential_in, potential_out : float
        Potentials (V) of the inlet (index 0) and outlet (index n-1) faces.
    network : array_like of bool, optional
        Precomputed mask of the percolating network (skips the labelling).

    Returns
    -------
    dict
        sigma_eff_S_cm, percolating, network_fraction (of the σ > 0 voxels), current_in_A,
        current_out_A, current_imbalance_rel (|I_in − I_out| / |I_out|), iterations,
        relative_residual, setup_time_s, solve_time_s, assemble_time_s (labelling and CSR
        assembly), n_unknowns; a field that does not connect the two faces gives σ_eff = 0,
        percolating False. With ``return_field``: ``potential_V`` (NaN outside the network) and
        ``current_density_A_cm2`` = (jz, jy, jx) at voxel centres.

    References
    ----------
    Cooper et al., SoftwareX 5, 203 (2016) and Kench et al., JOSS 8, 5358 (2023) (TauFactor):
    the flux-based effective conductivity and tortuosity factor.
    """
    problem = ConductionProblem(sigma, voxel_size_um, axis, preconditioner=preconditioner,
                                periodic=periodic, dtype=dtype, potential_in=potential_in,
                                potential_out=potential_out, network=network,
                                components=_labels)
    return problem.solve(rtol=rtol, maxiter=maxiter, return_field=return_field)


def effective_conductivities(sigma, voxel_size_um, axes=AXES, *, periodic: bool = False,
                             **kw) -> dict:
    """:func:`effective_conductivity` along several axes, labelling the conducting clusters once.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
    voxel_size_um : sequence of 3 float
    axes : sequence of str or int
    periodic : bool
    **kw
        Passed to :func:`effective_conductivity`.

    Returns
    -------
    dict
        {axis name: result}.
    """
    gmg = kw.get("preconditioner", "gmg") == "gmg"
    sigma = _sigma_any(sigma) if gmg else conductivity_array(sigma)
    labels = _components(sigma > 0)
    return {AXES[axis_index(ax)]: effective_conductivity(sigma, voxel_size_um, ax,
                                                         periodic=periodic, _labels=labels, **kw)
            for ax in axes}
