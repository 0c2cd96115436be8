"""The resistance map of a scanned face: the exact method (one Schur complement of the whole
volume on all window pixels) or the tiled one, chosen by cost; the memory estimate."""
from __future__ import annotations

import math
import time

import numpy as np

from voxelyte.contract import axis_index
from voxelyte.errors import InputError
from voxelyte.ssrm.model import Model, model_of, scan_positions, window_offsets
from voxelyte.ssrm.tiled import PROBE_CHUNK, tiled_resistances
from voxelyte.ssrm.tip import DEFAULT_RTOL

#: Rough memory per voxel (bytes) of the global operator (CSR), index map, σ, multigrid
#: hierarchy and fields (measured peak RSS of whole tiled maps: 570-750 B per voxel).
BYTES_PER_VOXEL = 400
#: Default depth of a tile's sub-volume, in halos.
DEPTH_PER_HALO = 4
#: The exact method is chosen by ``auto`` up to this many scanned window pixels; beyond, the
#: face-last factorisation's dense fronts grow as the face's square and tiling is faster.
DIRECT_MAX_FACE_PIXELS = 4096
#: ... and up to this many voxels (the factorisation's flops grow as n², so a larger volume is
#: faster tiled even where the memory would fit).
DIRECT_MAX_VOXELS = 300_000
METHODS = ("auto", "direct", "tiled")


def resistance_map(sigma, voxel_size_um, *, positions=None, stride: int = 1, region=None,
                   tip_size_voxels: int = 1, disc_radius_um: float | None = None,
                   contact_resistance_ohm: float = 0.0, scanned_axis="z",
                   scanned_side: str = "start", method: str = "auto", tile_voxels: int = 32,
                   halo_voxels: int = 16, depth_voxels: int | None = None,
                   rtol: float = DEFAULT_RTOL, progress=None, max_memory_gb: float = 16.0,
                   model: Model | None = None) -> dict:
    """SSRM resistance R (Ω) for every tip position.

    Parameters
    ----------
    sigma : array_like, (z, y, x)
        Conductivity (S cm⁻¹); ignored when ``model`` is given.
    voxel_size_um : sequence of 3 float
        Voxel size (µm); ignored when ``model`` is given.
    positions : numpy.ndarray, (n, 2), optional
        Tip positions on the scanned face; default every ``stride``-th pixel of ``region``
        (:func:`voxelyte.ssrm.scan_positions`).
    stride, region
        See :func:`voxelyte.ssrm.scan_positions`.
    tip_size_voxels, disc_radius_um
        The tip window (:func:`voxelyte.ssrm.window_offsets`).
    contact_resistance_ohm : float
        Contact resistance in series (Ω).
    scanned_axis, scanned_side
        The scanned face (:func:`voxelyte.ssrm.model_of`).
    method : {'auto', 'direct', 'tiled'}
        ``direct``: one Schur complement of the whole volume on all window pixels (exact);
        ``tiled``: tile sub-volumes and the probe far field (:func:`tiled_resistances`);
        ``auto``: :func:`choose_method`.
    tile_voxels, halo_voxels, depth_voxels : int
        The tiles (depth default DEPTH_PER_HALO × halo).
    rtol : float
        Relative residual of the probe solves.
    progress : callable, optional
        ``progress(done, total)``.
    max_memory_gb : float
        Memory bound of ``auto``'s choice.
    model : Model, optional
        A model built before (:func:`voxelyte.ssrm.model_of`).

    Returns
    -------
    dict
        positions, resistance_ohm (n,), method, offsets, model, time_s and the tiling's
        solver info (n_tiles, n_probe_solves, probe_time_s, factor_time_s, ...).
    """
    t0 = time.perf_counter()
    if scanned_side not in ("start", "end"):
        raise InputError("unknown scanned side", field="ssrm.scanned_face.side",
                         expected="start or end", found=scanned_side)
    if model is None:
        model = model_of(sigma, voxel_size_um, scanned_axis, scanned_side)
    face_shape = model.face_shape
    if positions is None:
        positions = scan_positions(face_shape, stride=stride, region=region)
    positions = np.asarray(positions, np.int64).reshape(-1, 2)
    offsets = window_offsets(model.voxel[1:], tip_size_voxels=tip_size_voxels,
                             disc_radius_um=disc_radius_um)
    nz = model.sigma.shape[0]
    depth = max(1, min(nz, int(depth_voxels or DEPTH_PER_HALO * halo_voxels)))
    if method == "auto":   # exact where it is cheap, else tiled (see choose_method)
        wins = np.unique(((positions[:, None, 0] + offsets[None, :, 0]) * face_shape[1] +
                          positions[:, None, 1] + offsets[None, :, 1]).ravel()).size
        method = choose_method(model.sigma.shape, wins, max_memory_gb)
    if method not in ("direct", "tiled"):
        raise InputError("unknown SSRM method", field="ssrm.method",
                         expected="auto, direct or tiled", found=method)
    if method == "direct":      # one tile whose sub-volume is the whole volume
        tile_voxels = max(face_shape) + 1
        halo_voxels, depth = max(face_shape), nz
    R, info = tiled_resistances(model, positions, offsets,
                                contact_resistance_ohm=contact_resistance_ohm,
                                tile_voxels=tile_voxels, halo_voxels=halo_voxels,
                                depth_voxels=depth, rtol=rtol, progress=progress)
    info = {"method": method, **info}
    info.update(positions=positions, resistance_ohm=R, time_s=time.perf_counter() - t0,
                offsets=offsets, model=model)
    return info


def choose_method(shape_zyx, face_unknowns: int, max_memory_gb: float) -> str:
    """The method of ``auto``.

    Parameters
    ----------
    shape_zyx : tuple of int
        Shape of the scanned volume.
    face_unknowns : int
        Scanned window pixels.
    max_memory_gb : float

    Returns
    -------
    str
        ``direct`` (the exact Schur complement) where its memory estimate fits
        ``max_memory_gb``, at most DIRECT_MAX_FACE_PIXELS window pixels are scanned and the
        volume has at most DIRECT_MAX_VOXELS voxels, else ``tiled``.
    """
    n = int(np.prod(shape_zyx))
    fill = 6.0 * n ** (4.0 / 3.0) * 12 * 1.5
    direct = n * BYTES_PER_VOXEL + fill + 3 * 8 * face_unknowns ** 2
    if (face_unknowns <= DIRECT_MAX_FACE_PIXELS and n <= DIRECT_MAX_VOXELS
            and direct <= max_memory_gb * 1e9):
        return "direct"
    return "tiled"


def estimate_memory_bytes(shape_zyx, *, scanned_axis="z", stride: int = 1, region=None,
                          tip_size_voxels: int = 1, method: str = "auto",
                          tile_voxels: int = 32, halo_voxels: int = 16,
                          depth_voxels: int | None = None, max_memory_gb: float = 16.0) -> int:
    """Peak memory estimate of a resistance map.

    The global operator, AMG and fields (BYTES_PER_VOXEL per voxel); the sparse factorisation
    of the volume (direct) or of one tile's sub-volume (tiled), whose 3D nested-dissection fill
    is ≈ 6 n^(4/3) entries, × 12 B with indices and a 1.5 working margin; the dense face block
    of A⁻¹ (3 copies of (scanned window pixels)²); for tiled, the probe solutions.

    Parameters
    ----------
    shape_zyx : tuple of int
        Shape of the scanned volume.
    scanned_axis, stride, region, tip_size_voxels, method, tile_voxels, halo_voxels,
    depth_voxels, max_memory_gb
        As for :func:`resistance_map` (a square tip of ``tip_size_voxels``).

    Returns
    -------
    int
        Bytes.
    """
    n = int(np.prod(shape_zyx))
    a = axis_index(scanned_axis)
    face = [shape_zyx[d] for d in range(3) if d != a]
    stride = max(1, int(stride))
    if region:
        face = [max(0, min(face[k], r[1]) - r[0]) for k, r in enumerate(region)]
    positions = math.ceil(face[0] / stride) * math.ceil(face[1] / stride)
    w = int(tip_size_voxels) ** 2
    if method == "auto":
        method = choose_method(shape_zyx, positions * w, max_memory_gb)
    probes = 0.0
    if method == "tiled":
        t, h = int(tile_voxels), int(halo_voxels)
        depth = min(shape_zyx[a], depth_voxels or DEPTH_PER_HALO * h)
        sub = min(n, (t + 2 * h) ** 2 * depth)
        face_unknowns = min(positions, math.ceil(t / stride) ** 2) * w
        # probe right-hand sides and solutions (2 dense copies), then their near-face rows
        n_probes = (math.ceil(face[0] / t) + 1) * (math.ceil(face[1] / t) + 1)
        probes = 8.0 * n * (2 * min(n_probes, PROBE_CHUNK) + n_probes * depth / shape_zyx[a])
    else:
        sub, face_unknowns = n, positions * w
    fill = 6.0 * sub ** (4.0 / 3.0) * 12 * 1.5
    return int(n * BYTES_PER_VOXEL + fill + 3 * 8 * face_unknowns ** 2 + probes)
