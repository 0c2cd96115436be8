"""Whole-volume solves of the SSRM model for several right-hand sides: AMG-CG, the transport
stage's matrix-free multigrid-CG for currents injected at the scanned face, and the choice between
one factorisation and multigrid for the far-field probes of the tiled method."""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from voxelyte import conduction
from voxelyte.ssrm.model import Model
from voxelyte.ssrm.pardiso import Pardiso, direct_solve

log = logging.getLogger("voxelyte.ssrm")

#: Largest system (unknowns) whose probe solves use one sparse factorisation of the whole
#: volume instead of multigrid-CG (the fill of a 3D factorisation grows as N⁴).
DIRECT_PROBE_MAX_UNKNOWNS = 400_000


def use_direct(n: int) -> bool:
    """Whether a system of ``n`` unknowns is solved by one factorisation.

    Parameters
    ----------
    n : int
        Unknowns.

    Returns
    -------
    bool
        True up to DIRECT_PROBE_MAX_UNKNOWNS where MKL PARDISO is installed.
    """
    return n <= DIRECT_PROBE_MAX_UNKNOWNS and Pardiso.library() is not None


def amg_solve(model: Model, B: np.ndarray, rtol: float, progress=None) -> np.ndarray:
    """Solve A X = B (columns) by CG with one shared smoothed-aggregation AMG hierarchy on the
    Jacobi-scaled matrix (built once per model; evolution strength of connection).

    Parameters
    ----------
    model : Model
    B : numpy.ndarray, (n, k)
        Right-hand sides (A).
    rtol : float
        Relative residual of CG.
    progress : callable, optional
        ``progress(done, total)`` after each column.

    Returns
    -------
    numpy.ndarray, (n, k)
        Potentials (V).
    """
    import pyamg
    from scipy.sparse.linalg import cg
    A = model.A
    d = 1.0 / np.sqrt(A.diagonal())
    if model.amg is None:
        As = sp.csr_matrix(sp.diags(d) @ A @ sp.diags(d))
        # evolution strength: fewer CG iterations than "symmetric" on 1e8-contrast fields
        ml = pyamg.smoothed_aggregation_solver(As, symmetry="hermitian", strength="evolution",
                                               max_coarse=500)
        model.amg = (As, ml.aspreconditioner(cycle="V"))
    As, M = model.amg
    X = np.zeros_like(B)
    for k in range(B.shape[1]):
        b = B[:, k] * d
        x, info = cg(As, b, rtol=rtol, atol=0.0, maxiter=5000, M=M)
        if info != 0:
            log.warning("AMG-CG did not reach rtol %.1e (info %d)", rtol, info)
        X[:, k] = x * d
        if progress:
            progress(k + 1, B.shape[1])
    return X


def gmg_face_solve(model: Model, B: np.ndarray, rtol: float) -> np.ndarray:
    """A⁻¹ B for currents injected at the scanned face, by the transport stage's matrix-free
    multigrid-CG (:func:`voxelyte.conduction.gmg_solve`; float32 levels, so the true relative
    residual stops near 1e-7), with the isolated carrier clusters deflated
    (:class:`voxelyte.conduction.ClusterDeflation`). The hierarchy is built once per model.

    Parameters
    ----------
    model : Model
    B : numpy.ndarray, (n, k)
        Right-hand sides, nonzero only in the face rows (ValueError otherwise).
    rtol : float
        Relative residual of CG.

    Returns
    -------
    numpy.ndarray, (n, k)
        Potentials (V).
    """
    face = model.index_map[0]
    on_face = face >= 0
    n_face = int(np.count_nonzero(on_face))
    if np.any(B[n_face:]):
        raise ValueError("multigrid probe sources must lie on the scanned face")
    if model.gmg is None:
        model.gmg = conduction.grid_operator(model.sigma, model.voxel, model.network,
                                             inlet_mask=np.zeros(model.face_shape, bool))
        model.deflation = conduction.ClusterDeflation(model.gmg, model.isolated_clusters()[0])
    on = model.index_map >= 0
    X = np.empty(B.shape)
    current = np.zeros(model.face_shape)
    for k in range(B.shape[1]):
        current[on_face] = B[face[on_face], k]
        x = np.zeros(model.sigma.shape)
        info = conduction.gmg_solve(model.gmg, 0.0, 0.0, x, rtol=rtol, current_in=current,
                                    deflation=model.deflation)
        if not info["converged"]:
            log.warning("multigrid-CG did not reach rtol %.1e (%.1e after %d iterations)", rtol,
                        info["relative_residual"], info["iterations"])
        X[:, k] = x[on]
    return X


def probe_solve(model: Model, B: np.ndarray, rtol: float) -> np.ndarray:
    """A⁻¹ B for face sources: one factorisation where the system is small
    (:func:`use_direct`), else :func:`gmg_face_solve`.

    Parameters
    ----------
    model : Model
    B : numpy.ndarray, (n, k)
        Right-hand sides on the scanned face.
    rtol : float
        Relative residual of the multigrid solves.

    Returns
    -------
    numpy.ndarray, (n, k)
    """
    if use_direct(model.A.shape[0]):
        return direct_solve(model.A, B)
    return gmg_face_solve(model, B, rtol)
