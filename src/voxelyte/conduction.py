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

The system is solved with conjugate gradients preconditioned by algebraic multigrid (pyamg
smoothed aggregation by default).
"""
from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy import ndimage

from voxelyte.descriptors._common import AXES, _axis_index, _voxel
from voxelyte.errors import InputError

#: cm per µm: G [S] = σ [S cm⁻¹] · area [µm²] / length [µm] · UM_TO_CM.
UM_TO_CM = 1e-4
#: Default relative residual ||b - A x|| / ||b|| of the CG solve. With smoothed-aggregation
#: AMG-CG it puts τ within 1e-5 (relative) of a solve converged to 1e-12 on random porous media
#: (tests/test_conduction.py checks 0.1 %).
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


def _sigma_array(sigma) -> np.ndarray:
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
    sigma = _sigma_array(sigma)
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


def percolating_network(conducting, axis, *, periodic: bool = False,
                        inlet_mask=None, outlet_mask=None) -> np.ndarray:
    """Boolean mask of the conducting voxels (face-connected, 6-neighbourhood) whose cluster touches
    both Dirichlet faces of ``axis`` (inlet = index 0, outlet = index n-1; restricted to the 2D
    ``inlet_mask`` / ``outlet_mask`` of those faces where given)."""
    conducting = np.asarray(conducting, dtype=bool)
    a = _axis_index(axis)
    lab, n = ndimage.label(conducting)  # default structure: face connectivity
    if n == 0:
        return np.zeros(conducting.shape, bool)
    if periodic:
        roots = _merge_periodic(lab, n, [d for d in range(3) if d != a])
        lab = roots[lab]
    inlet = np.take(lab, 0, axis=a)
    outlet = np.take(lab, -1, axis=a)
    if inlet_mask is not None:
        inlet = inlet[np.asarray(inlet_mask, bool)]
    if outlet_mask is not None:
        outlet = outlet[np.asarray(outlet_mask, bool)]
    keep = np.intersect1d(np.unique(inlet), np.unique(outlet))
    keep = keep[keep > 0]
    if keep.size == 0:
        return np.zeros(conducting.shape, bool)
    lut = np.zeros(int(lab.max()) + 1, bool)
    lut[keep] = True
    return lut[lab]


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
    sigma = _sigma_array(sigma)
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
@njit(cache=True)
def _csr_matvec(indptr, indices, data, x, y):
    for i in range(indptr.size - 1):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * x[indices[p]]
        y[i] = acc


def _as_float64_operator(A):
    """A float32 CSR matrix as a float64 LinearOperator (float64 accumulation, no copy of A)."""
    from scipy.sparse.linalg import LinearOperator

    def matvec(x):
        y = np.empty(A.shape[0])
        _csr_matvec(A.indptr, A.indices, A.data, np.ascontiguousarray(x, np.float64).ravel(), y)
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
          preconditioner: str | None = "sa", x0=None):
    """Solve the SPD system A x = b by conjugate gradients (scipy) preconditioned with one V-cycle
    of pyamg smoothed-aggregation AMG (``"sa"``), Ruge–Stüben AMG (``"rs"``), Jacobi, or nothing.
    Stops at ||b − A x|| ≤ rtol·||b||. Returns ``(x, info)``; info: iterations,
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

    op = A if A.dtype == np.float64 else _as_float64_operator(A)
    x, status = cg(op, b, x0=x0, rtol=rtol, atol=0.0, maxiter=maxiter, M=M, callback=count)
    t2 = time.perf_counter()
    bnorm = float(np.linalg.norm(b))
    res = float(np.linalg.norm(b - op @ x)) / bnorm if bnorm > 0 else 0.0
    return x, {"iterations": iterations[0], "relative_residual": res,
               "converged": bool(status == 0), "setup_time_s": t1 - t0, "solve_time_s": t2 - t1}


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


def effective_conductivity(sigma, voxel_size_um, axis, *, rtol: float = DEFAULT_RTOL,
                           return_field: bool = False, preconditioner: str | None = "sa",
                           periodic: bool = False, dtype=np.float64, maxiter: int | None = None,
                           potential_in: float = 1.0, potential_out: float = 0.0) -> dict:
    """Effective conductivity (S cm⁻¹) of the field ``sigma`` (S cm⁻¹) along ``axis``:
    σ_eff = I · L / (A_cross · ΔV), with I the current (A) through the outlet face, L the sample
    length along the axis and A_cross its cross-section (µm → cm), ΔV = V_in − V_out.

    Returns sigma_eff_S_cm, percolating, network_fraction (fraction of the σ > 0 voxels in the
    percolating network), current_in_A, current_out_A, current_imbalance_rel
    (|I_in − I_out| / |I_out|), iterations, relative_residual, setup_time_s (AMG), solve_time_s,
    assemble_time_s, n_unknowns. A field that does not connect the two faces gives
    σ_eff = 0, percolating False. With ``return_field=True`` also ``potential_V`` (NaN outside the
    network) and ``current_density_A_cm2`` = (jz, jy, jx) at voxel centres (mean of the two face
    currents over the face area)."""
    t0 = time.perf_counter()
    sigma = _sigma_array(sigma)
    voxel = _voxel(voxel_size_um)
    a = _axis_index(axis)
    system = assemble(sigma, voxel, a, potential_in=potential_in, potential_out=potential_out,
                      periodic=periodic, dtype=dtype)
    t1 = time.perf_counter()
    n = system.b.size
    n_conducting = int(np.count_nonzero(sigma > 0))
    dv = potential_in - potential_out
    length_cm = sigma.shape[a] * voxel[a] * UM_TO_CM
    others = [d for d in range(3) if d != a]
    area_cm2 = math.prod(sigma.shape[d] * voxel[d] for d in others) * UM_TO_CM ** 2
    out = {"axis": AXES[a], "percolating": n > 0, "n_unknowns": n,
           "network_fraction": n / n_conducting if n_conducting else 0.0,
           "assemble_time_s": t1 - t0}
    if n == 0:
        out.update(sigma_eff_S_cm=0.0, current_in_A=0.0, current_out_A=0.0,
                   current_imbalance_rel=0.0, iterations=0, relative_residual=0.0,
                   converged=True, setup_time_s=0.0, solve_time_s=0.0)
        x = np.zeros(0)
    else:
        x, info = solve(system.A, system.b, rtol=rtol, preconditioner=preconditioner,
                        x0=_linear_guess(system), maxiter=maxiter)
        i_in = float(np.dot(system.g_in_S, potential_in - x))
        i_out = float(np.dot(system.g_out_S, x - potential_out))
        out.update(sigma_eff_S_cm=i_out * length_cm / (area_cm2 * dv),
                   current_in_A=i_in, current_out_A=i_out,
                   current_imbalance_rel=abs(i_in - i_out) / abs(i_out) if i_out else 0.0, **info)
    if return_field:
        potential = np.full(sigma.shape, np.nan)
        if n:
            potential[system.index_map >= 0] = x
        out["potential_V"] = potential
        out["current_density_A_cm2"] = _current_density(potential, sigma, voxel, system)
    return out


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
