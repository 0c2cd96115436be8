"""Conductivity fields, face conductances (harmonic mean × face area / centre distance) and the
percolating network (face-connected clusters that touch both Dirichlet faces)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from voxelyte.contract import axis_index, voxel_size_um as checked_voxel
from voxelyte.errors import InputError

#: cm per µm: G [S] = σ [S cm⁻¹] · area [µm²] / length [µm] · UM_TO_CM.
UM_TO_CM = 1e-4


def _harmonic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2ab/(a+b), 0 where either is 0."""
    s = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a > 0) & (b > 0), 2.0 * a * b / np.where(s > 0, s, 1.0), 0.0)


def _coefficients(voxel: tuple[float, float, float]) -> np.ndarray:
    """Face area / centre distance per axis, × 1e-4 cm µm⁻¹ (S per S cm⁻¹)."""
    dz, dy, dx = voxel
    return np.array([dy * dx / dz, dz * dx / dy, dz * dy / dx]) * UM_TO_CM


def _pair_slices(a: int) -> tuple[tuple, tuple]:
    """Index tuples of the lower (0..n-2) and upper (1..n-1) voxel of each inner face along a."""
    lo = [slice(None)] * 3
    lo[a] = slice(0, -1)
    hi = [slice(None)] * 3
    hi[a] = slice(1, None)
    return tuple(lo), tuple(hi)


def _check_field(sigma) -> np.ndarray:
    """``sigma`` as an array, checked: 3D, non-empty, numeric."""
    sigma = np.asarray(sigma)
    if sigma.ndim != 3 or min(sigma.shape) < 1:
        raise InputError("conductivity field must be a non-empty 3D array (z, y, x)", field="sigma",
                         expected="3 dimensions", found=sigma.shape)
    if sigma.dtype.kind not in "biuf":
        raise InputError("conductivity field must be numeric", field="sigma",
                         expected="S cm⁻¹ as numbers", found=str(sigma.dtype))
    return sigma


def conductivity_array(sigma) -> np.ndarray:
    """A checked, C-contiguous float64 conductivity field.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Voxel conductivities in S cm⁻¹ (numbers, finite, >= 0).

    Returns
    -------
    numpy.ndarray
        float64, C-contiguous; bad input raises InputError.
    """
    sigma = np.ascontiguousarray(_check_field(sigma), dtype=np.float64)
    if not np.all(np.isfinite(sigma)) or sigma.min() < 0:
        raise InputError("conductivities must be finite and >= 0", field="sigma",
                         expected="σ >= 0 S cm⁻¹", found=f"min {np.nanmin(sigma)}")
    return sigma


def _sigma_any(sigma) -> np.ndarray:
    """Validated C-contiguous conductivity field in its own numeric dtype (no float64 copy:
    bool → uint8 view, float32/uint8 stay as they are)."""
    sigma = np.ascontiguousarray(_check_field(sigma))
    if sigma.dtype == bool:
        sigma = sigma.view(np.uint8)
    if sigma.dtype.kind == "f" and not np.all(np.isfinite(sigma)):
        raise InputError("conductivities must be finite and >= 0", field="sigma",
                         expected="σ >= 0 S cm⁻¹", found="NaN or inf")
    if sigma.dtype.kind in "if" and sigma.min() < 0:
        raise InputError("conductivities must be finite and >= 0", field="sigma",
                         expected="σ >= 0 S cm⁻¹", found=f"min {sigma.min()}")
    return sigma


def face_conductances(sigma, voxel_size_um, *, periodic: bool = False):
    """Conductances (S) of the inner faces between face neighbours.

    G = 2 σ_i σ_j / (σ_i + σ_j) · A_face / d · 1e-4 (σ in S cm⁻¹, lengths µm).

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Voxel conductivities (S cm⁻¹).
    voxel_size_um : sequence of 3 float
        (dz, dy, dx) in µm.
    periodic : bool
        Each array gets one more plane at the end: the face that joins the last and the first
        plane (the periodic side walls).

    Returns
    -------
    tuple of numpy.ndarray
        ``(gz, gy, gx)`` with shapes (nz-1, ny, nx), (nz, ny-1, nx), (nz, ny, nx-1) (one more
        along their axis when periodic); ``g[i]`` joins voxels i and i+1 along that axis.
    """
    sigma = conductivity_array(sigma)
    coef = _coefficients(checked_voxel(voxel_size_um))
    out = []
    for a in range(3):
        if periodic:
            base, other = sigma, np.roll(sigma, -1, axis=a)
        else:
            lo, hi = _pair_slices(a)
            base, other = sigma[lo], sigma[hi]
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
    """The conducting voxels whose face-connected (6-neighbourhood) cluster touches both
    Dirichlet faces of ``axis`` (inlet = index 0, outlet = index n-1).

    Parameters
    ----------
    conducting : array_like of bool, (z, y, x)
    axis : str or int
    periodic : bool
        Clusters connect across the side walls (the two other axes).
    inlet_mask, outlet_mask : array_like of bool, optional
        2D masks of the faces: only these parts of a face count as contacts.

    Returns
    -------
    numpy.ndarray of bool
    """
    lab, n = _components(conducting)
    return _network_from_labels(lab, n, axis_index(axis), periodic, inlet_mask, outlet_mask)
