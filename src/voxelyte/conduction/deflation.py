"""Deflation of the multigrid-CG by voxel clusters (one piecewise-constant vector per cluster).

References
----------
Saad, Yeung, Erhel, Guyomarc'h, SIAM J. Sci. Comput. 21, 1909 (2000): deflated CG.
Vuik, Segal, Meijerink, J. Comput. Phys. 152, 385 (1999): deflation for extreme contrasts.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .multigrid import GeometricMultigrid


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
        """μ = E⁻¹ Zᵀ A z (length k + 1, μ[0] = 0).

        Parameters
        ----------
        z : numpy.ndarray
            A grid vector of the grid shape (e.g. the preconditioned residual, V); only the
            faces between different clusters and the clusters' Dirichlet faces enter Zᵀ A z.

        Returns
        -------
        numpy.ndarray
            float64 coefficients μ of the cluster vectors, length k + 1 (entry 0, outside
            every cluster, is 0); ``add(p, μ, -1.0)`` then makes p A-orthogonal to Z.
        """
        zf = z.ravel()
        t = self.g * (zf[self.p].astype(np.float64) - zf[self.q])
        n = self.k + 1
        return self._solve_E(np.bincount(self.lp, t, n) - np.bincount(self.lq, t, n)
                             + np.bincount(self.dir_lab, self.dir_b * zf[self.dir_idx], n))

    def coarse_of(self, r) -> np.ndarray:
        """μ = E⁻¹ Zᵀ r (length k + 1, μ[0] = 0).

        Parameters
        ----------
        r : numpy.ndarray
            A grid vector of the grid shape, typically the residual (current, A); its entries
            are summed per cluster (Zᵀ r).

        Returns
        -------
        numpy.ndarray
            float64 coefficients μ of the cluster vectors, length k + 1 (entry 0, outside
            every cluster, is 0); ``add(x, μ)`` then makes the residual of x orthogonal to Z.
        """
        return self._solve_E(np.bincount(self.member_label, r.ravel()[self.members], self.k + 1))

    def _solve_E(self, s) -> np.ndarray:
        """E⁻¹ s for the cluster sums s (entry 0, outside every cluster, ignored and left 0)."""
        mu = np.zeros(self.k + 1)
        mu[1:] = self._coarse_solve(s[1:])
        return mu

    def add(self, x, mu, sign: float = 1.0) -> None:
        """x += sign · Z μ (in place).

        Parameters
        ----------
        x : numpy.ndarray
            Grid vector of the grid shape, updated in place (cast to its own dtype).
        mu : numpy.ndarray
            Cluster coefficients, length k + 1, as from :meth:`coarse_of` or
            :meth:`coarse_of_az` (entry 0 is ignored: voxels outside every cluster keep x).
        sign : float, default 1.0
            Factor of the correction; -1.0 subtracts Z μ.
        """
        xf = x.reshape(-1)
        xf[self.members] += (sign * mu[self.member_label]).astype(x.dtype)

