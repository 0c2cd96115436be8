"""The tip model: one tip position solved over the whole volume with the Dirichlet window (its
resistance, potential and current density), the DC (full-face) mode and the half-space spreading
resistance of the tip.

References
----------
Gamo et al., SI "Verification of the SSRM simulator": the simulated SSRM and its analytic checks.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from voxelyte import conduction
from voxelyte.errors import InputError
from voxelyte.ssrm.model import Model, model_of, window_offsets
from voxelyte.ssrm.pardiso import direct_solve
from voxelyte.ssrm.solvers import use_direct

#: Spreading resistance of a square contact of side s on a half-space of resistivity ρ:
#: R = C_SQUARE ρ/s (from the capacitance of a square plate, 0.3607·4πε·s).
C_SQUARE = 0.4412
#: Disc contact of radius a: R = ρ/(4a) (Maxwell, Holm).
C_DISC = 0.25
#: Relative residual of the iterative solves (reference pixels, current fields).
DEFAULT_RTOL = 1e-8
FIELD_SOLVERS = ("auto", "direct", "amg", "gmg")


def spreading_resistance_ohm(sigma_S_cm: float, voxel_yx_um, *, tip_size_voxels: int = 1,
                             disc_radius_um: float | None = None) -> float:
    """Half-space spreading resistance of the tip: C_SQUARE/(σ s) for a square of side s, or
    C_DISC/(σ a) = 1/(4σa) for a disc of radius a.

    Parameters
    ----------
    sigma_S_cm : float
        Conductivity of the half-space (S cm⁻¹).
    voxel_yx_um : sequence of 2 float
        Face pixel size (µm); the square's side is ``tip_size_voxels`` × their geometric mean.
    tip_size_voxels : int
    disc_radius_um : float, optional

    Returns
    -------
    float
        R (Ω); inf for σ <= 0.

    References
    ----------
    Holm, *Electric Contacts* (1967): the disc (Maxwell) and square contact resistances.
    """
    if sigma_S_cm <= 0:
        return math.inf
    if disc_radius_um:
        return C_DISC / (sigma_S_cm * disc_radius_um * conduction.UM_TO_CM)
    side_cm = tip_size_voxels * math.sqrt(voxel_yx_um[0] * voxel_yx_um[1]) * conduction.UM_TO_CM
    return C_SQUARE / (sigma_S_cm * side_cm)


def _window_mask(model: Model, pos, offsets) -> np.ndarray:
    nr, nc = model.face_shape
    mask = np.zeros((nr, nc), bool)
    wr, wc = pos[0] + offsets[:, 0], pos[1] + offsets[:, 1]
    ok = (wr >= 0) & (wr < nr) & (wc >= 0) & (wc < nc)
    mask[wr[ok], wc[ok]] = True
    return mask


def tip_field(sigma, voxel_size_um, position, *, tip_size_voxels: int = 1,
              disc_radius_um: float | None = None, contact_resistance_ohm: float = 0.0,
              scanned_axis="z", scanned_side: str = "start", bias_V: float = 1.0,
              rtol: float = DEFAULT_RTOL, full_face: bool = False, offsets=None,
              solver: str = "auto", model: Model | None = None) -> dict:
    """One tip position solved over the whole volume: the Dirichlet window (tip at ``bias_V``
    behind R_c); an independent check of the map and the 3D current field.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Conductivity (S cm⁻¹); ignored when ``model`` is given.
    voxel_size_um : sequence of 3 float
        Voxel size (µm); ignored when ``model`` is given.
    position : (row, col)
        Tip position on the scanned face (ignored for ``full_face``).
    tip_size_voxels, disc_radius_um : see :func:`voxelyte.ssrm.window_offsets`.
    contact_resistance_ohm : float
        Contact resistance in series (Ω).
    scanned_axis, scanned_side : see :func:`voxelyte.ssrm.model_of`.
    bias_V : float
        Tip bias (V).
    rtol : float
        Relative residual of the iterative solvers.
    full_face : bool
        The whole face is the window (DC mode).
    offsets : numpy.ndarray, optional
        The window's pixel offsets (instead of the tip size).
    solver : {'auto', 'direct', 'gmg', 'amg'}
        One factorisation, the transport stage's matrix-free multigrid-CG (the window as its
        inlet), pyamg AMG-CG, or ``auto`` (direct for small networks, else gmg).
    model : Model, optional
        A model built before (:func:`voxelyte.ssrm.model_of`).

    Returns
    -------
    dict
        position, resistance_ohm, current_A, potential_V, window_potential_V,
        current_density_A_cm2 (j_depth, j_row, j_col in the scanned-face frame),
        depth_profile_A_cm2 (per plane, the current-weighted mean of the normal component
        Σ j²/Σ |j|: I/A at every depth for a full-face window, peaked under a small tip) and
        depth_profile_max_A_cm2.

    References
    ----------
    Gamo et al., SI Fig. S3: the current density under the tip.
    """
    if model is None:
        model = model_of(sigma, voxel_size_um, scanned_axis, scanned_side)
    if offsets is None:
        offsets = window_offsets(model.voxel[1:], tip_size_voxels=tip_size_voxels,
                                 disc_radius_um=disc_radius_um)
    mask = np.ones(model.face_shape, bool) if full_face else \
        _window_mask(model, np.asarray(position), offsets)
    mask &= model.network[0]
    shape = model.sigma.shape
    out = {"position": None if full_face else [int(v) for v in position]}
    if not mask.any():
        out.update(resistance_ohm=math.inf, current_A=0.0,
                   potential_V=np.full(shape, np.nan),
                   current_density_A_cm2=tuple(np.zeros(shape) for _ in range(3)),
                   depth_profile_A_cm2=np.zeros(shape[0]),
                   depth_profile_max_A_cm2=np.zeros(shape[0]))
        return out
    # the window voxels and the network part they reach (same network as the map)
    sub = conduction.percolating_network(model.network, 0, inlet_mask=mask)
    x, i_unit = _window_solution(model, mask, sub, solver, rtol)
    out.update(_field_of_solution(model, x, i_unit, mask, sub, contact_resistance_ohm, bias_V))
    return out


def _window_solution(model: Model, mask, sub, solver: str, rtol: float):
    """Potential x (on ``sub``, window at 1 V) and the current at 1 V (A) of one window."""
    if solver not in FIELD_SOLVERS:
        raise InputError("unknown SSRM field solver", field="solver",
                         expected="auto, direct, amg or gmg", found=solver)
    if solver == "auto":
        solver = "direct" if use_direct(int(np.count_nonzero(sub))) else "gmg"
    if solver == "gmg":     # the transport stage's multigrid-CG solve, the window as its inlet
        grid, i_unit, _, _ = conduction.effective_conductivity_gmg(
            model.sigma, model.voxel, 0, sub, rtol=rtol, maxiter=None, periodic=False,
            potential_in=1.0, potential_out=0.0, dtype=np.float32, inlet_mask=mask,
            deflation_labels=model.isolated_clusters()[0])
        x = grid[sub]
        del grid
        return x, i_unit
    system = conduction.assemble(model.sigma, model.voxel, 0, inlet_mask=mask,
                                 potential_in=1.0, network=model.network)
    keep = sub[model.network]
    A = system.A[keep][:, keep]
    b = system.b[keep]
    if solver == "direct":
        x = direct_solve(A, b[:, None])[:, 0]
    else:
        import pyamg
        from scipy.sparse.linalg import cg
        d = 1.0 / np.sqrt(A.diagonal())
        As = sp.csr_matrix(sp.diags(d) @ A @ sp.diags(d))
        ml = pyamg.smoothed_aggregation_solver(As, symmetry="hermitian",
                                               strength="symmetric", max_coarse=500)
        y, _ = cg(As, b * d, rtol=rtol, atol=0.0, maxiter=5000, M=ml.aspreconditioner())
        x = y * d
    i_unit = float(np.dot(system.g_in_S[keep], 1.0 - x))   # A at 1 V on the window
    return x, i_unit


def _field_of_solution(model: Model, x, i_unit, mask, sub, contact_ohm, bias_V) -> dict:
    """Resistance, potential, current density and depth profiles of a window solution."""
    r_body = 1.0 / i_unit
    R = contact_ohm + r_body
    v_window = bias_V * r_body / R                    # window potential behind R_c
    phi = np.full(model.sigma.shape, np.nan)
    phi[sub] = x * v_window
    out = dict(resistance_ohm=R, current_A=bias_V / R, potential_V=phi,
               window_potential_V=v_window)
    j = _current_density(model, phi, mask, v_window, sub)
    out["current_density_A_cm2"] = j
    jd = np.abs(j[0])
    total = jd.sum(axis=(1, 2))
    out["depth_profile_A_cm2"] = np.where(total > 0, (jd ** 2).sum(axis=(1, 2)) /
                                          np.where(total > 0, total, 1.0), 0.0)
    out["depth_profile_max_A_cm2"] = jd.max(axis=(1, 2))
    return out


def _current_density(model: Model, phi, mask, v_window, on):
    """(j_depth, j_row, j_col) in A cm⁻² at voxel centres: the mean of a voxel's two face
    currents along each axis (the window and counter-electrode faces included) / face area."""
    sigma, voxel = model.sigma, model.voxel
    gs = conduction.face_conductances(sigma, voxel)
    p = np.nan_to_num(phi, nan=0.0)
    coef = np.array([voxel[1] * voxel[2] / voxel[0], voxel[0] * voxel[2] / voxel[1],
                     voxel[0] * voxel[1] / voxel[2]]) * conduction.UM_TO_CM
    areas = np.array([voxel[1] * voxel[2], voxel[0] * voxel[2], voxel[0] * voxel[1]]) * 1e-8
    out = []
    for a in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[a], hi[a] = slice(0, -1), slice(1, None)
        both = on[tuple(lo)] & on[tuple(hi)]
        inner = np.where(both, gs[a] * (p[tuple(lo)] - p[tuple(hi)]), 0.0)
        shape = list(sigma.shape)
        shape[a] += 1
        faces = np.zeros(shape)
        mid = [slice(None)] * 3
        mid[a] = slice(1, -1)
        faces[tuple(mid)] = inner
        if a == 0:
            gb = 2.0 * sigma * coef[0]
            faces[0] = np.where(mask & on[0], gb[0] * (v_window - p[0]), 0.0)
            faces[-1] = np.where(on[-1], gb[-1] * p[-1], 0.0)
        out.append(0.5 * (faces[tuple(lo)] + faces[tuple(hi)]) / areas[a])
    return tuple(out)


def tip_resistance(sigma, voxel_size_um, position, **kw) -> float:
    """R of one tip position by an independent whole-volume solve (:func:`tip_field`).

    Parameters
    ----------
    sigma, voxel_size_um, position
        As for :func:`tip_field`.
    **kw
        Keyword arguments of :func:`tip_field`.

    Returns
    -------
    float
        R (Ω).
    """
    return tip_field(sigma, voxel_size_um, position, **kw)["resistance_ohm"]


def dc_resistance(sigma, voxel_size_um, *, scanned_axis="z", scanned_side: str = "start",
                  rtol: float = DEFAULT_RTOL, model: Model | None = None) -> dict:
    """DC mode: the whole scanned face is the window.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Conductivity (S cm⁻¹); ignored when ``model`` is given.
    voxel_size_um : sequence of 3 float
        Voxel size (µm); ignored when ``model`` is given.
    scanned_axis, scanned_side : see :func:`voxelyte.ssrm.model_of`.
    rtol : float
        Relative residual of the solve.
    model : Model, optional
        A model built before.

    Returns
    -------
    dict
        resistance_ohm (Ω), sigma_eff_S_cm = L/(R·A) (the transport stage's effective
        conductivity along the scan axis; 0 without a path) and depth_profile_A_cm2.
    """
    if model is None:
        model = model_of(sigma, voxel_size_um, scanned_axis, scanned_side)
    f = tip_field(None, None, None, full_face=True, rtol=rtol, model=model)
    R = f["resistance_ohm"]
    (nz, nr, nc), (vz, vr, vc) = model.sigma.shape, model.voxel
    length_cm = nz * vz * conduction.UM_TO_CM
    area_cm2 = nr * vr * nc * vc * 1e-8
    return {"resistance_ohm": R, "sigma_eff_S_cm": length_cm / (R * area_cm2)
            if math.isfinite(R) else 0.0, "depth_profile_A_cm2": f["depth_profile_A_cm2"]}
