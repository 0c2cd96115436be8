"""Conjugate-gradient solvers: the matrix-free multigrid-preconditioned CG on the voxel grid
(:func:`gmg_solve`, the default) and scipy CG on the assembled CSR matrix with a pyamg AMG
preconditioner (:func:`solve`, the reference)."""
from __future__ import annotations

import math
import time

import numpy as np

from voxelyte.errors import InputError

from .deflation import ClusterDeflation
from .kernels import _cg_dot, _cg_pap, _cg_step, _cg_update_p, _csr_matvec
from .multigrid import GeometricMultigrid, _serial_if_small

#: Default relative residual ||b - A x|| / ||b|| of the CG solve. With the multigrid or AMG
#: preconditioners it puts τ within 1e-5 (relative) of a solve converged to 1e-12 on random porous
#: media (tests/test_transport_conduction.py checks it; the requirement is 0.1 %).
DEFAULT_RTOL = 1e-7


# --------------------------------------------------------------------------- assembled matrix
def _as_float64_operator(A, row_sums=None):
    """A float32 CSR matrix as a float64 LinearOperator (float64 accumulation, no copy of A).
    The diagonal is rebuilt in float64 from the rounded off-diagonals and the exact row sums
    (the Dirichlet conductances): a float32 diagonal rounded on its own adds leaks of ~1e-7·G to
    every row, which shift σ_eff by ~1 % at 200³ (the error grows with n²)."""
    from scipy.sparse.linalg import LinearOperator
    off = A.copy()
    off.setdiag(0)
    rowsum = row_sums
    if rowsum is None:
        rowsum = np.asarray(A.astype(np.float64).sum(axis=1)).ravel()
    diag = rowsum - np.asarray(off.astype(np.float64).sum(axis=1)).ravel()
    del off

    def matvec(x):
        y = np.empty(A.shape[0])
        _csr_matvec(A.indptr, A.indices, A.data, diag,
                    np.ascontiguousarray(x, np.float64).ravel(), y)
        return y
    return LinearOperator(A.shape, matvec=matvec, rmatvec=matvec, dtype=np.float64)


def _preconditioner(A, kind: str):
    """One V-cycle of pyamg AMG on A: smoothed aggregation ("sa") or Ruge–Stüben ("rs", a
    reference in the tests); None (or "none"): no preconditioner (plain CG)."""
    if kind in (None, "none"):
        return None
    import pyamg
    if kind == "sa":
        ml = pyamg.smoothed_aggregation_solver(
            A, symmetry="hermitian", strength="symmetric", max_coarse=500,
            improve_candidates=None)
    elif kind == "rs":
        ml = pyamg.ruge_stuben_solver(A, max_coarse=500)
    else:
        raise InputError("unknown preconditioner", field="preconditioner",
                         expected="'gmg', 'sa', 'rs' or None", found=kind)
    M = ml.aspreconditioner(cycle="V")
    if A.dtype == np.float64:
        return M
    from scipy.sparse.linalg import LinearOperator

    def apply(r):  # float32 hierarchy inside a float64 CG
        return M @ np.asarray(r, A.dtype).ravel()
    return LinearOperator(A.shape, matvec=lambda r: apply(r).astype(np.float64), dtype=np.float64)


def solve(A, b, *, rtol: float = DEFAULT_RTOL, maxiter: int | None = None,
          preconditioner: str | None = "sa", x0=None, row_sums=None):
    """Solve the SPD system A x = b by conjugate gradients (scipy), stopping at
    ||b − A x|| ≤ rtol·||b||.

    Parameters
    ----------
    A : scipy.sparse.csr_matrix
        The matrix of :func:`assemble` (float64, or float32: applied in float64 with its diagonal
        rebuilt from ``row_sums``).
    b : array_like
        Right-hand side.
    rtol : float
    maxiter : int, optional
        Default max(1000, 10·n^(1/3)).
    preconditioner : {'sa', 'rs', None}
        One V-cycle of pyamg smoothed-aggregation or Ruge–Stüben AMG, or none.
    x0 : array_like, optional
        Initial guess.
    row_sums : array_like, optional
        Exact float64 row sums (g_in + g_out of the :class:`LinearSystem`) for a float32 ``A``.

    Returns
    -------
    x : numpy.ndarray
    info : dict
        iterations, relative_residual (recomputed from x), converged, setup_time_s,
        solve_time_s.
    """
    from scipy.sparse.linalg import cg

    b = np.asarray(b, dtype=np.float64)
    n = b.size
    if n == 0:
        return np.zeros(0), {"iterations": 0, "relative_residual": 0.0, "converged": True,
                             "setup_time_s": 0.0, "solve_time_s": 0.0}
    maxiter = maxiter if maxiter is not None else max(1000, 10 * int(round(n ** (1 / 3))))
    t0 = time.perf_counter()
    M = _preconditioner(A, preconditioner)
    t1 = time.perf_counter()
    iterations = [0]

    def count(_):
        iterations[0] += 1

    if A.dtype == np.float64:
        op = A
    else:
        op = _as_float64_operator(A, None if row_sums is None else np.asarray(row_sums, float))
    x, status = cg(op, b, x0=x0, rtol=rtol, atol=0.0, maxiter=maxiter, M=M, callback=count)
    t2 = time.perf_counter()
    bnorm = float(np.linalg.norm(b))
    res = float(np.linalg.norm(b - op @ x)) / bnorm if bnorm > 0 else 0.0
    return x, {"iterations": iterations[0], "relative_residual": res,
               "converged": bool(status == 0), "setup_time_s": t1 - t0, "solve_time_s": t2 - t1}


# --------------------------------------------------------------------------- matrix-free
def gmg_solve(mg: GeometricMultigrid, potential_in: float, potential_out: float, x, *,
              rtol: float = DEFAULT_RTOL, maxiter: int | None = None, current_in=None,
              deflation: ClusterDeflation | None = None):
    """Conjugate gradients (float64 vectors and sums) preconditioned by one V-cycle of ``mg``
    for the Dirichlet problem of its grid; stops at ||b − A x|| ≤ rtol·||b||.

    Parameters
    ----------
    mg : GeometricMultigrid
        Operator and hierarchy (:func:`grid_operator`).
    potential_in, potential_out : float
        Potentials (V) of the inlet plane (first plane of axis 0) and the outlet plane.
    x : numpy.ndarray of float64
        Grid array: the initial guess (0 outside the network), overwritten by the solution.
    rtol : float
    maxiter : int, optional
        Default 1000.
    current_in : array_like, optional
        Currents (A, 2D) injected into the voxels of the first plane (the SSRM probes).
    deflation : ClusterDeflation, optional
        Deflated CG with these cluster vectors.

    Returns
    -------
    dict
        iterations, relative_residual (recomputed), converged, solve_time_s.

    References
    ----------
    Saad, Yeung, Erhel, Guyomarc'h, SIAM J. Sci. Comput. 21, 1909 (2000): deflated CG.
    """
    with _serial_if_small(x.size):
        return _gmg_solve(mg, potential_in, potential_out, x, rtol=rtol, maxiter=maxiter,
                          current_in=current_in, deflation=deflation)


def _gmg_solve(mg, potential_in, potential_out, x, *, rtol, maxiter, current_in=None,
               deflation=None):
    t0 = time.perf_counter()
    f = mg.levels[0]
    b_lo = f.b_in.astype(np.float64) * potential_in
    if current_in is not None:
        b_lo = b_lo + np.asarray(current_in, np.float64)
    b_hi = f.b_out.astype(np.float64) * potential_out
    if x.shape[0] == 1:
        b_lo, b_hi = b_lo + b_hi, None
    bnorm = math.sqrt(float(np.sum(b_lo ** 2) + (np.sum(b_hi ** 2) if b_hi is not None else 0)))
    maxiter = maxiter if maxiter is not None else 1000

    def residual(out):
        mg.matvec(x, out)
        np.negative(out, out=out)
        out[0] += b_lo
        if b_hi is not None:
            out[-1] += b_hi

    r = np.empty_like(x)
    residual(r)
    deflate = deflation is not None and deflation.k > 0
    if deflate:   # start with Zᵀ r = 0
        deflation.add(x, deflation.coarse_of(r))
        residual(r)
    rr = _cg_dot(r, r)
    z = np.empty(x.shape, np.float32)
    # search direction: float32 (A p is recomputed exactly); float64 when deflating, where
    # p = z − Z μ cancels large cluster levels
    p = np.zeros(x.shape, np.float64 if deflate else np.float32)
    it = 0
    converged = bnorm == 0 or math.sqrt(rr) <= rtol * bnorm
    rz_old = 1.0
    while not converged and it < maxiter:
        mg.vcycle(r, z)
        rz = _cg_dot(r, z)
        _cg_update_p(p, z, rz / rz_old if it > 0 else 0.0)
        if deflate:   # p ← p − Z E⁻¹ Zᵀ A z
            deflation.add(p, deflation.coarse_of_az(z), -1.0)
        rz_old = rz
        pap = _cg_pap(p, *f.g, f.b_in, f.b_out)
        rr = _cg_step(x, r, p, *f.g, f.b_in, f.b_out, rz / pap)
        it += 1
        converged = math.sqrt(rr) <= rtol * bnorm
    del z, p
    q = r
    residual(q)
    res = math.sqrt(_cg_dot(q, q)) / bnorm if bnorm > 0 else 0.0
    return {"iterations": it, "relative_residual": res, "converged": bool(converged),
            "solve_time_s": time.perf_counter() - t0}

