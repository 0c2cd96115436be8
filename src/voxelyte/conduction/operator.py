"""The conduction operator of a voxel network: the assembled CSR system (:func:`assemble`) and
the matrix-free multigrid operator on the voxel grid (:func:`grid_operator`)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from voxelyte.contract import axis_index, voxel_size_um as checked_voxel
from voxelyte.errors import InputError

from .conductances import _coefficients, _sigma_any, conductivity_array, percolating_network
from .kernels import _fill, _grid_faces, _row_counts
from .multigrid import COARSE_SCALE, GeometricMultigrid


def _face_mask(mask, shape) -> np.ndarray:
    """A 2D contact mask of a Dirichlet face as bool, checked against the face's shape."""
    fm = np.asarray(mask, bool)
    if fm.shape != shape:
        raise InputError("face mask has the wrong shape", field="inlet_mask/outlet_mask",
                         expected=str(shape), found=fm.shape)
    return fm


def _boundary_conductances(sigma, idx, a, coef, n, face_mask, end):
    """Dirichlet conductances 2 σ A / d (S) of the face voxels at index 0 (end=0) or n-1
    (end=-1)."""
    g = np.zeros(n)
    rows = np.take(idx, end, axis=a)
    sig = np.take(sigma, end, axis=a)
    sel = rows >= 0
    if face_mask is not None:
        sel &= _face_mask(face_mask, rows.shape)
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


def _csr(idx, sigma, coef, a, periodic, g_in, g_out, n, dtype) -> sp.csr_matrix:
    """The CSR matrix of the rows in ``idx`` (two kernel passes: row lengths, then entries)."""
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
    return A


def assemble(sigma, voxel_size_um, axis, *, potential_in: float = 1.0, potential_out: float = 0.0,
             periodic: bool = False, inlet_mask=None, outlet_mask=None,
             dtype=np.float64, network=None) -> LinearSystem:
    """Assemble A x = b (Kirchhoff's law per voxel) over the conducting voxels connected to both
    Dirichlet faces of ``axis``.

    Row i: Σ_j G_ij (x_i − x_j) + G_in,i (x_i − V_in) + G_out,i (x_i − V_out) = 0, with
    G_ij = 2σ_iσ_j/(σ_i+σ_j)·A_face/d and G_b = 2σ_i·A_face/d (× 1e-4: S); each Dirichlet face
    sits half a voxel from the centres of the voxels next to it.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Voxel conductivities (S cm⁻¹).
    voxel_size_um : sequence of 3 float
    axis : str or int
        Inlet at index 0, outlet at index n-1 of this axis.
    potential_in, potential_out : float
        Potentials (V) of the inlet and outlet faces.
    periodic : bool
        The other outer faces are periodic (else no flux).
    inlet_mask, outlet_mask : array_like of bool, optional
        2D masks (the face's shape) restricting the Dirichlet contact (e.g. an SSRM tip window).
    dtype : numpy dtype
        Matrix values, float64 or float32.
    network : array_like of bool, optional
        Precomputed mask of the voxels to keep (skips the labelling).

    Returns
    -------
    LinearSystem
        CSR with int32 indices (int64 above 2³¹ entries).
    """
    sigma = conductivity_array(sigma)
    voxel = checked_voxel(voxel_size_um)
    a = axis_index(axis)
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
    A = _csr(idx, sigma, coef, a, periodic, g_in, g_out, n, dtype)
    b = g_in * potential_in + g_out * potential_out
    return LinearSystem(A, b, idx, g_in, g_out, a, float(potential_in), float(potential_out))


def grid_operator(sigma, voxel_size_um, network, *, periodic: bool = False, inlet_mask=None,
                  outlet_mask=None, coarse_scale: float = COARSE_SCALE,
                  dtype=np.float32) -> GeometricMultigrid:
    """The matrix-free operator and multigrid hierarchy of a voxel network, Dirichlet faces at
    the first and last plane of the first array axis (transpose the field for another axis).

    Parameters
    ----------
    sigma : array_like, (n0, n1, n2)
        Voxel conductivities (S cm⁻¹), any numeric dtype.
    voxel_size_um : sequence of 3 float
        Voxel size along the array axes (µm).
    network : array_like of bool
        The voxels in the system (e.g. :func:`percolating_network` along axis 0).
    periodic : bool
        The other two axes wrap around.
    inlet_mask, outlet_mask : array_like of bool, optional
        2D masks restricting the Dirichlet contact.
    coarse_scale : float
        Scale of the Galerkin coarse networks.
    dtype : numpy dtype
        Storage of the conductances (float32: 6 bytes less per voxel, σ_eff within ~1e-7).

    Returns
    -------
    GeometricMultigrid
        Same conductances as :func:`assemble`.
    """
    sigma = _sigma_any(sigma)
    coef = _coefficients(checked_voxel(voxel_size_um))
    net = np.ascontiguousarray(network, dtype=bool)
    wrap = np.array([False, bool(periodic), bool(periodic)])
    faces = tuple(np.empty(sigma.shape, dtype) for _ in range(3))
    _grid_faces(sigma, net, coef, wrap, *faces)
    planes = []
    for end, mask in ((0, inlet_mask), (-1, outlet_mask)):
        on = net[end]
        if mask is not None:
            on = on & _face_mask(mask, on.shape)
        planes.append(np.where(on, 2.0 * sigma[end].astype(np.float64) * coef[0],
                               0.0).astype(dtype))
    return GeometricMultigrid(faces, planes[0], planes[1], coarse_scale=coarse_scale)
