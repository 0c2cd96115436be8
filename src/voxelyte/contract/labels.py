"""Integer label volumes: shape, data, slab-wise reading, volume fractions, distances."""
from __future__ import annotations

import math

import numpy as np

from voxelyte.contract.phases import phase_table
from voxelyte.errors import InputError

#: Label value of a voxel that holds no phase and is not scored (outside the image or the truth).
INVALID_LABEL = 255


def volume_shape(labels) -> tuple[int, int, int]:
    """Shape ``(nz, ny, nx)`` of a non-empty 3D array (numpy, dask or xarray).

    Parameters
    ----------
    labels : array_like
        The volume.

    Returns
    -------
    tuple of int
        ``(nz, ny, nx)``; anything but a non-empty 3D array raises InputError.
    """
    shape = tuple(int(s) for s in np.shape(labels)) if not hasattr(labels, "shape") \
        else tuple(int(s) for s in labels.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("labels must be a non-empty 3D array (z, y, x)", field="labels",
                         expected="3 dimensions", found=shape)
    return shape


def label_data(labels):
    """The underlying numpy / dask array of numpy, dask or xarray integer labels (no copy).

    Parameters
    ----------
    labels : array_like of int
        numpy, dask or xarray labels.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        The data, not loaded; a non-integer dtype raises InputError.
    """
    data = getattr(labels, "data", labels) if hasattr(labels, "dims") else labels
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.integer):
        raise InputError("labels must be an integer array", field="labels",
                         expected="integer dtype", found=str(data.dtype))
    return data


def load_labels(labels) -> np.ndarray:
    """Integer labels of numpy, dask or xarray input as one numpy array in memory.

    Parameters
    ----------
    labels : array_like of int
        numpy, dask or xarray labels.

    Returns
    -------
    numpy.ndarray
        The whole volume (numpy input is returned without a copy).
    """
    data = label_data(labels)
    if isinstance(data, np.ndarray):
        return data
    return np.asarray(data.compute() if hasattr(data, "compute") else data)


def iter_blocks(labels, axis: int = 0, size: int = 64, start: int = 0, stop: int | None = None,
                step: int = 1):
    """Blocks of planes along one axis; dask / xarray input is read block by block.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    axis : int
        Axis index along which to cut blocks.
    size : int
        Planes per block (rounded down to a multiple of ``step``, at least ``step``).
    start, stop : int
        Plane range (``stop`` None: to the end).
    step : int
        Keep every step-th plane (block starts are multiples of ``step``).

    Yields
    ------
    tuple of (int, numpy.ndarray)
        ``(first index, numpy block)``.
    """
    data = label_data(labels)
    n = data.shape[axis] if stop is None else stop
    size = max(step, size - size % step)
    for a in range(start, n, size):
        b = min(a + size, n)
        index = [slice(None)] * 3
        index[axis] = slice(a, b, step)
        block = data[tuple(index)]
        if not isinstance(block, np.ndarray):
            block = np.asarray(block.compute() if hasattr(block, "compute") else block)
        yield a, block


def volume_fractions(labels, phases, *, slab_voxels: int = 64,
                     unassigned: bool = False) -> dict[str, float]:
    """Voxel-count volume fraction of every phase, φ_i = N_i / N.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray; read in slabs of ``slab_voxels`` planes.
    phases : dict or PhaseTable
        The sample's phase table.
    slab_voxels : int
        Planes read at a time (memory).
    unassigned : bool
        Add the key ``"unassigned"``: the fraction of voxels whose label is in no phase.

    Returns
    -------
    dict
        Phase name -> volume fraction. Label values of no phase count in N only.

    References
    ----------
    Minnmann et al., J. Electrochem. Soc. (2024): volume fractions by voxel counting.
    """
    table = phase_table(phases)
    shape = volume_shape(labels)
    counts = np.zeros(256, dtype=np.int64)
    for _, block in iter_blocks(labels, 0, slab_voxels):
        bc = np.bincount(block.ravel().astype(np.int64, copy=False))
        if bc.size > counts.size:
            counts = np.pad(counts, (0, bc.size - counts.size))
        counts[:bc.size] += bc
    total = float(math.prod(shape))
    out = {name: float(counts[spec["label"]] / total) if spec["label"] < counts.size else 0.0
           for name, spec in table.items()}
    if unassigned:
        out["unassigned"] = float(max(0.0, 1.0 - sum(out.values())))
    return out


def distance_um(mask: np.ndarray, voxel) -> np.ndarray:
    """Euclidean distance (µm) of each True voxel to the nearest False voxel.

    The box boundary is not background. Exact anisotropic EDT (``edt`` package).

    Parameters
    ----------
    mask : numpy.ndarray of bool, (z, y, x)
        The phase.
    voxel : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.

    Returns
    -------
    numpy.ndarray of float32
        Distance in µm (0 outside the mask). Without any background, every voxel holds the box
        extent (largest n · voxel size).

    References
    ----------
    Felzenszwalb & Huttenlocher 2012, Theory Comput. 8, 415 (distance transform).
    """
    import edt

    if mask.all():                       # no background at all: distance = the box extent
        return np.full(mask.shape, max(n * v for n, v in zip(mask.shape, voxel)), np.float32)
    return edt.edt(np.ascontiguousarray(mask), anisotropy=tuple(voxel), black_border=False,
                   parallel=1)
