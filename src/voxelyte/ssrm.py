"""Simulated scanning spreading resistance microscopy (SSRM) on a voxel conductivity field.

After the SSRM simulator of Gamo et al. (SI, "Verification of the SSRM simulator"): the scanned
face of the volume is insulating except a conductive window under the tip (w × w voxels, or the
voxels whose centres lie in a disc of radius a µm); the opposite face is the counter electrode at
0 V. The conduction operator is the finite-volume one of :mod:`voxelyte.conduction` (harmonic-mean
face conductances G_ij = 2σ_iσ_j/(σ_i+σ_j)·A/d, Dirichlet half voxel G_b = 2σ_i·A/d).

Current injection. Let A be the conduction matrix with the counter electrode only (no tip). A tip
node at potential V joined to each window voxel k through G_b,k (plus a contact resistance R_c in
series) is equivalent to the Dirichlet window, and with Z = A⁻¹ (V per A),

    R = R_c + 1 / (1ᵀ (D + Z_WW)⁻¹ 1),     D = diag(1/G_b,k),  k in the window W,

which for a 1 × 1 window is R_i = R_c + 1/G_b,i + Z_ii. The system matrix is the same for every
tip position: a map needs the face block of A⁻¹, not one 3D solve per pixel.

Face block of A⁻¹. Ordering the face unknowns F last, the trailing block of the factorisation is
the Schur complement S_F = A_FF − A_FI A_II⁻¹ A_IF and (A⁻¹)_FF = S_F⁻¹ (MKL PARDISO's Schur
complement, iparm[35] = 2; scipy's SuperLU where MKL is missing). Exact, but the face-last
constraint makes every nested-dissection separator's front carry face pixels: a full 64² face
takes 86 s and 1.8 GB on 2 cores, and a 128² face does not fit. Without the constraint the
factorisation is still ~N⁶ flops and ~N⁴ memory (128³ BM10-like phantom: 9.3 GB of factor by
PARDISO's own estimate, ~50x the 1.6e11 flops of 64³), and MKL PARDISO has no selected
inversion (phase -22 is refused), so large maps are tiled: the face is cut into t × t tiles;
each tile's sub-volume V (the tile plus a lateral halo h, depth ``depth_voxels``) is factorised
with the tile's face last, and the rest of the volume enters through the potential u_Γ it
imposes on the outer neighbours Γ of V (exact: A_VV x_V = e_m − A_VΓ x_Γ):

    Z_TT = (A_VV⁻¹)_TT  −  [A_VV⁻¹ A_VΓ u_Γ]_T   (per source position).

u_Γ for a source inside the tile is taken from one batch of global solves for unit "probe"
currents at the tile corners (the transport stage's matrix-free multigrid-CG, the probe current
injected into the face plane), interpolated bilinearly in the source position. This is
exact when a tile's sub-volume is the whole volume; otherwise it assumes the far field depends
smoothly on where the current enters. It does not for an isolated carrier cluster (CAM fed
only through SE) cut by V: grounded at the cut, its R came out up to 100x too low, so a tile's V
grows to hold, ``halo`` voxels from its cut sides, every isolated cluster reaching the tile's
pixels within ``halo`` planes of the face (``isolated_clusters``, ``_enclose_isolated``).
Measured on the BM10-like phantom at 64³ against direct solves of 300 random pixels (tile 16,
halo 16, depth 32): median error 0.015 %, max 1.05 % (halo 8, depth 16: max 1.9 %). At 128³,
tile 32, halo 16, against independent AMG-CG solves of 100 random pixels: with depth 32 and no
growth, 98 within 1 %, one CAM pixel 1.5 % and one isolated CAM particle 30 % low; with the
growth and depth 64 (the default, DEPTH_PER_HALO) all 100 within 1 % (max 0.63 %, median
0.011 %); the whole 128² map on 2 cores took 458 s and 2.1 GB with AMG-CG probes, 249 s and
1.6 GB with the multigrid probes, 156 s with the isolated clusters deflated in them (same errors
to three digits). ``"auto"`` takes the exact
method up to DIRECT_MAX_FACE_PIXELS window pixels (when its memory estimate fits) and tiles
beyond.

Analytic checks (science.md): full-face window on a uniform bar, R = L/(σA); square window of
side s on a half-space, R ≈ 0.4412 ρ/s; disc of radius a, R = ρ/(4a) (Maxwell/Holm).
"""
from __future__ import annotations

import ctypes
import glob
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from voxelyte import conduction
from voxelyte.descriptors._common import AXES, _axis_index, _phase_table, _voxel
from voxelyte.errors import InputError

log = logging.getLogger("voxelyte.ssrm")

#: Spreading resistance of a square contact of side s on a half-space of resistivity ρ:
#: R = C_SQUARE ρ/s (from the capacitance of a square plate, 0.3607·4πε·s).
C_SQUARE = 0.4412
#: Disc contact of radius a: R = ρ/(4a) (Maxwell, Holm).
C_DISC = 0.25
#: Relative residual of the iterative solves (reference pixels, current fields).
DEFAULT_RTOL = 1e-8
#: Relative residual of the probe solves of the tiled far field (a correction of a few % of R).
PROBE_RTOL = 1e-6
#: Probe right-hand sides handled per batch (dense n × chunk arrays of sources and solutions).
PROBE_CHUNK = 4
#: Rough memory per voxel (bytes) of the global operator (CSR), index map, σ, multigrid
#: hierarchy and fields. Measured peak RSS of whole tiled maps, tile factorisation and probes
#: included: 128³ 1.6 GB (750 B per voxel), 256³ 8.7 GB (tile 64) and 9.6 GB (tile 32, deflated
#: probes; 570 B per voxel); with this value the estimate gives 3.0 and 14.4 GB (tile 64).
BYTES_PER_VOXEL = 400


# --------------------------------------------------------------------------- conductivity field
def conductivity_field(labels, phases: dict, kind: str = "electronic", *,
                       floor_S_cm: float = 0.0, sample: str | None = None) -> np.ndarray:
    """Voxel conductivity (S cm⁻¹) from labels and the phase table's ``sigma_<kind>_S_cm``;
    voxels below ``floor_S_cm`` (e.g. pore at 0) are raised to it."""
    if kind not in ("electronic", "ionic"):
        raise InputError("unknown conductivity kind", sample=sample, field="ssrm.conductivity",
                         expected="electronic or ionic", found=kind)
    table = _phase_table(phases)
    lab = np.asarray(labels)
    key = f"sigma_{kind}_S_cm"
    lut = np.zeros(max(int(lab.max(initial=0)), max(s["label"] for s in table.values())) + 1)
    for name, spec in table.items():
        value = spec.get(key)
        if value is None or not math.isfinite(float(value)) or float(value) < 0:
            raise InputError("phase conductivity missing or invalid", sample=sample,
                             field=f"phases.{name}.{key}", expected="a number >= 0 (S cm⁻¹)",
                             found=value)
        lut[spec["label"]] = float(value)
    unknown = np.setdiff1d(np.unique(lab), [s["label"] for s in table.values()])
    if unknown.size:
        raise InputError("labels not in the phase table", sample=sample, field="phases",
                         expected=f"labels {sorted(s['label'] for s in table.values())}",
                         found=unknown.tolist())
    sigma = lut[lab]
    if floor_S_cm and floor_S_cm > 0:
        sigma = np.maximum(sigma, float(floor_S_cm))
    return sigma


# --------------------------------------------------------------------------- geometry helpers
def _orient(array: np.ndarray, axis: int, side: str) -> np.ndarray:
    """View with the scanned face at index 0 of axis 0."""
    out = np.moveaxis(array, axis, 0)
    return out[::-1] if side == "end" else out


def _orient_voxel(voxel, axis: int) -> tuple[float, float, float]:
    rest = [voxel[d] for d in range(3) if d != axis]
    return (voxel[axis], rest[0], rest[1])


def window_offsets(voxel_yx, *, tip_size_voxels: int = 1, disc_radius_um: float | None = None,
                   ) -> np.ndarray:
    """(k, 2) pixel offsets (dy, dx) of the tip window relative to the tip position: a
    ``tip_size_voxels`` square (centred, the extra row/column of an even size on the + side),
    or every pixel whose centre lies within ``disc_radius_um`` of the position's centre."""
    if disc_radius_um:
        a = float(disc_radius_um)
        ry, rx = int(math.floor(a / voxel_yx[0])), int(math.floor(a / voxel_yx[1]))
        dy, dx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
        keep = (dy * voxel_yx[0]) ** 2 + (dx * voxel_yx[1]) ** 2 <= a * a + 1e-12
        if not keep.any():
            keep[ry, rx] = True
        return np.stack([dy[keep], dx[keep]], 1)
    w = int(tip_size_voxels)
    if w < 1:
        raise InputError("tip size must be >= 1 voxel", field="ssrm.tip_size_voxels",
                         expected=">= 1", found=w)
    r = np.arange(w) - (w - 1) // 2
    dy, dx = np.meshgrid(r, r, indexing="ij")
    return np.stack([dy.ravel(), dx.ravel()], 1)


def scan_positions(face_shape, *, stride: int = 1, region=None) -> np.ndarray:
    """(n, 2) tip positions (row, col) on the face: every ``stride``-th pixel of ``region``
    ([[r0, r1], [c0, c1]], index ranges [start, stop); default the whole face)."""
    (r0, r1), (c0, c1) = region if region is not None else ((0, face_shape[0]),
                                                            (0, face_shape[1]))
    r0, c0 = max(0, int(r0)), max(0, int(c0))
    r1, c1 = min(face_shape[0], int(r1)), min(face_shape[1], int(c1))
    if r1 <= r0 or c1 <= c0 or stride < 1:
        raise InputError("empty scan region", field="ssrm.region",
                         expected=f"ranges inside the face {tuple(face_shape)}, stride >= 1",
                         found={"region": region, "stride": stride})
    rr, cc = np.meshgrid(np.arange(r0, r1, stride), np.arange(c0, c1, stride), indexing="ij")
    return np.stack([rr.ravel(), cc.ravel()], 1)


# --------------------------------------------------------------------------- MKL PARDISO
class _Pardiso:
    """Minimal ctypes binding of MKL PARDISO (the ``mkl`` wheel's libmkl_rt) for a real SPD
    matrix with a dense Schur complement on marked unknowns (iparm[35] = 2) and the partial
    forward solve (phase 331) that, with the Schur block solved densely, gives A⁻¹ b on them."""

    _lib = None

    @classmethod
    def library(cls):
        if cls._lib is None:
            candidates = []
            for root in {sys.prefix, sys.base_prefix}:
                candidates += sorted(glob.glob(os.path.join(root, "lib", "libmkl_rt.so*")))
                candidates += sorted(glob.glob(os.path.join(root, "Library", "bin", "mkl_rt*.dll")))
            cls._lib = False
            for path in candidates:
                try:
                    lib = ctypes.CDLL(path)
                    fn = lib.pardiso
                except (OSError, AttributeError):
                    continue
                P = ctypes.POINTER
                i32 = P(ctypes.c_int32)
                fn.argtypes = [P(ctypes.c_int64), i32, i32, i32, i32, i32, ctypes.c_void_p,
                               i32, i32, i32, i32, i32, i32, ctypes.c_void_p, ctypes.c_void_p, i32]
                fn.restype = None
                cls._lib = fn
                break
        return cls._lib or None

    def __init__(self, A: sp.csr_matrix, schur_rows: np.ndarray):
        fn = self.library()
        if fn is None:
            raise RuntimeError("MKL PARDISO not available")
        self.fn = fn
        self.n = A.shape[0]
        U = sp.triu(A, format="csr")
        U.sort_indices()
        self.data = np.ascontiguousarray(U.data, np.float64)
        self.indptr = np.ascontiguousarray(U.indptr, np.int32)
        self.indices = np.ascontiguousarray(U.indices, np.int32)
        self.pt = np.zeros(64, np.int64)
        self.iparm = np.zeros(64, np.int32)
        self.iparm[0] = 1      # own settings
        self.iparm[1] = 2      # METIS nested dissection
        self.iparm[34] = 1     # zero-based indices
        self.iparm[35] = 2     # dense Schur complement + partial solves
        self.perm = np.zeros(self.n, np.int32)
        self.perm[schur_rows] = 1
        self.ns = int(len(schur_rows))
        out = np.zeros(self.ns * self.ns)
        self._call(12, np.zeros(self.n), out)
        self.schur = out.reshape(self.ns, self.ns)

    def _call(self, phase, b, x, nrhs=1):
        err = ctypes.c_int32(0)
        P = ctypes.POINTER
        i32 = lambda v: ctypes.byref(ctypes.c_int32(v))  # noqa: E731
        self.fn(self.pt.ctypes.data_as(P(ctypes.c_int64)), i32(1), i32(1), i32(2), i32(phase),
                i32(self.n), self.data.ctypes.data, self.indptr.ctypes.data_as(P(ctypes.c_int32)),
                self.indices.ctypes.data_as(P(ctypes.c_int32)),
                self.perm.ctypes.data_as(P(ctypes.c_int32)), i32(nrhs),
                self.iparm.ctypes.data_as(P(ctypes.c_int32)), i32(0), b.ctypes.data,
                x.ctypes.data, ctypes.byref(err))
        if err.value != 0:
            raise RuntimeError(f"MKL PARDISO phase {phase} failed with error {err.value}")

    def forward(self, B: np.ndarray) -> np.ndarray:
        """Forward substitution (phase 331) for the columns of B (n, k); rows of the Schur
        unknowns then hold the reduced right-hand side of S x_F = y_F."""
        B = np.asfortranarray(B, np.float64)
        X = np.zeros_like(B, order="F")
        self._call(331, B, X, nrhs=B.shape[1])
        return X

    def release(self):
        self._call(-1, np.zeros(1), np.zeros(1))


class _SchurSystem:
    """A SPD sparse matrix with the unknowns ``face`` ordered last: ``inverse_block`` =
    (A⁻¹)_FF, ``solve_face(B)`` = (A⁻¹ B)_F. MKL PARDISO where available, else SuperLU."""

    def __init__(self, A: sp.csr_matrix, face: np.ndarray, backend: str = "auto"):
        n = A.shape[0]
        self.face = np.asarray(face, np.int64)
        # symmetric Jacobi scaling: Â = D A D, A⁻¹ = D Â⁻¹ D (conductances span many decades)
        d = 1.0 / np.sqrt(A.diagonal())
        self.d = d
        As = sp.csr_matrix(sp.diags(d) @ A @ sp.diags(d))
        self.backend = backend
        if backend == "auto":
            self.backend = "pardiso" if _Pardiso.library() is not None else "superlu"
        if self.backend == "pardiso":
            self.pardiso = _Pardiso(As, self.face)
            S = self.pardiso.schur
        elif self.backend == "superlu":
            from scipy.sparse.linalg import splu
            inner = np.ones(n, bool)
            inner[self.face] = False
            self.inner = np.nonzero(inner)[0]
            A_II = As[self.inner][:, self.inner].tocsc()
            self.A_FI = As[self.face][:, self.inner]
            self.lu = splu(A_II) if self.inner.size else None
            S = As[self.face][:, self.face].toarray()
            if self.inner.size:
                S = S - self.A_FI @ self.lu.solve(self.A_FI.T.toarray())
        else:
            raise InputError("unknown direct solver backend", field="ssrm.backend",
                             expected="auto, pardiso or superlu", found=backend)
        from scipy.linalg import cho_factor, cho_solve
        S = 0.5 * (S + S.T)
        self.cho = cho_factor(S, lower=True)
        self._cho_solve = cho_solve
        self.n = n

    def inverse_block(self) -> np.ndarray:
        """(A⁻¹)_FF (dense, V per A)."""
        inv = self._cho_solve(self.cho, np.eye(len(self.face)))
        df = self.d[self.face]
        return 0.5 * (inv + inv.T) * df[:, None] * df[None, :]

    def solve_face(self, B: np.ndarray) -> np.ndarray:
        """(A⁻¹ B)_F for the columns of B (n, k)."""
        Bs = B * self.d[:, None]
        if self.backend == "pardiso":
            Y = self.pardiso.forward(Bs)
            yF = Y[self.face]
        else:
            yF = Bs[self.face]
            if self.inner.size:
                yF = yF - self.A_FI @ self.lu.solve(np.ascontiguousarray(Bs[self.inner]))
        return self._cho_solve(self.cho, yF) * self.d[self.face][:, None]

    def release(self):
        if self.backend == "pardiso":
            self.pardiso.release()


# --------------------------------------------------------------------------- the model
@dataclass
class _Model:
    sigma: np.ndarray              # oriented (depth, rows, cols), S cm⁻¹
    voxel: tuple                   # oriented (d_depth, d_row, d_col) µm
    network: np.ndarray            # bool, oriented
    A: sp.csr_matrix               # counter electrode only
    index_map: np.ndarray          # oriented, -1 outside
    g_tip: np.ndarray              # (rows, cols): 2σA/d of the face voxels (S), 0 off network
    amg: object = field(default=None, repr=False)
    gmg: object = field(default=None, repr=False)
    deflation: object = field(default=None, repr=False)
    isolated: tuple = field(default=None, repr=False)   # (cluster ids, bounding slices)

    def isolated_clusters(self) -> tuple[np.ndarray, list]:
        """:func:`isolated_clusters` of the network (computed once)."""
        if self.isolated is None:
            self.isolated = isolated_clusters(np.where(self.network, self.sigma, 0.0))
        return self.isolated

    @property
    def face_shape(self):
        return self.sigma.shape[1:]


def _build_model(sigma: np.ndarray, voxel) -> _Model:
    net = conduction.percolating_network(sigma > 0, 0)
    face_shape = sigma.shape[1:]
    system = conduction.assemble(sigma, voxel, 0, inlet_mask=np.zeros(face_shape, bool),
                                 network=net)
    coef = voxel[1] * voxel[2] / voxel[0] * conduction.UM_TO_CM
    g_tip = np.where(net[0], 2.0 * sigma[0] * coef, 0.0)
    return _Model(sigma, voxel, net, system.A, system.index_map, g_tip)


def _amg_solve(model: _Model, B: np.ndarray, rtol: float, progress=None) -> np.ndarray:
    """Solve A X = B (columns) by CG with one shared smoothed-aggregation AMG hierarchy on the
    Jacobi-scaled matrix."""
    import pyamg
    from scipy.sparse.linalg import cg
    A = model.A
    d = 1.0 / np.sqrt(A.diagonal())
    if model.amg is None:
        As = sp.csr_matrix(sp.diags(d) @ A @ sp.diags(d))
        # evolution strength: 3x fewer CG iterations than "symmetric" on 1e8-contrast
        # CAM/SE fields (12 vs 38 at 64³ for rtol 1e-10)
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


#: Largest system (unknowns) whose probe solves use one sparse factorisation of the whole
#: volume instead of multigrid-CG (fill of a 3D factorisation grows as N⁴: ~1 GB at 64³).
DIRECT_PROBE_MAX_UNKNOWNS = 400_000

#: Default depth of a tile's sub-volume, in halos: 128³ BM10-like, tile 32, halo 16, the worst of
#: the checked pixels in three tiles 1.5 % at depth 2h, 0.9 % at 3h, 0.6 % at 4h.
DEPTH_PER_HALO = 4


def _direct_solve(A: sp.csr_matrix, B: np.ndarray) -> np.ndarray:
    """A⁻¹ B by one MKL PARDISO factorisation (Jacobi-scaled; forward, 1 × 1 Schur, backward)."""
    n = A.shape[0]
    system = _SchurSystem(A, np.arange(1), "pardiso")
    d = system.d
    Y = system.pardiso.forward(B * d[:, None])
    Y[:1] = system._cho_solve(system.cho, Y[:1])
    X = np.zeros_like(Y, order="F")
    system.pardiso._call(333, np.asfortranarray(Y), X, nrhs=Y.shape[1])
    system.release()
    return X[:n] * d[:, None]


def _use_direct(n: int, backend: str = "auto") -> bool:
    return (n <= DIRECT_PROBE_MAX_UNKNOWNS and backend != "superlu"
            and _Pardiso.library() is not None)


def _gmg_solve(model: _Model, B: np.ndarray, rtol: float) -> np.ndarray:
    """A⁻¹ B for right-hand sides on the scanned face (currents injected there) by the
    transport stage's matrix-free multigrid-CG (:func:`voxelyte.conduction.gmg_solve`; float32
    levels, so the true relative residual stops near 1e-7). The hierarchy is built once per
    model; it needs ~40 B per voxel, ~25x less than the AMG one, and no setup search. The
    isolated carrier clusters are deflated (:class:`voxelyte.conduction.ClusterDeflation`):
    a current into isolated CAM otherwise takes CG 150+ iterations at a 1e8 contrast."""
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


def _probe_solve(model: _Model, B: np.ndarray, rtol: float, backend: str) -> np.ndarray:
    """A⁻¹ B for the probe sources: one factorisation where the system is small, else
    multigrid-CG."""
    if _use_direct(model.A.shape[0], backend):
        return _direct_solve(model.A, B)
    return _gmg_solve(model, B, rtol)


def _window_resistance(Z: np.ndarray, g: np.ndarray, contact_ohm: float) -> float:
    """R = R_c + 1/(1ᵀ(D + Z)⁻¹1) for the window block Z (V/A) and tip conductances g (S)."""
    if g.size == 0:
        return math.inf
    M = Z + np.diag(1.0 / g)
    current = np.linalg.solve(M, np.ones(len(g))).sum()
    return contact_ohm + 1.0 / current


# --------------------------------------------------------------------------- resistance map
def resistance_map(sigma, voxel_size_um, *, positions=None, stride: int = 1, region=None,
                   tip_size_voxels: int = 1, disc_radius_um: float | None = None,
                   contact_resistance_ohm: float = 0.0, scanned_axis="z",
                   scanned_side: str = "start", method: str = "auto", tile_voxels: int = 32,
                   halo_voxels: int = 16, depth_voxels: int | None = None,
                   backend: str = "auto", rtol: float = DEFAULT_RTOL, progress=None,
                   max_memory_gb: float = 16.0, _model: _Model | None = None) -> dict:
    """SSRM resistance R (Ω) for every tip position (``positions`` (n, 2) on the scanned face,
    else every ``stride``-th pixel of ``region``).

    ``method``: ``"direct"`` (one Schur complement of the whole volume on all window pixels:
    exact), ``"tiled"`` (tile sub-volumes + probe far field, see the module docstring),
    ``"iterative"`` (one AMG-CG solve per position with the Dirichlet window: exact to rtol;
    slow) or ``"auto"`` (direct up to DIRECT_MAX_FACE_PIXELS window pixels where its memory
    estimate fits ``max_memory_gb``, else tiled; see :func:`choose_method`).
    Returns positions, resistance_ohm (n,), method, timings and, for tiled, n_tiles/n_probes."""
    t0 = time.perf_counter()
    a = _axis_index(scanned_axis)
    if scanned_side not in ("start", "end"):
        raise InputError("unknown scanned side", field="ssrm.scanned_face.side",
                         expected="start or end", found=scanned_side)
    vox = _orient_voxel(_voxel(voxel_size_um), a)
    model = _model or _build_model(
        np.ascontiguousarray(_orient(conduction.conductivity_array(sigma), a, scanned_side)), vox)
    face_shape = model.face_shape
    if positions is None:
        positions = scan_positions(face_shape, stride=stride, region=region)
    positions = np.asarray(positions, np.int64).reshape(-1, 2)
    offsets = window_offsets(vox[1:], tip_size_voxels=tip_size_voxels,
                             disc_radius_um=disc_radius_um)
    nz = model.sigma.shape[0]
    depth = max(1, min(nz, int(depth_voxels or DEPTH_PER_HALO * halo_voxels)))
    if method == "auto":   # exact where it is cheap, else tiled (see choose_method)
        wins = np.unique(((positions[:, None, 0] + offsets[None, :, 0]) * face_shape[1] +
                          positions[:, None, 1] + offsets[None, :, 1]).ravel()).size
        method = choose_method(model.sigma.shape, wins, max_memory_gb)
    if method == "direct":
        tile_voxels = max(face_shape) + 1
        halo_voxels, depth = max(face_shape), nz
    R = np.full(len(positions), math.inf)
    info = {"method": method}
    if method == "iterative":
        for k, pos in enumerate(positions):
            R[k] = tip_resistance(None, None, pos, offsets=offsets,
                                  contact_resistance_ohm=contact_resistance_ohm, rtol=rtol,
                                  solver="amg", _model=model)
            if progress:
                progress(k + 1, len(positions))
    elif method in ("direct", "tiled"):
        info.update(_tiled(model, positions, offsets, contact_resistance_ohm, tile_voxels,
                           halo_voxels, depth, backend, rtol, R, progress))
    else:
        raise InputError("unknown SSRM method", field="ssrm.method",
                         expected="auto, direct, tiled or iterative", found=method)
    info.update(positions=positions, resistance_ohm=R, time_s=time.perf_counter() - t0,
                offsets=offsets, model=model)
    return info


def _lattice(n: int, t: int) -> np.ndarray:
    """Tile boundaries (and probe lines) along one face axis: 0, t, 2t, ..., n-1."""
    lines = list(range(0, n - 1, t)) + [n - 1]
    return np.array(sorted(set(lines)))


def _probe_sources(model: _Model, lines_r, lines_c, radius: float) -> dict:
    """Unit current spread over the network face pixels within ``radius`` px of each lattice
    point (growing the radius until some are found). Returns {(i, j): (rows, weights)}."""
    face_idx = model.index_map[0]
    on = face_idx >= 0
    rr, cc = np.nonzero(on)
    out = {}
    for i, r in enumerate(lines_r):
        for j, c in enumerate(lines_c):
            rad = radius
            while True:
                sel = (rr - r) ** 2 + (cc - c) ** 2 <= rad * rad
                if sel.any() or rad > max(model.face_shape):
                    break
                rad *= 1.5
            if sel.any():
                rows = face_idx[rr[sel], cc[sel]]
                out[(i, j)] = (rows, np.full(rows.size, 1.0 / rows.size))
    return out


#: Voxels with σ ≥ ISOLATED_CONTRAST·max σ form the carrier clusters whose isolation matters.
ISOLATED_CONTRAST = 1e-3


def isolated_clusters(sigma: np.ndarray) -> tuple[np.ndarray, list]:
    """Face-connected clusters of the high-conductivity voxels (σ ≥ ISOLATED_CONTRAST·max σ)
    that do not reach the counter electrode (last plane): (cluster id per voxel, 0 elsewhere;
    bounding slices of cluster i at [i - 1])."""
    comp = _clusters_off_counter(sigma >= ISOLATED_CONTRAST * float(sigma.max()))
    return comp, ndimage.find_objects(comp)


def _clusters_off_counter(mask: np.ndarray) -> np.ndarray:
    """Face-connected clusters of ``mask`` (oriented) that do not reach the counter electrode
    (last plane): cluster ids, 0 elsewhere."""
    comp, n = ndimage.label(mask)
    keep = np.ones(n + 1, bool)
    keep[np.unique(comp[-1])] = False
    keep[0] = False
    comp[~keep[comp]] = 0
    return comp


def _enclose_isolated(bounds, depth, core, iso, boxes, halo):
    """Grow a sub-volume (r0, r1, c0, c1; depth) to hold, ``halo`` voxels from its cut sides,
    every isolated cluster that reaches the tile's core (its scanned pixels' rows / cols, top
    ``halo`` planes): cut by V such a cluster would be grounded at the cut by the probe far
    field, which the corner probes (fed through the percolating network) do not represent, and
    its leak through the matrix must stay inside V too. Deeper clusters are left to the far
    field (growing for them as well cascades into near-whole-volume tiles)."""
    (r0, r1, c0, c1), z1 = bounds, depth
    nz, nr, nc = iso.shape
    cr0, cr1, cc0, cc1 = core
    sub = iso[:max(1, min(halo, nz)), cr0:cr1, cc0:cc1]
    for i in np.unique(sub[sub > 0]).tolist():
        bz, br, bc = boxes[i - 1]
        r0, r1 = min(r0, max(0, br.start - halo)), max(r1, min(nr, br.stop + halo))
        c0, c1 = min(c0, max(0, bc.start - halo)), max(c1, min(nc, bc.stop + halo))
        z1 = max(z1, min(nz, bz.stop + halo))
    return (r0, r1, c0, c1), z1


def _tile_geometry(model: _Model, positions, offsets, tile, halo, depth):
    """Group the positions by tile; per tile its sub-volume bounds and depth (grown for the
    isolated clusters near its pixels, ``_enclose_isolated``), window rows and whether the
    sub-volume is the whole volume (exact, no far field needed)."""
    nz, nr, nc = model.sigma.shape
    idx = model.index_map
    iso, boxes = None, []
    if depth < nz or halo < max(nr, nc):
        iso, boxes = model.isolated_clusters()
    lines_r, lines_c = _lattice(nr, tile), _lattice(nc, tile)
    # tile of each position: interval [lines[k], lines[k+1]) (last interval closed)
    tr = np.clip(np.searchsorted(lines_r, positions[:, 0], side="right") - 1, 0,
                 max(len(lines_r) - 2, 0))
    tc = np.clip(np.searchsorted(lines_c, positions[:, 1], side="right") - 1, 0,
                 max(len(lines_c) - 2, 0))
    groups = {}
    for k, key in enumerate(zip(tr.tolist(), tc.tolist())):
        groups.setdefault(key, []).append(k)
    tiles = []
    for (ti, tj), members in sorted(groups.items()):
        members = np.array(members)
        pos = positions[members]
        r0 = max(0, int(pos[:, 0].min() + offsets[:, 0].min()) - halo)
        r1 = min(nr, int(pos[:, 0].max() + offsets[:, 0].max()) + 1 + halo)
        c0 = max(0, int(pos[:, 1].min() + offsets[:, 1].min()) - halo)
        c1 = min(nc, int(pos[:, 1].max() + offsets[:, 1].max()) + 1 + halo)
        windows = []           # window pixels of each member, as rows of the global system
        for p in pos:
            wr, wc = p[0] + offsets[:, 0], p[1] + offsets[:, 1]
            ok = (wr >= 0) & (wr < nr) & (wc >= 0) & (wc < nc)
            wr, wc = wr[ok], wc[ok]
            rows = idx[0, wr, wc]
            keep = rows >= 0
            windows.append((rows[keep], model.g_tip[wr[keep], wc[keep]]))
        bounds, z1 = (r0, r1, c0, c1), depth
        if boxes:
            core = (int(pos[:, 0].min()), int(pos[:, 0].max()) + 1, int(pos[:, 1].min()),
                    int(pos[:, 1].max()) + 1)
            bounds, z1 = _enclose_isolated(bounds, depth, core, iso, boxes, halo)
        exact = bounds == (0, nr, 0, nc) and z1 == nz
        tiles.append(dict(key=(ti, tj), members=members, bounds=bounds, depth=z1,
                          grown=(bounds, z1) != ((r0, r1, c0, c1), depth),
                          windows=windows, exact=exact))
    return lines_r, lines_c, tiles


def _tiled(model: _Model, positions, offsets, contact_ohm, tile, halo, depth, backend, rtol,
           R, progress) -> dict:
    nz, nr, nc = model.sigma.shape
    idx = model.index_map
    lines_r, lines_c, tiles = _tile_geometry(model, positions, offsets, tile, halo, depth)
    # far field: one batch of global solves for unit "probe" currents at the tile corners that
    # some approximate tile needs; only the rows down to the sub-volumes' depth are kept
    t_probe = 0.0
    probes_u, sources = {}, None
    need = sorted({(t["key"][0] + a, t["key"][1] + b) for t in tiles if not t["exact"]
                   for a in (0, 1) for b in (0, 1)})
    if need:
        sources = _probe_sources(model, lines_r, lines_c, max(2.0, tile / 8))
        need = [c for c in need if c in sources]
        deepest = max(t["depth"] for t in tiles if not t["exact"])
        keep_rows = int(idx[:min(nz, deepest + 1)].max()) + 1  # C order: rows by depth plane
        ts = time.perf_counter()
        direct = _use_direct(model.A.shape[0], backend)
        chunk = len(need) if direct else PROBE_CHUNK      # one factorisation: all at once
        for k0 in range(0, len(need), chunk):
            part = need[k0:k0 + chunk]
            B = np.zeros((model.A.shape[0], len(part)))
            for k, c in enumerate(part):
                rows, wts = sources[c]
                B[rows, k] = wts
            U = _probe_solve(model, B, max(rtol, PROBE_RTOL), backend)
            for k, c in enumerate(part):
                probes_u[c] = np.ascontiguousarray(U[:keep_rows, k])
            del B, U
            log.info("far-field probes: %d / %d solved", min(k0 + chunk, len(need)), len(need))
        t_probe = time.perf_counter() - ts
    t_factor = 0.0
    done = 0
    fr, fc = np.nonzero(idx[0] >= 0)          # face rows come first, in C order
    for t in tiles:
        (ti, tj), members, windows = t["key"], t["members"], t["windows"]
        r0, r1, c0, c1 = t["bounds"]
        sub = idx[:t["depth"], r0:r1, c0:c1]
        vrows = np.sort(sub[sub >= 0])
        face_rows = np.unique(np.concatenate([w[0] for w in windows] + [np.zeros(0, np.int64)]))
        if face_rows.size == 0 or vrows.size == 0:
            done += len(members)
            continue
        local = np.searchsorted(vrows, face_rows)
        A_VV = model.A[vrows][:, vrows].tocsr()
        ts = time.perf_counter()
        system = _SchurSystem(A_VV, local, backend)
        Z = system.inverse_block()
        t_factor += time.perf_counter() - ts
        corners = [(ti + a, tj + b) for a in (0, 1) for b in (0, 1)]
        corners = [c for c in corners if c in probes_u] if not t["exact"] else []
        if corners:
            A_Vall = model.A[vrows][:, :probes_u[corners[0]].size]
            rhs = np.zeros((vrows.size, len(corners)))
            for k, c in enumerate(corners):
                u = probes_u[c].copy()
                u[vrows[vrows < u.size]] = 0.0          # potentials outside V only
                rhs[:, k] = -(A_Vall @ u)
            ts = time.perf_counter()
            C = system.solve_face(rhs)       # (face, corners): far-field potential per probe
            t_factor += time.perf_counter() - ts
            # bilinear weights of each face pixel's position between the tile's corner probes
            face_pos = np.stack([fr, fc], 1)[face_rows]
            wy = _interp_weight(face_pos[:, 0], lines_r, ti)
            wx = _interp_weight(face_pos[:, 1], lines_c, tj)
            Wt = np.zeros((face_rows.size, len(corners)))
            for k, (ci, cj) in enumerate(corners):
                Wt[:, k] = (wy if ci > ti else 1 - wy) * (wx if cj > tj else 1 - wx)
            Wt /= np.maximum(Wt.sum(1, keepdims=True), 1e-300)
            corr = C @ Wt.T                   # corr[j, m]: potential at j for a source at m
            Z = Z + 0.5 * (corr + corr.T)
        system.release()
        for k, (rows, g) in zip(members, windows):
            if rows.size == 0:
                continue
            loc = np.searchsorted(face_rows, rows)
            R[k] = _window_resistance(Z[np.ix_(loc, loc)], g, contact_ohm)
        done += len(members)
        if progress:
            progress(done, len(positions))
    return {"n_tiles": len(tiles), "n_tiles_grown": sum(t["grown"] for t in tiles),
            "n_probe_solves": len(probes_u),
            "probe_time_s": t_probe, "factor_time_s": t_factor,
            "tile_voxels": int(tile), "halo_voxels": int(halo), "depth_voxels": int(depth)}


def _interp_weight(coord: np.ndarray, lines: np.ndarray, k: int) -> np.ndarray:
    if len(lines) < 2:
        return np.zeros_like(coord, dtype=np.float64)
    lo, hi = lines[k], lines[min(k + 1, len(lines) - 1)]
    if hi <= lo:
        return np.zeros_like(coord, dtype=np.float64)
    return np.clip((coord - lo) / (hi - lo), 0.0, 1.0)


# --------------------------------------------------------------------------- single positions
def _window_mask(model: _Model, pos, offsets) -> np.ndarray:
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
              solver: str = "auto", _model: _Model | None = None) -> dict:
    """Independent check and 3D field of one tip position: the Dirichlet window (tip at
    ``bias_V`` behind R_c) solved over the whole volume, ``solver`` "direct" (one factorisation),
    "gmg" (matrix-free multigrid-CG, the window as the inlet), "amg" (pyamg AMG-CG) or "auto"
    (direct for small networks, else gmg). Returns resistance_ohm,
    current_A, potential_V and current_density_A_cm2 (jz, jy, jx in the scanned-face frame:
    axis 0 = depth), depth_profile_A_cm2 (per plane, the current-weighted mean of the normal
    component, Σ j² / Σ |j|: the density the current actually flows at, Gamo SI Fig. S3; it is
    I/A at every depth for a full-face window and peaks under a small tip) and
    depth_profile_max_A_cm2. ``full_face``: the whole face is the window (DC test)."""
    if _model is None:
        a = _axis_index(scanned_axis)
        vox = _orient_voxel(_voxel(voxel_size_um), a)
        _model = _build_model(np.ascontiguousarray(
            _orient(conduction.conductivity_array(sigma), a, scanned_side)), vox)
    model = _model
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
    if solver not in ("auto", "direct", "amg", "gmg"):
        raise InputError("unknown SSRM field solver", field="solver",
                         expected="auto, direct, amg or gmg", found=solver)
    if solver == "auto":
        solver = "direct" if _use_direct(int(np.count_nonzero(sub))) else "gmg"
    if solver == "gmg":     # the transport stage's multigrid-CG solve, the window as its inlet
        grid, i_unit, _, _ = conduction.effective_conductivity_gmg(
            model.sigma, model.voxel, 0, sub, rtol=rtol, maxiter=None, periodic=False,
            potential_in=1.0, potential_out=0.0, dtype=np.float32, inlet_mask=mask,
            deflation_labels=model.isolated_clusters()[0])
        x = grid[sub]
        del grid
    else:
        system = conduction.assemble(model.sigma, model.voxel, 0, inlet_mask=mask,
                                     potential_in=1.0, network=model.network)
        keep = sub[model.network]
        A = system.A[keep][:, keep]
        b = system.b[keep]
        if solver == "direct":
            x = _direct_solve(A, b[:, None])[:, 0]
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
    r_body = 1.0 / i_unit
    R = contact_resistance_ohm + r_body
    v_window = bias_V * r_body / R                    # window potential behind R_c
    phi = np.full(shape, np.nan)
    phi[sub] = x * v_window
    out.update(resistance_ohm=R, current_A=bias_V / R, potential_V=phi,
               window_potential_V=v_window)
    j = _current_density(model, phi, mask, v_window, sub)
    out["current_density_A_cm2"] = j
    jd = np.abs(j[0])
    total = jd.sum(axis=(1, 2))
    out["depth_profile_A_cm2"] = np.where(total > 0, (jd ** 2).sum(axis=(1, 2)) /
                                          np.where(total > 0, total, 1.0), 0.0)
    out["depth_profile_max_A_cm2"] = jd.max(axis=(1, 2))
    return out


def _current_density(model: _Model, phi, mask, v_window, on):
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
    """R (Ω) of one tip position by an independent AMG-CG solve (see :func:`tip_field`)."""
    return tip_field(sigma, voxel_size_um, position, **kw)["resistance_ohm"]


def dc_resistance(sigma, voxel_size_um, *, scanned_axis="z", scanned_side: str = "start",
                  rtol: float = DEFAULT_RTOL) -> dict:
    """DC mode: the whole scanned face is the window. R (Ω) and σ_eff = L/(R·A) (S cm⁻¹),
    the transport stage's effective conductivity along the scan axis."""
    a = _axis_index(scanned_axis)
    vox = _voxel(voxel_size_um)
    sig = conduction.conductivity_array(sigma)
    f = tip_field(sig, vox, None, full_face=True, scanned_axis=scanned_axis,
                  scanned_side=scanned_side, rtol=rtol)
    R = f["resistance_ohm"]
    length_cm = sig.shape[a] * vox[a] * conduction.UM_TO_CM
    area_cm2 = math.prod(sig.shape[d] * vox[d] for d in range(3) if d != a) * 1e-8
    return {"resistance_ohm": R, "sigma_eff_S_cm": length_cm / (R * area_cm2)
            if math.isfinite(R) else 0.0, "depth_profile_A_cm2": f["depth_profile_A_cm2"]}


# --------------------------------------------------------------------------- the stage
#: Library defaults of the ``ssrm`` stage (the sample schema's ``stages.ssrm`` block).
SSRM_DEFAULTS = {
    "conductivity": "electronic", "floor_S_cm": 0.0, "scanned_axis": "z", "scanned_side": "start",
    "tip_size_voxels": 1, "disc_radius_um": None, "contact_resistance_ohm": 0.0, "stride": 1,
    "region": None, "crop": None, "method": "auto", "tile_voxels": 32, "halo_voxels": 16,
    "depth_voxels": None, "isolation_threshold_ohm": "auto", "n_current_fields": 2,
    "histogram_bins": 60, "dc_mode": True, "max_memory_gb": 16.0,
}


def spreading_resistance_ohm(sigma_S_cm: float, voxel_yx_um, *, tip_size_voxels: int = 1,
                             disc_radius_um: float | None = None) -> float:
    """Half-space spreading resistance of the tip: 0.4412/(σ s) (square of side s) or
    1/(4σa) (disc of radius a); lengths in cm."""
    if sigma_S_cm <= 0:
        return math.inf
    if disc_radius_um:
        return C_DISC / (sigma_S_cm * disc_radius_um * conduction.UM_TO_CM)
    side_cm = tip_size_voxels * math.sqrt(voxel_yx_um[0] * voxel_yx_um[1]) * conduction.UM_TO_CM
    return C_SQUARE / (sigma_S_cm * side_cm)


def estimate_memory_bytes(shape_zyx, settings: dict) -> int:
    """Peak memory estimate (bytes): the global operator, AMG and fields (BYTES_PER_VOXEL per
    voxel); the sparse factorisation of the volume (direct) or of one tile's sub-volume (tiled),
    whose 3D nested-dissection fill is ≈ 6 n^(4/3) entries (measured on 48³–64³ grids), × 12 B
    with indices and a 1.5 working margin; and the dense face block of A⁻¹ (3 copies of
    (scanned window pixels)²)."""
    n = int(np.prod(shape_zyx))
    a = _axis_index(settings.get("scanned_axis", "z"))
    face = [shape_zyx[d] for d in range(3) if d != a]
    stride = max(1, int(settings.get("stride", 1)))
    region = settings.get("region")
    if region:
        face = [max(0, min(face[k], r[1]) - r[0]) for k, r in enumerate(region)]
    positions = math.ceil(face[0] / stride) * math.ceil(face[1] / stride)
    w = int(settings.get("tip_size_voxels", 1)) ** 2
    method = settings.get("method", "auto")
    if method == "auto":
        method = choose_method(shape_zyx, positions * w, settings.get("max_memory_gb", 16.0))
    probes = 0.0
    if method == "tiled":
        t, h = int(settings.get("tile_voxels", 32)), int(settings.get("halo_voxels", 16))
        depth = min(shape_zyx[a], settings.get("depth_voxels") or DEPTH_PER_HALO * h)
        sub = min(n, (t + 2 * h) ** 2 * depth)
        face_unknowns = min(positions, math.ceil(t / stride) ** 2) * w
        # probe right-hand sides and solutions (2 dense copies), then their near-face rows
        n_probes = (math.ceil(face[0] / t) + 1) * (math.ceil(face[1] / t) + 1)
        probes = 8.0 * n * (2 * min(n_probes, PROBE_CHUNK) + n_probes * depth / shape_zyx[a])
    elif method == "iterative":
        sub, face_unknowns = 0, 0
    else:
        sub, face_unknowns = n, positions * w
    fill = 6.0 * sub ** (4.0 / 3.0) * 12 * 1.5
    return int(n * BYTES_PER_VOXEL + fill + 3 * 8 * face_unknowns ** 2 + probes)


#: The exact method is chosen by ``auto`` up to this many scanned window pixels (a full 64²
#: face: 86 s, 1.8 GB on 2 cores); beyond, the face-last factorisation's dense fronts grow
#: as the face's square and tiling is faster.
DIRECT_MAX_FACE_PIXELS = 4096
#: ... and up to this many voxels (a 64³ volume; the factorisation's flops grow as n², so a
#: larger volume is faster tiled even where the memory would fit).
DIRECT_MAX_VOXELS = 300_000


def choose_method(shape_zyx, face_unknowns: int, max_memory_gb: float) -> str:
    """``auto``: the exact Schur complement ("direct") where its memory estimate fits
    ``max_memory_gb``, at most DIRECT_MAX_FACE_PIXELS window pixels are scanned and the volume
    has at most DIRECT_MAX_VOXELS voxels, else "tiled"."""
    n = int(np.prod(shape_zyx))
    fill = 6.0 * n ** (4.0 / 3.0) * 12 * 1.5
    direct = n * BYTES_PER_VOXEL + fill + 3 * 8 * face_unknowns ** 2
    if (face_unknowns <= DIRECT_MAX_FACE_PIXELS and n <= DIRECT_MAX_VOXELS
            and direct <= max_memory_gb * 1e9):
        return "direct"
    return "tiled"


def _crop(arr: np.ndarray, crop, sample) -> tuple[np.ndarray, list]:
    if not crop:
        return arr, [[0, s] for s in arr.shape]
    ranges = []
    for ax, name in enumerate(AXES):
        lo, hi = (crop.get(name) or [0, arr.shape[ax]])
        lo, hi = max(0, int(lo)), min(arr.shape[ax], int(hi))
        if hi - lo < 2:
            raise InputError("SSRM crop leaves fewer than 2 voxels", sample=sample,
                             field=f"stages.ssrm.crop.{name}",
                             expected=f"a range inside [0, {arr.shape[ax]})", found=crop.get(name))
        ranges.append([lo, hi])
    return arr[tuple(slice(a, b) for a, b in ranges)], ranges


def geometric_isolation(labels_oriented: np.ndarray, carrier_label: int) -> np.ndarray:
    """Face mask (rows, cols): carrier-phase face pixels whose face-connected carrier cluster
    does not reach the counter electrode (last plane): isolated by geometry alone."""
    return _clusters_off_counter(labels_oriented == carrier_label)[0] > 0


def simulate(labels, phases: dict, voxel_size_um, settings: dict | None = None, *,
             sample: str | None = None, descriptors: dict | None = None, progress=None):
    """The ``ssrm`` stage: resistance map, histograms, isolation vs connectivity, current
    fields, DC mode. Returns ``(dataset, summary)``: an xarray Dataset for ssrm.zarr and a
    JSON-able dict for ssrm.json. ``descriptors``: the sample's descriptors.json (optional) for
    the connectivity comparison."""
    import xarray as xr

    cfg = dict(SSRM_DEFAULTS, **(settings or {}))
    table = _phase_table(phases)
    lab_full = np.asarray(labels)
    vox = _voxel(voxel_size_um)
    lab, crop_ranges = _crop(lab_full, cfg["crop"], sample)
    need = estimate_memory_bytes(lab.shape, cfg)
    if need > cfg["max_memory_gb"] * 1e9:
        raise InputError(
            f"SSRM needs about {need / 1e9:.1f} GB for a {lab.shape} volume; set "
            "stages.ssrm.crop, a smaller tile_voxels/halo_voxels, or run on a node with more "
            "memory and raise max_memory_gb", sample=sample, field="stages.ssrm.max_memory_gb",
            expected=f">= {need / 1e9:.1f}", found=cfg["max_memory_gb"])
    sigma = conductivity_field(lab, table, cfg["conductivity"], floor_S_cm=cfg["floor_S_cm"],
                               sample=sample)
    a = _axis_index(cfg["scanned_axis"])
    side = cfg["scanned_side"]
    ovox = _orient_voxel(vox, a)
    olab = np.ascontiguousarray(_orient(lab, a, side))
    model = _build_model(np.ascontiguousarray(_orient(sigma, a, side)), ovox)
    depth = cfg["depth_voxels"] or DEPTH_PER_HALO * int(cfg["halo_voxels"])
    m = resistance_map(None, vox, stride=cfg["stride"], region=cfg["region"],
                       tip_size_voxels=cfg["tip_size_voxels"],
                       disc_radius_um=cfg["disc_radius_um"],
                       contact_resistance_ohm=cfg["contact_resistance_ohm"],
                       method=cfg["method"], tile_voxels=cfg["tile_voxels"],
                       halo_voxels=cfg["halo_voxels"], depth_voxels=depth, progress=progress,
                       max_memory_gb=cfg["max_memory_gb"], _model=model)
    pos, R = m["positions"], m["resistance_ohm"]
    face_shape = model.face_shape
    face_axes = [AXES[d] for d in range(3) if d != a]
    r_map = np.full(face_shape, np.nan)
    r_map[pos[:, 0], pos[:, 1]] = R
    phase_face = olab[0]
    phase_map = np.full(face_shape, 255, np.uint8)
    phase_map[pos[:, 0], pos[:, 1]] = phase_face[pos[:, 0], pos[:, 1]]

    # phases by conductivity: carrier = most conductive
    key = f"sigma_{cfg['conductivity']}_S_cm"
    sig_of = {name: max(float(spec.get(key) or 0.0), cfg["floor_S_cm"])
              for name, spec in table.items()}
    ranked = sorted(sig_of, key=sig_of.get, reverse=True)
    carrier = ranked[0]
    second = next((p for p in ranked[1:] if sig_of[p] > 0), None)
    sp_kw = dict(tip_size_voxels=cfg["tip_size_voxels"], disc_radius_um=cfg["disc_radius_um"])
    r1 = spreading_resistance_ohm(sig_of[carrier], ovox[1:], **sp_kw) + \
        cfg["contact_resistance_ohm"]
    if cfg["isolation_threshold_ohm"] == "auto":
        r2 = (spreading_resistance_ohm(sig_of[second], ovox[1:], **sp_kw) +
              cfg["contact_resistance_ohm"]) if second else r1 * 1e6
        threshold = math.sqrt(r1 * r2)
    else:
        threshold = float(cfg["isolation_threshold_ohm"])

    # log10 R histograms per phase under the tip
    logr = np.log10(np.where(np.isfinite(R) & (R > 0), R, np.nan))
    finite = np.isfinite(logr)
    lo, hi = (float(np.nanmin(logr)), float(np.nanmax(logr))) if finite.any() else (0.0, 1.0)
    edges = np.linspace(math.floor(lo * 10) / 10, math.ceil(hi * 10) / 10 + 1e-9,
                        int(cfg["histogram_bins"]) + 1)
    tip_phase = phase_face[pos[:, 0], pos[:, 1]]
    hist, per_phase = {}, {}
    for name, spec in table.items():
        sel = tip_phase == spec["label"]
        counts, _ = np.histogram(logr[sel & finite], bins=edges)
        hist[name] = counts.tolist()
        rs = R[sel]
        per_phase[name] = {
            "n_pixels": int(sel.sum()),
            "n_infinite": int(np.count_nonzero(~np.isfinite(rs))),
            "median_resistance_ohm": float(np.median(rs)) if rs.size else None,
            "fraction_above_threshold": float(np.mean(rs > threshold)) if rs.size else None,
        }
    # isolated carrier pixels vs connectivity
    cl = table[carrier]["label"]
    on_carrier = tip_phase == cl
    iso_r = R[on_carrier] > threshold
    iso_face = geometric_isolation(olab, cl)
    geo = iso_face[pos[:, 0], pos[:, 1]][on_carrier]
    agree = float(np.mean(iso_r == geo)) if on_carrier.any() else None
    # the same pixels in the whole (uncropped) volume: what a crop changes (orienting flips
    # the scan axis only, so face indices shift by the crop's start)
    if lab is not lab_full:
        iso_face = geometric_isolation(np.ascontiguousarray(_orient(lab_full, a, side)), cl)
    offset = [crop_ranges[d][0] for d in range(3) if d != a]
    geo_whole = iso_face[pos[:, 0] + offset[0], pos[:, 1] + offset[1]][on_carrier]
    connectivity = {
        "carrier_phase": carrier,
        "isolation_threshold_ohm": threshold,
        "threshold_rule": "auto: sqrt(R_sp(carrier) R_sp(next phase))"
        if cfg["isolation_threshold_ohm"] == "auto" else "given",
        "n_carrier_surface_pixels": int(on_carrier.sum()),
        "isolated_fraction_ssrm": float(iso_r.mean()) if on_carrier.any() else None,
        "isolated_fraction_geometric": float(geo.mean()) if on_carrier.any() else None,
        "pixel_agreement": agree,
        "isolated_fraction_geometric_whole_volume":
            float(geo_whole.mean()) if on_carrier.any() else None,
        "pixel_agreement_whole_volume":
            float(np.mean(iso_r == geo_whole)) if on_carrier.any() else None,
        "geometric_rule": "carrier cluster (face-connected) not reaching the counter electrode",
    }
    if descriptors:   # descriptors.json: flat keys connectivity_<phase>_<measure>
        ax_name = AXES[a]
        for k in ("isolated_from_current_collector", f"isolated_{ax_name}",
                  f"dead_end_{ax_name}", f"percolating_{ax_name}",
                  f"surface_unconnected_{ax_name}_{side}"):
            key = f"connectivity_{carrier}_{k}"
            if key in descriptors:
                connectivity[f"descriptor_{key}"] = descriptors[key]

    # current fields for chosen positions (lowest / highest R on the carrier, then quantiles)
    chosen = []
    cand = np.nonzero(on_carrier & np.isfinite(R))[0]
    nf = int(cfg["n_current_fields"])
    if cand.size and nf:
        order = cand[np.argsort(R[cand], kind="stable")]
        picks = [order[0], order[-1]][:nf]
        for q in np.linspace(0, 1, nf)[1:-1] if nf > 2 else []:
            picks.append(order[int(round(q * (order.size - 1)))])
        seen = []
        for p in picks:
            if p not in seen:
                seen.append(p)
        chosen = seen
    fields, profiles, field_info = [], [], []
    for k in chosen:
        f = tip_field(None, None, pos[k], offsets=m["offsets"],
                      contact_resistance_ohm=cfg["contact_resistance_ohm"], _model=model)
        jd, jr, jc = f["current_density_A_cm2"]
        mag = np.sqrt(jd ** 2 + jr ** 2 + jc ** 2)
        fields.append((_unorient(mag, a, side), _unorient(jd, a, side)))
        profiles.append(f["depth_profile_A_cm2"])
        field_info.append({"position": {face_axes[0]: int(pos[k, 0]), face_axes[1]: int(pos[k, 1])},
                           "resistance_ohm": float(R[k]),
                           "resistance_check_ohm": float(f["resistance_ohm"]),
                           "phase": carrier,
                           "depth_profile_A_cm2": f["depth_profile_A_cm2"].tolist()})
    dc = None
    if cfg["dc_mode"]:
        f = tip_field(None, None, None, full_face=True, _model=model)
        L = model.sigma.shape[0] * ovox[0] * conduction.UM_TO_CM
        area = face_shape[0] * ovox[1] * face_shape[1] * ovox[2] * 1e-8
        dc = {"resistance_ohm": f["resistance_ohm"],
              "sigma_eff_S_cm": L / (f["resistance_ohm"] * area)
              if math.isfinite(f["resistance_ohm"]) else 0.0,
              "axis": cfg["scanned_axis"],
              "depth_profile_A_cm2": f["depth_profile_A_cm2"].tolist()}

    # dataset
    coords = {}
    for d, name in enumerate(face_axes):
        ax = [x for x in range(3) if x != a][d]
        start = crop_ranges[ax][0]
        coords[name] = (np.arange(face_shape[d]) + start + 0.5) * vox[ax]
    ds = xr.Dataset(
        {"resistance_ohm": (face_axes, r_map),
         "log10_resistance_ohm": (face_axes, np.log10(np.where(r_map > 0, r_map, np.nan))),
         "phase_under_tip": (face_axes, phase_map)},
        coords=coords)
    ds["phase_under_tip"].attrs["description"] = "label under the tip; 255 = not scanned"
    if fields:
        zc = {name: (np.arange(lab.shape[d]) + crop_ranges[d][0] + 0.5) * vox[d]
              for d, name in enumerate(AXES)}
        ds = ds.assign_coords(field=np.arange(len(fields)), **zc)
        ds["current_density_magnitude_A_cm2"] = (("field", *AXES),
                                                  np.stack([f[0] for f in fields]).astype(np.float32))
        ds["current_density_normal_A_cm2"] = (("field", *AXES),
                                               np.stack([f[1] for f in fields]).astype(np.float32))
        ds["depth_profile_A_cm2"] = (("field", "depth"), np.stack(profiles))
        ds["field_resistance_ohm"] = ("field", np.array([fi["resistance_ohm"]
                                                          for fi in field_info]))
    ds.attrs.update(voxel_size_um=list(vox), scanned_axis=cfg["scanned_axis"],
                    scanned_side=side, bias_V=1.0, crop=crop_ranges)
    summary = {
        "method": m["method"],
        "solver": {k: m[k] for k in ("n_tiles", "n_probe_solves", "probe_time_s",
                                     "factor_time_s", "tile_voxels", "halo_voxels",
                                     "depth_voxels") if k in m} | {"time_s": m["time_s"]},
        "n_positions": int(len(pos)),
        "stride": cfg["stride"], "region": cfg["region"], "crop": crop_ranges,
        "tip": {"tip_size_voxels": cfg["tip_size_voxels"],
                "disc_radius_um": cfg["disc_radius_um"],
                "contact_resistance_ohm": cfg["contact_resistance_ohm"],
                "half_space_spreading_resistance_carrier_ohm": r1},
        "conductivity": cfg["conductivity"],
        "log10_resistance_histogram": {"bin_edges_log10_ohm": edges.tolist(), "counts": hist},
        "per_phase": per_phase,
        "connectivity": connectivity,
        "current_fields": field_info,
        "dc": dc,
        "estimated_memory_gb": need / 1e9,
    }
    return ds, summary


def isolation_ordering(connectivity_by_sample: dict, reference: str) -> dict:
    """Study-level check that the SSRM maps rank the samples' isolated carrier pixels as the
    connectivity geometry does. ``connectivity_by_sample``: {sample: ssrm.json "connectivity"};
    ``reference``: the key of the geometric fraction to rank against (e.g.
    ``descriptor_connectivity_CAM_surface_unconnected_z_start``: the descriptor over the whole
    face, or ``isolated_fraction_geometric_whole_volume``: the same pixels in the whole volume).

    A pair (a, b) agrees when the SSRM fractions differ in the reference's direction, or when the
    reference fractions do not differ beyond two standard errors of the SSRM fractions' pixel
    sampling, sqrt(p'(1−p')/n) each (n = mapped carrier pixels, p' = (p·n + 0.5)/(n + 1), so
    that a fraction of 0 or 1 still carries its sampling error). Returns {"pairs": [...],
    "consistent": bool | None (None: fewer than two samples with both numbers)}."""
    have = {s: c for s, c in connectivity_by_sample.items()
            if isinstance(c, dict) and c.get("isolated_fraction_ssrm") is not None
            and c.get(reference) is not None}
    names = sorted(have)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ca, cb = have[a], have[b]
            pa, pb = ca["isolated_fraction_ssrm"], cb["isolated_fraction_ssrm"]
            ra, rb = ca[reference], cb[reference]
            se = 0.0
            for p, c in ((pa, ca), (pb, cb)):
                n = max(int(c.get("n_carrier_surface_pixels") or 1), 1)
                q = (p * n + 0.5) / (n + 1)
                se += q * (1 - q) / n
            se = math.sqrt(se)
            resolved = abs(ra - rb) > 2 * se
            agree = (np.sign(pa - pb) == np.sign(ra - rb)) if resolved else True
            pairs.append({"samples": [a, b], "ssrm": [pa, pb], "reference": [ra, rb],
                          "two_standard_errors": 2 * se, "resolved": bool(resolved),
                          "agree": bool(agree)})
    return {"reference": reference, "pairs": pairs,
            "consistent": all(p["agree"] for p in pairs) if pairs else None}


def _unorient(arr: np.ndarray, axis: int, side: str) -> np.ndarray:
    out = arr[::-1] if side == "end" else arr
    return np.moveaxis(out, 0, axis)


def json_clean(value):
    """JSON-safe copy: numpy scalars/arrays to Python, non-finite floats (R = ∞ where no
    conducting path reaches the counter electrode) to None."""
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value
