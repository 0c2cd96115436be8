"""Geometric multigrid on the voxel grid: 2×2×2 aggregation with scaled Galerkin coarse
networks, red-black Gauss–Seidel smoothing and an exact coarsest solve (dense Cholesky).

The operator of the percolating network is stored in "difference form" on the full voxel grid,
Dirichlet faces along the first array axis: (A x)_v = Σ_faces G_f (x_v − x_nb) + G_b,v x_v, with
one float32 (or float64) face-conductance array per axis (``g[a][v]`` joins v and its +1
neighbour; the last plane is the periodic wrap face, 0 unless periodic). Voxels outside the
network have empty rows and stay 0. The diagonal is always the float64 sum of the stored
conductances, so every row sum is exactly the Dirichlet conductance (no spurious leak to ground).
The coarse operator P^T A P for piecewise-constant P is again a 7-point network, scaled by
COARSE_SCALE per level (unsmoothed aggregation over-estimates the coarse stiffness about
twofold).

References
----------
Braess, Numer. Math. 72 (1995); Notay, ETNA 37 (2010): scaled aggregation coarse grids.
"""
from __future__ import annotations

import numpy as np

from .kernels import _coarse_faces, _gmg_matvec, _gs_color, _prolong_add, _residual_restrict

#: Scale of the Galerkin coarse networks (the unsmoothed aggregation's stiffness, halved).
COARSE_SCALE = 0.5
#: The coarsest level (at most this many cells) is solved exactly (dense Cholesky).
COARSEST_CELLS = 1500
#: Red-black Gauss–Seidel sweeps before and after the coarse correction: V(2,2) needs about half
#: the CG iterations of V(1,1) on porous media at a lower total cost.
SMOOTHING_SWEEPS = 2
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
    first and last plane of the first array axis, and its multigrid V-cycle (see the module
    docstring). ``faces``: (g0, g1, g2) float32 arrays of the grid shape (0 across any face
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
            c = _Level(cg, _coarse_plane(f.b_in, coarse_scale),
                       _coarse_plane(f.b_out, coarse_scale))
            c.z = np.zeros(cshape, np.float32)
            c.rhs = np.zeros(cshape)
            self.levels.append(c)
        if len(self.levels) > 1:
            last = self.levels[-1]
            self._chol = np.linalg.cholesky(_dense_operator(*last.g, last.b_in, last.b_out))

    def matvec(self, x, y) -> float:
        """y = A x (float64); returns x·Ax.

        Parameters
        ----------
        x : numpy.ndarray
            Potentials (V) on the finest grid, of the grid shape.
        y : numpy.ndarray
            float64 output of the grid shape, overwritten with A x: the net current (A) out of
            each voxel, Dirichlet faces held at 0 V.

        Returns
        -------
        float
            The energy product x·A x (W at potentials in V).
        """
        f = self.levels[0]
        return _gmg_matvec(x, *f.g, f.b_in, f.b_out, y)

    def vcycle(self, r, z) -> None:
        """z ≈ A⁻¹ r by one symmetric multigrid cycle (z is overwritten).

        Parameters
        ----------
        r : numpy.ndarray
            Right-hand side on the finest grid (a residual current, A), of the grid shape.
        z : numpy.ndarray
            Output of the grid shape (float32 in the CG), overwritten with the V(ν, ν) cycle's
            approximation of A⁻¹ r (V); red-black Gauss–Seidel before and after the coarse
            correction in reverse order, so the preconditioner is symmetric.
        """
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

