"""The SSRM model: the conductivity field oriented with the scanned face at depth 0, its conduction
operator with the counter electrode only, the tip window and the tip positions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from voxelyte import conduction
from voxelyte.contract import axis_index, voxel_size_um
from voxelyte.errors import InputError
from voxelyte.ssrm.clusters import isolated_clusters


@dataclass
class Model:
    """Conduction model of one scanned volume, in the scanned-face frame (axis 0 = depth).

    Parameters
    ----------
    sigma : numpy.ndarray
        Oriented conductivity (depth, rows, cols), S cm⁻¹.
    voxel : tuple
        Oriented voxel size (d_depth, d_row, d_col), µm.
    network : numpy.ndarray of bool
        Voxels connected to the counter electrode (last plane).
    A : scipy.sparse.csr_matrix
        Conduction matrix with the counter electrode only (no tip).
    index_map : numpy.ndarray
        Unknown of each voxel, -1 off the network (face rows first, in C order).
    g_tip : numpy.ndarray
        (rows, cols): 2σA/d of the face voxels (S), 0 off the network.
    """

    sigma: np.ndarray
    voxel: tuple
    network: np.ndarray
    A: sp.csr_matrix
    index_map: np.ndarray
    g_tip: np.ndarray
    amg: object = field(default=None, repr=False)
    gmg: object = field(default=None, repr=False)
    deflation: object = field(default=None, repr=False)
    isolated: tuple = field(default=None, repr=False)   # (cluster ids, bounding slices)

    def isolated_clusters(self) -> tuple[np.ndarray, list]:
        """:func:`voxelyte.ssrm.isolated_clusters` of the network (computed once).

        Returns
        -------
        tuple
            (cluster id per voxel, bounding slices per cluster).
        """
        if self.isolated is None:
            self.isolated = isolated_clusters(np.where(self.network, self.sigma, 0.0))
        return self.isolated

    @property
    def face_shape(self):
        """(rows, cols) of the scanned face.

        Returns
        -------
        tuple of int
            ``sigma.shape[1:]``: the field's extent across the scanned face (axis 0 of the
            oriented field runs from the face to the counter electrode).
        """
        return self.sigma.shape[1:]


def build_model(sigma: np.ndarray, voxel) -> Model:
    """The conduction model of an oriented conductivity field.

    Parameters
    ----------
    sigma : numpy.ndarray
        Conductivity (S cm⁻¹), scanned face at index 0 of axis 0, counter electrode at the end.
    voxel : tuple of float
        Oriented voxel size (µm).

    Returns
    -------
    Model
    """
    net = conduction.percolating_network(sigma > 0, 0)
    face_shape = sigma.shape[1:]
    system = conduction.assemble(sigma, voxel, 0, inlet_mask=np.zeros(face_shape, bool),
                                 network=net)
    coef = voxel[1] * voxel[2] / voxel[0] * conduction.UM_TO_CM
    g_tip = np.where(net[0], 2.0 * sigma[0] * coef, 0.0)
    return Model(sigma, voxel, net, system.A, system.index_map, g_tip)


def model_of(sigma, voxel_size, scanned_axis="z", scanned_side: str = "start") -> Model:
    """The model of a (z, y, x) conductivity field scanned on one face.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Conductivity (S cm⁻¹).
    voxel_size : sequence of 3 float
        Voxel size (µm).
    scanned_axis : str or int
        Normal of the scanned face.
    scanned_side : {'start', 'end'}
        Which end of ``scanned_axis`` is scanned.

    Returns
    -------
    Model
    """
    a = axis_index(scanned_axis)
    vox = _orient_voxel(voxel_size_um(voxel_size), a)
    oriented = _orient(conduction.conductivity_array(sigma), a, scanned_side)
    return build_model(np.ascontiguousarray(oriented), vox)


def _orient(array: np.ndarray, axis: int, side: str) -> np.ndarray:
    """View with the scanned face at index 0 of axis 0."""
    out = np.moveaxis(array, axis, 0)
    return out[::-1] if side == "end" else out


def _unorient(arr: np.ndarray, axis: int, side: str) -> np.ndarray:
    """Inverse of :func:`_orient`."""
    out = arr[::-1] if side == "end" else arr
    return np.moveaxis(out, 0, axis)


def _orient_voxel(voxel, axis: int) -> tuple[float, float, float]:
    rest = [voxel[d] for d in range(3) if d != axis]
    return (voxel[axis], rest[0], rest[1])


def window_offsets(voxel_yx, *, tip_size_voxels: int = 1, disc_radius_um: float | None = None,
                   ) -> np.ndarray:
    """Pixel offsets of the tip window relative to the tip position.

    Parameters
    ----------
    voxel_yx : sequence of 2 float
        Face pixel size (rows, cols) in µm.
    tip_size_voxels : int
        Side of a square window (centred, the extra row/column of an even size on the + side).
    disc_radius_um : float, optional
        A disc window instead: every pixel whose centre lies within this radius of the
        position's centre.

    Returns
    -------
    numpy.ndarray, (k, 2)
        Offsets (dy, dx).
    """
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
    """Tip positions on the face.

    Parameters
    ----------
    face_shape : tuple of int
        (rows, cols) of the face.
    stride : int
        Every ``stride``-th pixel.
    region : [[r0, r1], [c0, c1]], optional
        Index ranges [start, stop); default the whole face.

    Returns
    -------
    numpy.ndarray, (n, 2)
        Positions (row, col).
    """
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


def window_resistance(Z: np.ndarray, g: np.ndarray, contact_ohm: float) -> float:
    """Tip resistance from the window block of A⁻¹: R = R_c + 1/(1ᵀ(D + Z)⁻¹1), D = diag(1/g).

    Parameters
    ----------
    Z : numpy.ndarray, (k, k)
        Window block of A⁻¹ (V per A).
    g : numpy.ndarray, (k,)
        Tip conductances of the window voxels (S).
    contact_ohm : float
        Contact resistance in series (Ω).

    Returns
    -------
    float
        R (Ω); inf for an empty window.
    """
    if g.size == 0:
        return math.inf
    M = Z + np.diag(1.0 / g)
    current = np.linalg.solve(M, np.ones(len(g))).sum()
    return contact_ohm + 1.0 / current
