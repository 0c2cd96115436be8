"""Steady-state conduction on a voxel grid: the finite-volume 7-point operator and its solver.

The voxel conductivity field ``sigma`` (z, y, x) in S cm⁻¹ and the voxel size (dz, dy, dx) in µm
define a resistor network between voxel centres. The conductance of the face between two
neighbours i, j along axis a is the series resistance of the two half voxels,

    G_ij = 2 σ_i σ_j / (σ_i + σ_j) · A_a / d_a          (harmonic mean × face area / centre distance)

with A_a the face area (µm²) and d_a the voxel size along a (µm); × 1e-4 cm µm⁻¹ gives siemens.
A Dirichlet face (fixed potential) sits half a voxel from the centre of the voxels next to it:
G_b = 2 σ_i A_a / d_a. All other outer faces carry no flux, or are periodic (``periodic=True``).
Kirchhoff's current law at every voxel gives the symmetric positive definite system A x = b.

Only the voxels of the part of the conducting network (σ > 0, face-connected) that touches both
Dirichlet faces enter the system; isolated clusters carry no current and are left out. The
current I through the outlet face gives

    σ_eff = I · L / (A_cross · ΔV)                      (S cm⁻¹; L and A_cross in cm, cm²)

and, for a single conducting phase of bulk conductivity σ_bulk and volume fraction φ, the
tortuosity factor τ = φ · σ_bulk / σ_eff (Minnmann et al. 2024, Eq. 3; the TauFactor convention,
Cooper et al. 2016, SoftwareX 5, 203; Kench et al. 2023, JOSS 8, 5358).

Default solver: matrix-free conjugate gradients on the voxel grid (float64 solution, residual and
sums) preconditioned by a geometric multigrid V(2,2)-cycle (red-black Gauss–Seidel, 2×2×2
aggregation with scaled Galerkin coarse networks, numba kernels); see the "matrix-free multigrid"
section. The assembled CSR matrix with pyamg AMG-CG (``preconditioner="sa"`` or ``"rs"``) remains
available and is the reference in the tests.
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit, prange
from scipy import ndimage

from voxelyte.descriptors._common import AXES, _axis_index, _voxel
from voxelyte.errors import InputError

#: cm per µm: G [S] = σ [S cm⁻¹] · area [µm²] / length [µm] · UM_TO_CM.
UM_TO_CM = 1e-4
#: Default relative residual ||b - A x|| / ||b|| of the CG solve. With the multigrid or AMG
#: preconditioners it puts τ within 1e-5 (relative) of a solve converged to 1e-12 on random porous
#: media (tests/test_conduction.py checks it; the requirement is 0.1 %).
DEFAULT_RTOL = 1e-7


# --------------------------------------------------------------------------- face conductances
def _harmonic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2ab/(a+b), 0 where either is 0."""
    s = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a > 0) & (b > 0), 2.0 * a * b / np.where(s > 0, s, 1.0), 0.0)


def _coefficients(voxel: tuple[float, float, float]) -> np.ndarray:
    """Face area / centre distance per axis, × 1e-4 cm µm⁻¹ (S per S cm⁻¹)."""
    dz, dy, dx = voxel
    return np.array([dy * dx / dz, dz * dx / dy, dz * dy / dx]) * UM_TO_CM


def conductivity_array(sigma) -> np.ndarray:
    sigma = np.asarray(sigma)
    if sigma.ndim != 3 or min(sigma.shape) < 1:
        raise InputError("conductivity field must be a non-empty 3D array (z, y, x)", field="sigma",
                         expected="3 dimensions", found=sigma.shape)
    if sigma.dtype.kind not in "biuf":
        raise InputError("conductivity field must be numeric", field="sigma",
                         expected="S cm⁻¹ as numbers", found=str(sigma.dtype))
    sigma = np.ascontiguousarray(sigma, dtype=np.float64)
    if not np.all(np.isfinite(sigma)) or sigma.min() < 0:
        raise InputError("conductivities must be finite and >= 0", field="sigma",
                         expected="σ >= 0 S cm⁻¹", found=f"min {np.nanmin(sigma)}")
    return sigma


def face_conductances(sigma, voxel_size_um, *, periodic: bool = False):
    """Conductances (S) of the inner faces between face neighbours: ``(gz, gy, gx)`` with shapes
    (nz-1, ny, nx), (nz, ny-1, nx), (nz, ny, nx-1); ``g[i]`` joins voxels i and i+1 along that axis.

    G = 2 σ_i σ_j / (σ_i + σ_j) · A_face / d · 1e-4 (σ in S cm⁻¹, lengths µm). With
    ``periodic=True`` each array has one more plane at the end: the face that joins the last and the
    first plane (used for the periodic side walls)."""
    sigma = conductivity_array(sigma)
    coef = _coefficients(_voxel(voxel_size_um))
    out = []
    for a in range(3):
        if periodic:
            other = np.roll(sigma, -1, axis=a)
        else:
            lo = [slice(None)] * 3
            lo[a] = slice(0, -1)
            hi = [slice(None)] * 3
            hi[a] = slice(1, None)
            sigma_lo, other = sigma[tuple(lo)], sigma[tuple(hi)]
        base = sigma if periodic else sigma_lo
        out.append(_harmonic(base, other) * coef[a])
    return tuple(out)


# --------------------------------------------------------------------------- network selection
def _merge_periodic(lab: np.ndarray, n: int, dims: list[int]) -> np.ndarray:
    """Merge component labels across periodic faces (union-find on label ids)."""
    parent = np.arange(n + 1)

    def find(i):
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for d in dims:
        first = np.take(lab, 0, axis=d).ravel()
        last = np.take(lab, -1, axis=d).ravel()
        pairs = np.unique(np.stack([first, last], 1)[(first > 0) & (last > 0)], axis=0)
        for a, b in pairs:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(n + 1)])
    return roots


def _components(conducting) -> tuple[np.ndarray, int]:
    """Face-connected (6-neighbourhood) component labels of a boolean field, and their count."""
    return ndimage.label(np.asarray(conducting, dtype=bool))


def _network_from_labels(lab: np.ndarray, n: int, a: int, periodic: bool = False,
                         inlet_mask=None, outlet_mask=None) -> np.ndarray:
    if n == 0:
        return np.zeros(lab.shape, bool)
    if periodic:
        roots = _merge_periodic(lab, n, [d for d in range(3) if d != a])
    else:
        roots = np.arange(n + 1)
    inlet = roots[np.take(lab, 0, axis=a)]
    outlet = roots[np.take(lab, -1, axis=a)]
    if inlet_mask is not None:
        inlet = inlet[np.asarray(inlet_mask, bool)]
    if outlet_mask is not None:
        outlet = outlet[np.asarray(outlet_mask, bool)]
    keep = np.intersect1d(np.unique(inlet), np.unique(outlet))
    keep = keep[keep > 0]
    if keep.size == 0:
        return np.zeros(lab.shape, bool)
    lut = np.zeros(n + 1, bool)
    lut[keep] = True
    return lut[roots][lab]


def percolating_network(conducting, axis, *, periodic: bool = False,
                        inlet_mask=None, outlet_mask=None) -> np.ndarray:
    """Boolean mask of the conducting voxels (face-connected, 6-neighbourhood) whose cluster touches
    both Dirichlet faces of ``axis`` (inlet = index 0, outlet = index n-1; restricted to the 2D
    ``inlet_mask`` / ``outlet_mask`` of those faces where given)."""
    lab, n = _components(conducting)
    return _network_from_labels(lab, n, _axis_index(axis), periodic, inlet_mask, outlet_mask)


# --------------------------------------------------------------------------- assembly kernels
@njit(cache=True)
def _row_counts(idx, axis, periodic):
    nz, ny, nx = idx.shape
    shape = (nz, ny, nx)
    n = 0
    for v in idx.ravel():
        if v >= 0:
            n += 1
    counts = np.zeros(n, np.int64)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                row = idx[k, j, i]
                if row < 0:
                    continue
                c = 1
                pos = (k, j, i)
                for d in range(3):
                    for step in (-1, 1):
                        q = pos[d] + step
                        if q < 0 or q >= shape[d]:
                            if periodic and d != axis and shape[d] > 1:
                                q = q % shape[d]
                            else:
                                continue
                        if d == 0:
                            nb = idx[q, j, i]
                        elif d == 1:
                            nb = idx[k, q, i]
                        else:
                            nb = idx[k, j, q]
                        if nb >= 0 and nb != row:
                            c += 1
                counts[row] = c
    return counts


@njit(cache=True)
def _fill(idx, sigma, coef, axis, periodic, g_in, g_out, indptr, indices, data, diag_pos):
    nz, ny, nx = idx.shape
    shape = (nz, ny, nx)
    for k in range(nz):
        for j in range(ny):
            for i in range(nx):
                row = idx[k, j, i]
                if row < 0:
                    continue
                s = sigma[k, j, i]
                p = indptr[row]
                diag = 0.0
                pos = (k, j, i)
                # neighbours in ascending index order: -z, -y, -x, self, +x, +y, +z
                for o in range(7):
                    if o == 3:
                        diag_pos[row] = p
                        p += 1
                        continue
                    d = 2 - o if o < 3 else o - 4
                    step = -1 if o < 3 else 1
                    q = pos[d] + step
                    if q < 0 or q >= shape[d]:
                        if periodic and d != axis and shape[d] > 1:
                            q = q % shape[d]
                        else:
                            continue
                    if d == 0:
                        nb = idx[q, j, i]
                        sn = sigma[q, j, i]
                    elif d == 1:
                        nb = idx[k, q, i]
                        sn = sigma[k, q, i]
                    else:
                        nb = idx[k, j, q]
                        sn = sigma[k, j, q]
                    if nb < 0 or nb == row:
                        continue
                    g = 2.0 * s * sn / (s + sn) * coef[d]
                    indices[p] = nb
                    data[p] = -g
                    diag += g
                    p += 1
                p0 = diag_pos[row]
                indices[p0] = row
                data[p0] = diag + g_in[row] + g_out[row]


def _boundary_conductances(sigma, idx, a, coef, n, face_mask, end):
    """Dirichlet conductances 2 σ A / d (S) of the face voxels at index 0 (end=0) or n-1 (end=-1)."""
    g = np.zeros(n)
    rows = np.take(idx, end, axis=a)
    sig = np.take(sigma, end, axis=a)
    sel = rows >= 0
    if face_mask is not None:
        fm = np.asarray(face_mask, bool)
        if fm.shape != rows.shape:
            raise InputError("face mask has the wrong shape", field="inlet_mask/outlet_mask",
                             expected=str(rows.shape), found=fm.shape)
        sel &= fm
    g[rows[sel]] += 2.0 * sig[sel] * coef[a]
    return g


class LinearSystem(NamedTuple):
    """The conduction system over the percolating voxels (unpacks as ``A, b, index_map, ...``)."""
    A: sp.csr_matrix             #: SPD matrix (S), int32 indices
    b: np.ndarray                #: right-hand side (A)
    index_map: np.ndarray        #: int32 (z, y, x): row of each voxel, -1 outside the system
    g_in_S: np.ndarray           #: Dirichlet conductance of each row to the inlet face (S)
    g_out_S: np.ndarray          #: Dirichlet conductance of each row to the outlet face (S)
    axis: int
    potential_in: float
    potential_out: float


def assemble(sigma, voxel_size_um, axis, *, potential_in: float = 1.0, potential_out: float = 0.0,
             periodic: bool = False, inlet_mask=None, outlet_mask=None,
             dtype=np.float64, network=None) -> LinearSystem:
    """Assemble A x = b (Kirchhoff's law per voxel) over the conducting voxels connected to both
    Dirichlet faces of ``axis`` (inlet at index 0 held at ``potential_in`` V, outlet at index n-1
    at ``potential_out`` V, each half a voxel from the face voxels' centres). Other outer faces:
    no flux, or periodic when ``periodic=True``. ``inlet_mask`` / ``outlet_mask`` (2D bool, the
    face's shape) restrict the Dirichlet contact to part of a face (e.g. an SSRM tip window).
    ``network``: precomputed boolean mask of the voxels to keep (skips the labelling).

    Row i: Σ_j G_ij (x_i − x_j) + G_in,i (x_i − V_in) + G_out,i (x_i − V_out) = 0, with
    G_ij = 2σ_iσ_j/(σ_i+σ_j)·A_face/d and G_b = 2σ_i·A_face/d (× 1e-4: S). Returns a
    :class:`LinearSystem`; CSR with int32 indices, values in ``dtype`` (float64 or float32)."""
    sigma = conductivity_array(sigma)
    voxel = _voxel(voxel_size_um)
    a = _axis_index(axis)
    coef = _coefficients(voxel)
    if network is None:
        network = percolating_network(sigma > 0, a, periodic=periodic,
                                      inlet_mask=inlet_mask, outlet_mask=outlet_mask)
    network = np.asarray(network, bool) & (sigma > 0)
    idx = np.full(sigma.shape, -1, np.int32)
    n = int(network.sum())
    idx[network] = np.arange(n, dtype=np.int32)
    g_in = _boundary_conductances(sigma, idx, a, coef, n, inlet_mask, 0)
    g_out = _boundary_conductances(sigma, idx, a, coef, n, outlet_mask, -1)
    counts = _row_counts(idx, a, bool(periodic))
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    nnz = int(indptr[-1])
    del counts
    index_dtype = np.int32 if nnz < 2**31 - 1 else np.int64
    indices = np.empty(nnz, index_dtype)
    data = np.empty(nnz, np.float64)
    diag_pos = np.empty(n, np.int64)
    _fill(idx, sigma, coef, a, bool(periodic), g_in, g_out, indptr, indices, data, diag_pos)
    del diag_pos
    if dtype != np.float64:
        data = data.astype(dtype)
    A = sp.csr_matrix((data, indices, indptr.astype(index_dtype)), shape=(n, n))
    if periodic:
        A.sum_duplicates()   # a 2-wide periodic side joins the same pair twice
        A.has_sorted_indices = False
        A.sort_indices()
    else:
        A.has_sorted_indices = True
    b = g_in * potential_in + g_out * potential_out
    return LinearSystem(A, b, idx, g_in, g_out, a, float(potential_in), float(potential_out))


# --------------------------------------------------------------------------- solver
@njit(parallel=True, cache=True)
def _csr_matvec(indptr, indices, data, diag, x, y):
    """y = A x with float64 accumulation; the stored diagonal is replaced by ``diag``."""
    for i in prange(indptr.size - 1):
        acc = diag[i] * x[i]
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            if c != i:
                acc += data[p] * x[c]
        y[i] = acc


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
    if kind in (None, "none"):
        return None
    if kind == "jacobi":
        inv = 1.0 / A.diagonal().astype(np.float64)
        return sp.linalg.LinearOperator(A.shape, matvec=lambda r: inv * r, dtype=A.dtype)
    import pyamg
    if kind == "sa":
        ml = pyamg.smoothed_aggregation_solver(
            A, symmetry="hermitian", strength="symmetric", max_coarse=500,
            improve_candidates=None)
    elif kind == "rs":
        ml = pyamg.ruge_stuben_solver(A, max_coarse=500)
    else:
        raise InputError("unknown preconditioner", field="preconditioner",
                         expected="'sa', 'rs', 'jacobi' or None", found=kind)
    M = ml.aspreconditioner(cycle="V")
    if A.dtype == np.float64:
        return M
    from scipy.sparse.linalg import LinearOperator

    def apply(r):  # float32 hierarchy inside a float64 CG
        return M @ np.asarray(r, A.dtype).ravel()
    return LinearOperator(A.shape, matvec=lambda r: apply(r).astype(np.float64), dtype=np.float64)


def solve(A, b, *, rtol: float = DEFAULT_RTOL, maxiter: int | None = None,
          preconditioner: str | None = "sa", x0=None, row_sums=None):
    """Solve the SPD system A x = b by conjugate gradients (scipy) preconditioned with one V-cycle
    of pyamg smoothed-aggregation AMG (``"sa"``), Ruge–Stüben AMG (``"rs"``), Jacobi, or nothing.
    Stops at ||b − A x|| ≤ rtol·||b||. A float32 ``A`` is applied in float64 with its diagonal
    rebuilt from ``row_sums`` (float64; g_in + g_out of the :class:`LinearSystem`).
    Returns ``(x, info)``; info: iterations,
    relative_residual (recomputed from x), converged, setup_time_s, solve_time_s."""
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


# --------------------------------------------------------------------------- matrix-free multigrid
# The operator of the percolating network in "difference form" on the full voxel grid, with the
# Dirichlet faces along the first array axis (other axes are brought there by a transpose):
#     (A x)_v = Σ_faces G_f (x_v − x_nb) + G_b,v x_v
# The face conductances are stored per axis as float32 arrays g[a] of the grid's shape: g[a][v]
# joins v and its +1 neighbour along a (the last plane is the periodic wrap face, 0 unless
# periodic). Faces that touch a voxel outside the network are 0, so such voxels have an empty row;
# they are kept at 0 (identity rows). The diagonal is always the float64 sum of the stored float32
# conductances, so every row sum is exactly the Dirichlet conductance: the float32 storage perturbs
# each conductance by ≤ 6e-8 (relative) and never creates a spurious leak to ground (a rounded
# diagonal stored on its own does: that is what made a float32 CSR matrix ~1 % off at 200³).
#
# Preconditioner: one symmetric V(2,2)-cycle (red-black Gauss–Seidel, reverse order after the
# coarse correction) on a hierarchy of 2×2×2 aggregates. The coarse operator is the Galerkin product
# P^T A P for piecewise-constant P, which is again a 7-point network (coarse face = sum of the fine
# faces it contains, coarse Dirichlet term = sum of the children's), scaled by COARSE_SCALE per
# level (unsmoothed aggregation over-estimates the coarse stiffness about twofold; Braess 1995,
# Numer. Math. 72; Notay 2010, ETNA 37). Connectivity is preserved on every level, so each coarse
# system is SPD. The coarsest level (≤ COARSEST_CELLS cells) is solved exactly (dense Cholesky).
COARSE_SCALE = 0.5
COARSEST_CELLS = 1500
#: Red-black Gauss–Seidel sweeps before and after the coarse correction: V(2,2) needs about half
#: the CG iterations of V(1,1) on porous media at a lower total cost.
SMOOTHING_SWEEPS = 2
#: Grid size (voxels) above which the multigrid path stores conductances in float32 by default.
FLOAT32_ABOVE_VOXELS = 2 ** 24
#: Levels smaller than this (cells) run their kernels on one thread: a parallel launch costs more
#: than the work there, and far more on a loaded machine.
SERIAL_BELOW_CELLS = 2 ** 16


class _serial_if_small:
    """Context manager: numba kernels on one thread while the grid has < SERIAL_BELOW_CELLS."""

    def __init__(self, cells: int):
        self.small = cells < SERIAL_BELOW_CELLS

    def __enter__(self):
        if self.small:
            import numba
            self.saved = numba.get_num_threads()
            numba.set_num_threads(1)

    def __exit__(self, *exc):
        if self.small:
            import numba
            numba.set_num_threads(self.saved)


@njit(cache=True)
def _wrap(k, n):
    km = k - 1 if k > 0 else n - 1
    kp = k + 1 if k < n - 1 else 0
    return km, kp


@njit(parallel=True, cache=True)
def _grid_faces(sigma, net, coef, wrap, gz, gy, gx):
    """float32 face conductances of the network (harmonic mean × area/length), 0 elsewhere."""
    nz, ny, nx = sigma.shape
    for k in prange(nz):
        kp = k + 1 if k < nz - 1 else 0
        for j in range(ny):
            jp = j + 1 if j < ny - 1 else 0
            for i in range(nx):
                ip = i + 1 if i < nx - 1 else 0
                gz[k, j, i] = 0.0
                gy[k, j, i] = 0.0
                gx[k, j, i] = 0.0
                if not net[k, j, i]:
                    continue
                s = np.float64(sigma[k, j, i])
                if net[kp, j, i] and (k < nz - 1 or (wrap[0] and nz > 1)):
                    t = np.float64(sigma[kp, j, i])
                    gz[k, j, i] = 2.0 * s * t / (s + t) * coef[0]
                if net[k, jp, i] and (j < ny - 1 or (wrap[1] and ny > 1)):
                    t = np.float64(sigma[k, jp, i])
                    gy[k, j, i] = 2.0 * s * t / (s + t) * coef[1]
                if net[k, j, ip] and (i < nx - 1 or (wrap[2] and nx > 1)):
                    t = np.float64(sigma[k, j, ip])
                    gx[k, j, i] = 2.0 * s * t / (s + t) * coef[2]


@njit(cache=True)
def _apply_point(i, im, ip, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br):
    """(A x) at point i of a row: the rows of x and of the faces around it."""
    v = xc[i]
    return (gkm[i] * (v - xkm[i]) + gkp[i] * (v - xkp[i]) + gjm[i] * (v - xjm[i])
            + gjp[i] * (v - xjp[i]) + gx[im] * (v - xc[im]) + gx[i] * (v - xc[ip]) + br[i] * v)


@njit(cache=True)
def _apply_row(xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br, out):
    """out[i] = (A x)_i along one row (x wraps at the row ends through gx[-1])."""
    nx = xc.size
    if nx == 1:
        out[0] = _apply_point(0, 0, 0, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br)
        return
    out[0] = _apply_point(0, nx - 1, 1, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp, gx, br)
    for i in range(1, nx - 1):
        v = xc[i]
        out[i] = (gkm[i] * (v - xkm[i]) + gkp[i] * (v - xkp[i]) + gjm[i] * (v - xjm[i])
                  + gjp[i] * (v - xjp[i]) + gx[i - 1] * (v - xc[i - 1])
                  + gx[i] * (v - xc[i + 1]) + br[i] * v)
    out[nx - 1] = _apply_point(nx - 1, nx - 2, 0, xc, xkm, xkp, xjm, xjp, gkm, gkp, gjm, gjp,
                               gx, br)


@njit(cache=True)
def _brow(k, j, nz, b_in, b_out, zero):
    if k == 0:
        if nz == 1:
            return zero  # handled by the caller (both planes on one)
        return b_in[j]
    if k == nz - 1:
        return b_out[j]
    return zero


@njit(parallel=True, cache=True, fastmath=True)
def _gmg_matvec(x, gz, gy, gx, b_in, b_out, y):
    """y = A x; returns x·y (float64)."""
    nz, ny, nx = x.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    tot = 0.0
    for k in prange(nz):
        km, kp = _wrap(k, nz)
        row = np.empty(nx)
        for j in range(ny):
            jm, jp = _wrap(j, ny)
            br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
            _apply_row(x[k, j], x[km, j], x[kp, j], x[k, jm], x[k, jp], gz[km, j], gz[k, j],
                       gy[k, jm], gy[k, j], gx[k, j], br, row)
            s = 0.0
            for i in range(nx):
                y[k, j, i] = row[i]
                s += row[i] * x[k, j, i]
            tot += s
    return tot


@njit(cache=True)
def _gs_point(i, im, ip, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br):
    a0 = gkm[i]
    a1 = gkp[i]
    a2 = gjm[i]
    a3 = gjp[i]
    a4 = gx[im]
    a5 = gx[i]
    d = np.float64(a0) + a1 + a2 + a3 + a4 + a5 + br[i]
    if d > 0.0:
        z[i] = (rhs[i] + a0 * zkm[i] + a1 * zkp[i] + a2 * zjm[i] + a3 * zjp[i] + a4 * z[im]
                + a5 * z[ip]) / d
    else:
        z[i] = 0.0


@njit(cache=True)
def _gs_row(z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br, i0, backward, tmp):
    """Gauss–Seidel on the points i0, i0+2, … of one row. The new values of all interior points
    are computed in one contiguous (vectorised) pass into ``tmp`` from the other colour's values,
    then the points of this colour are copied; the wrap-around end points go first and last so
    that the backward order is the exact reverse of the forward one."""
    nx = z.size
    last = nx - 1
    has_first = i0 == 0
    has_last = (last - i0) % 2 == 0 and last > 0
    lo = i0 if i0 > 0 else 2
    if not backward and has_first:
        _gs_point(0, last, 1 if nx > 1 else 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp,
                  gx, br)
    if backward and has_last:
        _gs_point(last, last - 1, 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br)
    if nx > 2:
        for i in range(1, last):
            a0 = gkm[i]
            a1 = gkp[i]
            a2 = gjm[i]
            a3 = gjp[i]
            a4 = gx[i - 1]
            a5 = gx[i]
            d = a0 + a1 + a2 + a3 + a4 + a5 + br[i]
            num = (rhs[i] + a0 * zkm[i] + a1 * zkp[i] + a2 * zjm[i] + a3 * zjp[i]
                   + a4 * z[i - 1] + a5 * z[i + 1])
            tmp[i] = num / d if d > 0 else 0.0
        for i in range(lo, last, 2):
            z[i] = tmp[i]
    if not backward and has_last:
        _gs_point(last, last - 1, 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp, gx, br)
    if backward and has_first:
        _gs_point(0, last, 1 if nx > 1 else 0, z, zkm, zkp, zjm, zjp, rhs, gkm, gkp, gjm, gjp,
                  gx, br)


@njit(cache=True)
def _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, k, color, backward):
    nz, ny, nx = z.shape
    km, kp = _wrap(k, nz)
    tmp = np.empty(nx, z.dtype)
    for jj in range(ny):
        j = ny - 1 - jj if backward else jj
        jm, jp = _wrap(j, ny)
        br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
        _gs_row(z[k, j], z[km, j], z[kp, j], z[k, jm], z[k, jp], rhs[k, j], gz[km, j], gz[k, j],
                gy[k, jm], gy[k, j], gx[k, j], br, (color + k + j) % 2, backward, tmp)


@njit(parallel=True, cache=True, fastmath=True)
def _gs_color(z, rhs, gz, gy, gx, b_in, b_out, color, backward):
    """Gauss–Seidel update of the voxels with (k + j + i) % 2 == color. Planes 0..nz-2 of one
    colour are independent (parallel); the last plane goes last (forward) or first (backward), so
    the backward sweep is the exact adjoint of the forward one (symmetric V-cycle)."""
    nz, ny, nx = z.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    if backward:
        _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, nz - 1, color, True)
    for k in prange(nz - 1):
        _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, k, color, backward)
    if not backward and nz > 1:
        _gs_plane(z, rhs, gz, gy, gx, b_in, b_out, both, zero, nz - 1, color, False)


@njit(parallel=True, cache=True, fastmath=True)
def _residual_restrict(z, rhs, gz, gy, gx, b_in, b_out, rc):
    """rc[K, J, I] = Σ over the 2×2×2 children of (rhs − A z)."""
    nz, ny, nx = z.shape
    cz, cy, cx = rc.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    for kc in prange(cz):
        row = np.empty(nx)
        acc = np.zeros((cy, cx))
        for k in range(2 * kc, min(2 * kc + 2, nz)):
            km, kp = _wrap(k, nz)
            for j in range(ny):
                jm, jp = _wrap(j, ny)
                br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
                _apply_row(z[k, j], z[km, j], z[kp, j], z[k, jm], z[k, jp], gz[km, j], gz[k, j],
                           gy[k, jm], gy[k, j], gx[k, j], br, row)
                r = rhs[k, j]
                a = acc[j // 2]
                for i in range(nx):
                    a[i // 2] += r[i] - row[i]
        for jc in range(cy):
            for ic in range(cx):
                rc[kc, jc, ic] = acc[jc, ic]


@njit(parallel=True, cache=True)
def _prolong_add(z, zc):
    nz, ny, nx = z.shape
    for k in prange(nz):
        for j in range(ny):
            zr = z[k, j]
            cr = zc[k // 2, j // 2]
            for i in range(nx):
                zr[i] += cr[i // 2]


@njit(parallel=True, cache=True)
def _coarse_faces(gz, gy, gx, scale, cgz, cgy, cgx):
    """Galerkin coarse faces for piecewise-constant P (sum of the fine faces crossing), × scale."""
    nz, ny, nx = gz.shape
    cz, cy, cx = cgz.shape
    for kc in prange(cz):
        for jc in range(cy):
            for ic in range(cx):
                sz = 0.0
                sy = 0.0
                sx = 0.0
                # the fine plane that crosses from coarse c to c+1 (mod n; the wrap face if odd)
                kz = min(2 * kc + 1, nz - 1)
                jy = min(2 * jc + 1, ny - 1)
                ix = min(2 * ic + 1, nx - 1)
                for j in range(2 * jc, min(2 * jc + 2, ny)):
                    for i in range(2 * ic, min(2 * ic + 2, nx)):
                        sz += gz[kz, j, i]
                for k in range(2 * kc, min(2 * kc + 2, nz)):
                    for i in range(2 * ic, min(2 * ic + 2, nx)):
                        sy += gy[k, jy, i]
                    for j in range(2 * jc, min(2 * jc + 2, ny)):
                        sx += gx[k, j, ix]
                cgz[kc, jc, ic] = sz * scale if cz > 1 else 0.0
                cgy[kc, jc, ic] = sy * scale if cy > 1 else 0.0
                cgx[kc, jc, ic] = sx * scale if cx > 1 else 0.0


def _coarse_plane(p: np.ndarray, scale: float) -> np.ndarray:
    """Sum of 2×2 blocks of a Dirichlet plane, × scale."""
    n0, n1 = p.shape
    q = np.zeros(((n0 + 1) // 2 * 2, (n1 + 1) // 2 * 2))
    q[:n0, :n1] = p
    return (q.reshape(q.shape[0] // 2, 2, q.shape[1] // 2, 2).sum((1, 3)) * scale).astype(p.dtype)


def _dense_operator(gz, gy, gx, b_in, b_out) -> np.ndarray:
    """A level's matrix as a dense float64 array (identity rows for empty rows)."""
    shape = gz.shape
    n = gz.size
    lin = np.arange(n).reshape(shape)
    A = np.zeros((n, n))
    diag = np.zeros(n)
    for d, g in enumerate((gz, gy, gx)):
        v = g.astype(np.float64).ravel()
        me, nb = lin.ravel(), np.roll(lin, -1, axis=d).ravel()
        np.add.at(A, (me, nb), -v)
        np.add.at(A, (nb, me), -v)
        np.add.at(diag, me, v)
        np.add.at(diag, nb, v)
    bplane = np.zeros(shape)
    bplane[0] += b_in
    bplane[-1] += b_out
    diag += bplane.ravel()
    A[np.arange(n), np.arange(n)] = diag
    empty = diag <= 0
    A[empty, :] = 0.0
    A[:, empty] = 0.0
    A[empty, empty] = 1.0
    return A


class _Level:
    __slots__ = ("g", "b_in", "b_out", "z", "rhs", "shape")

    def __init__(self, g, b_in, b_out):
        self.g = g
        self.b_in, self.b_out = b_in, b_out
        self.shape = g[0].shape
        self.z = None
        self.rhs = None


class GeometricMultigrid:
    """Matrix-free conduction operator of one network on the voxel grid, Dirichlet faces at the
    first and last plane of the first array axis, and its multigrid V-cycle (see the section
    comment above). ``faces``: (g0, g1, g2) float32 arrays of the grid shape (0 across any face
    that leaves the network); ``b_in``/``b_out``: float32 Dirichlet conductances (S) of the inlet
    and outlet planes (0 outside the network)."""

    def __init__(self, faces, b_in, b_out, *, coarse_scale: float = COARSE_SCALE,
                 coarsest_cells: int = COARSEST_CELLS, nu: int = SMOOTHING_SWEEPS):
        self.nu = int(nu)
        dt = faces[0].dtype
        self.levels = [_Level(tuple(faces), np.ascontiguousarray(b_in, dt),
                              np.ascontiguousarray(b_out, dt))]
        while self.levels[-1].g[0].size > coarsest_cells:
            f = self.levels[-1]
            cshape = tuple((s + 1) // 2 for s in f.shape)
            cg = tuple(np.empty(cshape, dt) for _ in range(3))
            _coarse_faces(*f.g, coarse_scale, *cg)
            c = _Level(cg, _coarse_plane(f.b_in, coarse_scale), _coarse_plane(f.b_out, coarse_scale))
            c.z = np.zeros(cshape, np.float32)
            c.rhs = np.zeros(cshape)
            self.levels.append(c)
        if len(self.levels) > 1:
            last = self.levels[-1]
            self._chol = np.linalg.cholesky(_dense_operator(*last.g, last.b_in, last.b_out))

    def matvec(self, x, y) -> float:
        """y = A x (float64); returns x·Ax."""
        f = self.levels[0]
        return _gmg_matvec(x, *f.g, f.b_in, f.b_out, y)

    def vcycle(self, r, z) -> None:
        """z ≈ A⁻¹ r by one symmetric multigrid cycle (z is overwritten)."""
        self._cycle(0, r, z)

    def _cycle(self, l, rhs, z):
        with _serial_if_small(self.levels[l].g[0].size):
            self._cycle_level(l, rhs, z)

    def _cycle_level(self, l, rhs, z):
        lev = self.levels[l]
        if l == len(self.levels) - 1 and l > 0:
            from scipy.linalg import cho_solve
            z[...] = cho_solve((self._chol, True), rhs.ravel().astype(np.float64)).reshape(z.shape)
            return
        z[...] = 0
        for _ in range(self.nu):
            _gs_color(z, rhs, *lev.g, lev.b_in, lev.b_out, 0, False)
            _gs_color(z, rhs, *lev.g, lev.b_in, lev.b_out, 1, False)
        if l + 1 < len(self.levels):
            c = self.levels[l + 1]
            _residual_restrict(z, rhs, *lev.g, lev.b_in, lev.b_out, c.rhs)
            self._cycle(l + 1, c.rhs, c.z)
            _prolong_add(z, c.z)
        for _ in range(self.nu):
            _gs_color(z, rhs, *lev.g, lev.b_in, lev.b_out, 1, True)
            _gs_color(z, rhs, *lev.g, lev.b_in, lev.b_out, 0, True)


@njit(parallel=True, cache=True, fastmath=True)
def _cg_pap(p, gz, gy, gx, b_in, b_out):
    """p·A p (float64) without storing A p."""
    nz, ny, nx = p.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    tot = 0.0
    for k in prange(nz):
        km, kp = _wrap(k, nz)
        row = np.empty(nx)
        for j in range(ny):
            jm, jp = _wrap(j, ny)
            br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
            _apply_row(p[k, j], p[km, j], p[kp, j], p[k, jm], p[k, jp], gz[km, j], gz[k, j],
                       gy[k, jm], gy[k, j], gx[k, j], br, row)
            s = 0.0
            pr = p[k, j]
            for i in range(nx):
                s += row[i] * pr[i]
            tot += s
    return tot


@njit(parallel=True, cache=True, fastmath=True)
def _cg_step(x, r, p, gz, gy, gx, b_in, b_out, alpha):
    """x += α p, r −= α A p (A p recomputed row by row); returns r·r."""
    nz, ny, nx = p.shape
    zero = np.zeros(nx, b_in.dtype)
    both = b_in + b_out
    tot = 0.0
    for k in prange(nz):
        km, kp = _wrap(k, nz)
        row = np.empty(nx)
        for j in range(ny):
            jm, jp = _wrap(j, ny)
            br = both[j] if nz == 1 else _brow(k, j, nz, b_in, b_out, zero)
            _apply_row(p[k, j], p[km, j], p[kp, j], p[k, jm], p[k, jp], gz[km, j], gz[k, j],
                       gy[k, jm], gy[k, j], gx[k, j], br, row)
            s = 0.0
            xr = x[k, j]
            rr = r[k, j]
            pr = p[k, j]
            for i in range(nx):
                xr[i] += alpha * pr[i]
                v = rr[i] - alpha * row[i]
                rr[i] = v
                s += v * v
            tot += s
    return tot


@njit(parallel=True, cache=True, fastmath=True)
def _cg_dot(u, v):
    nz, ny, nx = u.shape
    tot = 0.0
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                tot += u[k, j, i] * np.float64(v[k, j, i])
    return tot


@njit(parallel=True, cache=True, fastmath=True)
def _cg_update_p(p, z, beta):
    nz, ny, nx = p.shape
    for k in prange(nz):
        for j in range(ny):
            for i in range(nx):
                p[k, j, i] = z[k, j, i] + beta * p[k, j, i]


class ClusterDeflation:
    """Deflation space of the multigrid-CG: one piecewise-constant vector per voxel cluster
    (``labels``: int grid, 0 = none; typically the face-connected clusters of the
    high-conductivity phase). With contrasts of 1e6–1e9 (SSRM: CAM in SE) each such cluster is
    nearly an equipotential whose level the smoother and the aggregation coarse grid barely move,
    so CG stalls; deflating them (E = Zᵀ A Z, k × k, solved exactly) removes those modes
    (deflated PCG: Saad, Yeung, Erhel, Guyomarc'h 2000, SIAM J. Sci. Comput. 21, 1909; Vuik,
    Segal, Meijerink 1999, J. Comput. Phys. 152, 385, for layers of extreme contrast).
    Only the faces between different clusters enter Zᵀ A z, so a coarse step costs a gather
    over cluster boundaries and a scatter over the cluster voxels."""

    def __init__(self, mg: GeometricMultigrid, labels):
        f = mg.levels[0]
        lab = np.asarray(labels)
        if lab.shape != f.shape:
            raise ValueError(f"deflation labels have shape {lab.shape}, the grid {f.shape}")
        present = np.zeros(int(lab.max(initial=0)) + 1, bool)   # relabel 1..k in order
        present[lab.ravel()] = True
        present[0] = False
        lab = (np.cumsum(present) * present).astype(np.int32)[lab]
        flat = lab.ravel()
        self.members = np.flatnonzero(flat)
        self.member_label = flat[self.members]
        k = int(flat.max()) if flat.size else 0
        self.k = k
        strides = np.array(lab.strides) // lab.itemsize
        p_idx, q_idx, g_all = [], [], []
        for d, g in enumerate(f.g):      # face d of voxel p joins p and its + neighbour q
            cross = (lab != np.roll(lab, -1, axis=d)) & (g > 0)
            p = np.flatnonzero(cross)
            last = (p // strides[d]) % f.shape[d] == f.shape[d] - 1    # a periodic wrap face
            q = p + strides[d] - last * (f.shape[d] * strides[d])
            p_idx.append(p)
            q_idx.append(q)
            g_all.append(g.ravel()[p].astype(np.float64))
        self.p = np.concatenate(p_idx)
        self.q = np.concatenate(q_idx)
        self.g = np.concatenate(g_all)
        self.lp, self.lq = flat[self.p], flat[self.q]
        # Dirichlet terms of cluster voxels on the first / last plane
        b = np.zeros(f.shape)
        b[0] += f.b_in
        b[-1] += f.b_out
        dir_idx = np.flatnonzero((flat > 0) & (b.ravel() > 0))
        self.dir_idx, self.dir_b, self.dir_lab = dir_idx, b.ravel()[dir_idx], flat[dir_idx]
        # E = Zᵀ A Z: sparse (a cluster couples to the clusters it touches), factorised once
        rows = np.concatenate([self.lp, self.lq, self.lp, self.lq, self.dir_lab])
        cols = np.concatenate([self.lp, self.lq, self.lq, self.lp, self.dir_lab])
        vals = np.concatenate([self.g, self.g, -self.g, -self.g, self.dir_b])
        E = sp.csc_matrix((vals, (rows, cols)), shape=(k + 1, k + 1))[1:, 1:]
        dead = E.diagonal() <= 0      # a cluster with no conductance out of it: not deflated
        E = (E + sp.diags(dead.astype(np.float64))).tocsc()
        self._coarse_solve = spla.factorized(E) if k else None

    def coarse_of_az(self, z) -> np.ndarray:
        """μ = E⁻¹ Zᵀ A z (length k + 1, μ[0] = 0)."""
        zf = z.ravel()
        t = self.g * (zf[self.p].astype(np.float64) - zf[self.q])
        n = self.k + 1
        return self._solve_E(np.bincount(self.lp, t, n) - np.bincount(self.lq, t, n)
                             + np.bincount(self.dir_lab, self.dir_b * zf[self.dir_idx], n))

    def coarse_of(self, r) -> np.ndarray:
        """μ = E⁻¹ Zᵀ r (length k + 1, μ[0] = 0)."""
        return self._solve_E(np.bincount(self.member_label, r.ravel()[self.members], self.k + 1))

    def _solve_E(self, s) -> np.ndarray:
        """E⁻¹ s for the cluster sums s (entry 0, outside every cluster, ignored and left 0)."""
        mu = np.zeros(self.k + 1)
        mu[1:] = self._coarse_solve(s[1:])
        return mu

    def add(self, x, mu, sign: float = 1.0) -> None:
        """x += sign · Z μ (in place)."""
        xf = x.reshape(-1)
        xf[self.members] += (sign * mu[self.member_label]).astype(x.dtype)


def gmg_solve(mg: GeometricMultigrid, potential_in: float, potential_out: float, x, *,
              rtol: float = DEFAULT_RTOL, maxiter: int | None = None, current_in=None,
              deflation: ClusterDeflation | None = None):
    """Conjugate gradients (float64 vectors and sums) preconditioned by one V-cycle of ``mg``
    (float32 levels) for the Dirichlet problem with the inlet plane (first plane of axis 0) at
    ``potential_in`` and the outlet plane at ``potential_out`` (V); ``current_in`` (A, 2D, optional)
    is injected into the voxels of the first plane (a current source: the SSRM probes). ``x``:
    float64 grid array, the initial guess (0 outside the network), overwritten by the solution.
    ``deflation``: a :class:`ClusterDeflation` of this operator (deflated CG, Saad et al. 2000).
    Stops at ||b − A x|| ≤ rtol·||b||. Returns info: iterations, relative_residual (recomputed),
    converged, solve_time_s."""
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


# --------------------------------------------------------------------------- effective conductivity
def _linear_guess(system: LinearSystem) -> np.ndarray:
    """Initial guess: the potential falling linearly along the axis."""
    a = system.axis
    n_axis = system.index_map.shape[a]
    pos = np.nonzero(system.index_map >= 0)[a]  # C order = row order
    t = (pos + 0.5) / n_axis
    return system.potential_in + (system.potential_out - system.potential_in) * t


def _face_currents(potential: np.ndarray, sigma: np.ndarray, voxel, system: LinearSystem):
    """Current (A) through every inner face along each axis, positive towards increasing index,
    and through the two Dirichlet faces, from the full potential field (NaN outside)."""
    gz, gy, gx = face_conductances(sigma, voxel)
    phi = np.nan_to_num(potential, nan=0.0)
    on = system.index_map >= 0
    currents = []
    for a, g in enumerate((gz, gy, gx)):
        lo = [slice(None)] * 3
        lo[a] = slice(0, -1)
        hi = [slice(None)] * 3
        hi[a] = slice(1, None)
        both = on[tuple(lo)] & on[tuple(hi)]
        currents.append(np.where(both, g * (phi[tuple(lo)] - phi[tuple(hi)]), 0.0))
    return currents


def _sigma_any(sigma) -> np.ndarray:
    """Validated C-contiguous conductivity field in its own numeric dtype (no float64 copy:
    bool → uint8 view, float32/uint8 stay as they are)."""
    sigma = np.asarray(sigma)
    if sigma.ndim != 3 or min(sigma.shape) < 1:
        raise InputError("conductivity field must be a non-empty 3D array (z, y, x)", field="sigma",
                         expected="3 dimensions", found=sigma.shape)
    if sigma.dtype.kind not in "biuf":
        raise InputError("conductivity field must be numeric", field="sigma",
                         expected="S cm⁻¹ as numbers", found=str(sigma.dtype))
    sigma = np.ascontiguousarray(sigma)
    if sigma.dtype == bool:
        sigma = sigma.view(np.uint8)
    if sigma.dtype.kind == "f" and not np.all(np.isfinite(sigma)):
        raise InputError("conductivities must be finite and >= 0", field="sigma",
                         expected="σ >= 0 S cm⁻¹", found="NaN or inf")
    if sigma.dtype.kind in "if" and sigma.min() < 0:
        raise InputError("conductivities must be finite and >= 0", field="sigma",
                         expected="σ >= 0 S cm⁻¹", found=f"min {sigma.min()}")
    return sigma


def grid_operator(sigma, voxel_size_um, network, *, periodic: bool = False, inlet_mask=None,
                  outlet_mask=None, coarse_scale: float = COARSE_SCALE,
                  dtype=np.float32) -> GeometricMultigrid:
    """The matrix-free operator and multigrid hierarchy (:class:`GeometricMultigrid`) of the
    voxels in ``network`` (boolean mask), Dirichlet faces at the first and last plane of the first
    array axis (transpose the field for another axis); same conductances as :func:`assemble`,
    stored in ``dtype`` (float32: 6 bytes less per voxel and σ_eff within ~1e-7). ``periodic``: the other two axes wrap around. Inlet/outlet masks (2D)
    restrict the Dirichlet contact."""
    sigma = _sigma_any(sigma)
    coef = _coefficients(_voxel(voxel_size_um))
    net = np.ascontiguousarray(network, dtype=bool)
    wrap = np.array([False, bool(periodic), bool(periodic)])
    faces = tuple(np.empty(sigma.shape, dtype) for _ in range(3))
    _grid_faces(sigma, net, coef, wrap, *faces)
    planes = []
    for end, mask in ((0, inlet_mask), (-1, outlet_mask)):
        on = net[end]
        if mask is not None:
            fm = np.asarray(mask, bool)
            if fm.shape != on.shape:
                raise InputError("face mask has the wrong shape", field="inlet_mask/outlet_mask",
                                 expected=str(on.shape), found=fm.shape)
            on = on & fm
        planes.append(np.where(on, 2.0 * sigma[end].astype(np.float64) * coef[0],
                               0.0).astype(dtype))
    return GeometricMultigrid(faces, planes[0], planes[1], coarse_scale=coarse_scale)


def _to_front(arr, a: int):
    return arr if a == 0 else np.ascontiguousarray(np.moveaxis(arr, a, 0))


def effective_conductivity_gmg(sigma, voxel, a, net, *, rtol, maxiter, periodic, potential_in,
                   potential_out, dtype, inlet_mask=None, outlet_mask=None,
                   deflation_labels=None):
    """Matrix-free multigrid-CG along axis ``a``: (potential grid, I_in, I_out, info).
    ``deflation_labels``: voxel clusters deflated in the CG (:class:`ClusterDeflation`)."""
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


def effective_conductivity(sigma, voxel_size_um, axis, *, rtol: float = DEFAULT_RTOL,
                           return_field: bool = False, preconditioner: str | None = "gmg",
                           periodic: bool = False, dtype=None, maxiter: int | None = None,
                           potential_in: float = 1.0, potential_out: float = 0.0,
                           network=None, _labels=None) -> dict:
    """Effective conductivity (S cm⁻¹) of the field ``sigma`` (S cm⁻¹) along ``axis``:
    σ_eff = I · L / (A_cross · ΔV), with I the current (A) through the outlet face, L the sample
    length along the axis and A_cross its cross-section (µm → cm), ΔV = V_in − V_out.

    ``preconditioner="gmg"`` (default): matrix-free CG on the voxel grid with a geometric
    multigrid V(2,2)-cycle, float64 solution and residual; conductances in ``dtype`` (None:
    float64 up to FLOAT32_ABOVE_VOXELS voxels, float32 above, ≈ 38 bytes per voxel; σ_eff moves
    by ~1e-7). ``"sa"``, ``"rs"``, ``"jacobi"`` or None: the assembled CSR matrix (values in
    ``dtype``, None: float64) with scipy CG and that preconditioner (pyamg for sa/rs).
    ``network``: precomputed boolean mask of the percolating network (skips the labelling).

    Returns sigma_eff_S_cm, percolating, network_fraction (fraction of the σ > 0 voxels in the
    percolating network), current_in_A, current_out_A, current_imbalance_rel
    (|I_in − I_out| / |I_out|), iterations, relative_residual, setup_time_s (preconditioner),
    solve_time_s, assemble_time_s (network labelling, and the CSR assembly), n_unknowns. A field
    that does not connect the two faces gives σ_eff = 0, percolating False. With
    ``return_field=True`` also ``potential_V`` (NaN outside the network) and
    ``current_density_A_cm2`` = (jz, jy, jx) at voxel centres (mean of the two face currents over
    the face area)."""
    t0 = time.perf_counter()
    gmg = preconditioner == "gmg"
    sigma = _sigma_any(sigma) if gmg else conductivity_array(sigma)
    voxel = _voxel(voxel_size_um)
    a = _axis_index(axis)
    if network is None:
        lab, ncomp = _labels if _labels is not None else _components(sigma > 0)
        network = _network_from_labels(lab, ncomp, a, periodic)
        del lab
    net = np.asarray(network, bool) & (sigma > 0)
    n = int(np.count_nonzero(net))
    system = None
    if not gmg:
        system = assemble(sigma, voxel, a, potential_in=potential_in,
                          potential_out=potential_out, periodic=periodic,
                          dtype=np.float64 if dtype is None else dtype, network=net)
    t1 = time.perf_counter()
    n_conducting = int(np.count_nonzero(sigma))
    dv = potential_in - potential_out
    length_cm = sigma.shape[a] * voxel[a] * UM_TO_CM
    others = [d for d in range(3) if d != a]
    area_cm2 = math.prod(sigma.shape[d] * voxel[d] for d in others) * UM_TO_CM ** 2
    out = {"axis": AXES[a], "percolating": n > 0, "n_unknowns": n,
           "network_fraction": n / n_conducting if n_conducting else 0.0,
           "assemble_time_s": t1 - t0}
    potential = None
    if n == 0:
        out.update(sigma_eff_S_cm=0.0, current_in_A=0.0, current_out_A=0.0,
                   current_imbalance_rel=0.0, iterations=0, relative_residual=0.0,
                   converged=True, setup_time_s=0.0, solve_time_s=0.0)
        if return_field:
            potential = np.full(sigma.shape, np.nan)
    else:
        if gmg:
            if dtype is None:
                dtype = np.float32 if sigma.size > FLOAT32_ABOVE_VOXELS else np.float64
            x, i_in, i_out, info = effective_conductivity_gmg(
                sigma, voxel, a, net, rtol=rtol, maxiter=maxiter, periodic=periodic,
                potential_in=potential_in, potential_out=potential_out, dtype=dtype)
            if return_field:
                potential = np.where(net, x, np.nan)
            del x
        else:
            x, info = solve(system.A, system.b, rtol=rtol, preconditioner=preconditioner,
                            x0=_linear_guess(system), maxiter=maxiter,
                            row_sums=system.g_in_S + system.g_out_S)
            i_in = float(np.dot(system.g_in_S, potential_in - x))
            i_out = float(np.dot(system.g_out_S, x - potential_out))
            if return_field:
                potential = np.full(sigma.shape, np.nan)
                potential[system.index_map >= 0] = x
        out.update(sigma_eff_S_cm=i_out * length_cm / (area_cm2 * dv),
                   current_in_A=i_in, current_out_A=i_out,
                   current_imbalance_rel=abs(i_in - i_out) / abs(i_out) if i_out else 0.0, **info)
    if return_field:
        out["potential_V"] = potential
        on = _Network(net, a, float(potential_in), float(potential_out))
        out["current_density_A_cm2"] = _current_density(potential, conductivity_array(sigma), voxel, on)
    return out


def effective_conductivities(sigma, voxel_size_um, axes=AXES, *, periodic: bool = False,
                             **kw) -> dict:
    """:func:`effective_conductivity` along several axes, labelling the conducting clusters once.
    Returns {axis name: result}."""
    sigma = _sigma_any(sigma) if kw.get("preconditioner", "gmg") == "gmg" else conductivity_array(sigma)
    labels = _components(sigma > 0)
    return {AXES[_axis_index(ax)]: effective_conductivity(sigma, voxel_size_um, ax,
                                                          periodic=periodic, _labels=labels, **kw)
            for ax in axes}


class _Network(NamedTuple):
    """What the current-density helpers need of a system: the network and the boundary data."""
    mask: np.ndarray
    axis: int
    potential_in: float
    potential_out: float

    @property
    def index_map(self):
        return np.where(self.mask, 0, -1)


def _current_density(potential, sigma, voxel, system: LinearSystem):
    """(jz, jy, jx) in A cm⁻² at voxel centres: mean of the currents through a voxel's two faces
    along each axis (Dirichlet faces included) over the face area."""
    face = _face_currents(potential, sigma, voxel, system)
    dz, dy, dx = voxel
    areas_cm2 = np.array([dy * dx, dz * dx, dz * dy]) * UM_TO_CM ** 2
    on = system.index_map >= 0
    phi = np.nan_to_num(potential, nan=0.0)
    out = []
    for a in range(3):
        shape = list(sigma.shape)
        shape[a] += 1
        faces = np.zeros(shape)
        inner = [slice(None)] * 3
        inner[a] = slice(1, -1)
        faces[tuple(inner)] = face[a]
        if a == system.axis:
            g_b = 2.0 * sigma * _coefficients(voxel)[a]
            first = [slice(None)] * 3
            first[a] = slice(0, 1)
            last = [slice(None)] * 3
            last[a] = slice(-1, None)
            on0, onn = on[tuple(first)], on[tuple(last)]
            faces[tuple(first)] = np.where(on0, g_b[tuple(first)] *
                                           (system.potential_in - phi[tuple(first)]), 0.0)
            faces[tuple(last)] = np.where(onn, g_b[tuple(last)] *
                                          (phi[tuple(last)] - system.potential_out), 0.0)
        lo = [slice(None)] * 3
        lo[a] = slice(0, -1)
        hi = [slice(None)] * 3
        hi[a] = slice(1, None)
        out.append(0.5 * (faces[tuple(lo)] + faces[tuple(hi)]) / areas_cm2[a])
    return tuple(out)
