"""Label clean-up: the false middle-phase rim between the outer phases (removal, rim debris, rim
thickness), small islands and label smoothing."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from voxelyte.contract import distance_um, phase_table
from voxelyte.errors import InputError
from voxelyte.segment.settings import INVALID


def _outer_distances(labels: np.ndarray, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (voxels) from every voxel to the nearest ``low`` and the nearest
    ``high`` voxel of ``labels``: (d_low, d_high), 0 on the phase itself."""
    unit = (1.0,) * labels.ndim
    return distance_um(labels != low, unit), distance_um(labels != high, unit)


def remove_middle_rim(labels: np.ndarray, gradient: np.ndarray, *, low: int, middle: int,
                      high: int, bright: np.ndarray, threshold: float, max_width_px: int = 2,
                      gradient_threshold: float | None = None, max_iterations: int = 1,
                      middle_band: tuple[float, float] | None = None
                      ) -> tuple[np.ndarray, list[int]]:
    """Gradient-aware removal of the false middle-phase rim between the darkest and the
    brightest phase.

    A middle voxel is rim where the middle layer is at most ``max_width_px`` thick
    (``t = d_low + d_high - 1 <= max_width_px + 0.5``) and the gradient exceeds
    ``gradient_threshold``; it goes to the nearer outer phase (ties: ``high`` if ``bright >=
    threshold``). Passes after the first take only voxels whose intensity lies outside
    ``middle_band``.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels (z, y, x).
    gradient : numpy.ndarray
        Intensity gradient magnitude.
    low, middle, high : int
        Labels of the darkest, middle and brightest phase.
    bright : numpy.ndarray
        Intensity (tie-break and band test).
    threshold : float
        Intensity above which a tie goes to ``high``.
    max_width_px : int
        Thickest rim removed (0: nothing).
    gradient_threshold : float, optional
        Default: the 25th percentile of the gradient over the middle phase.
    max_iterations : int
        Passes at most (only with ``middle_band``).
    middle_band : (float, float), optional
        Intensity band of the middle phase.

    Returns
    -------
    labels : numpy.ndarray
    passes : list of int
        Voxels relabelled per pass.

    References
    ----------
    Cooper et al., npj Comput. Mater. 8, 222 (2022): the blurred low-high edge passes
    through the middle grey level.
    """
    out = labels.copy()
    if max_width_px < 1:
        return out, []
    if gradient_threshold is None and (out == middle).any():
        gradient_threshold = float(np.percentile(gradient[out == middle], 25))
    unexplained = None if middle_band is None else \
        (bright < middle_band[0]) | (bright > middle_band[1])
    passes = []
    for i in range(max_iterations if unexplained is not None else 1):
        mid = out == middle
        if not mid.any() or not (out == low).any() or not (out == high).any():
            break
        d_low, d_high = _outer_distances(out, low, high)
        rim = mid & (d_low + d_high - 1.0 <= max_width_px + 0.5) \
            & (gradient > gradient_threshold)
        if i > 0:
            rim &= unexplained
        n = int(rim.sum())
        if n == 0:
            break
        to_high = rim & ((d_high < d_low) | ((d_high == d_low) & (bright >= threshold)))
        out[to_high] = high
        out[rim & ~to_high] = low
        passes.append(n)
    return out, passes


def _small_components(mask: np.ndarray, max_voxels: int, pad: int):
    """For each face-connected component of ``mask`` with fewer than ``max_voxels`` voxels:
    (box: its bounding box grown by ``pad`` voxels, the component within the box, its
    face-neighbour shell within the box). The components are found once, before the first."""
    comp, n = ndimage.label(mask)
    if n == 0:
        return
    sizes = np.bincount(comp.ravel())
    boxes = ndimage.find_objects(comp)
    struct = ndimage.generate_binary_structure(mask.ndim, 1)
    for idx in np.flatnonzero(sizes[1:] < max_voxels) + 1:
        box = tuple(slice(max(b.start - pad, 0), b.stop + pad) for b in boxes[idx - 1])
        piece = comp[box] == idx
        yield box, piece, ndimage.binary_dilation(piece, struct) & ~piece


def remove_rim_fragments(labels: np.ndarray, *, low: int, middle: int, high: int,
                         max_voxels: int) -> tuple[np.ndarray, dict]:
    """Relabel rim debris: small middle-phase pieces touching both outer phases.

    Face-connected middle-phase components with fewer than ``max_voxels`` voxels that touch
    both outer phases (face neighbours) go voxel by voxel to the nearer outer phase; at equal
    distance to the one the piece touches on more faces.

    Parameters
    ----------
    labels : numpy.ndarray
    low, middle, high : int
        Labels of the darkest, middle and brightest phase.
    max_voxels : int
        Pieces smaller than this are debris (< 2: none).

    Returns
    -------
    labels : numpy.ndarray
    counts : dict
        ``{fragments, voxels}`` relabelled.
    """
    out = labels.copy()
    if max_voxels < 2 or not (out == low).any() or not (out == high).any():
        return out, {"fragments": 0, "voxels": 0}
    n_frag = n_vox = 0
    for box, piece, shell in _small_components(out == middle, max_voxels, pad=4):
        around = out[box][shell]
        n_low, n_high = int((around == low).sum()), int((around == high).sum())
        if n_low == 0 or n_high == 0:
            continue
        d_low, d_high = (d[piece] for d in _outer_distances(out[box], low, high))
        tie = high if n_high >= n_low else low
        out[box][piece] = np.where(d_high < d_low, high, np.where(d_low < d_high, low, tie))
        n_frag += 1
        n_vox += int(piece.sum())
    return out, {"fragments": n_frag, "voxels": n_vox}


def _distance_outside_px(shape: tuple, z0: int, z1: int, nz: int) -> np.ndarray:
    """Distance (voxels) from each voxel of slices ``z0:z1`` of a (nz, ...) volume to the
    nearest voxel outside the volume: ``min over axes of min(i + 1, n - i)``."""
    near = None
    for axis, n in enumerate((nz, *shape[1:])):
        i = np.arange(z0, z1) if axis == 0 else np.arange(n)
        d = np.minimum(i + 1, n - i).astype(np.float32)
        d = d.reshape([-1 if k == axis else 1 for k in range(len(shape))])
        near = d if near is None else np.minimum(near, d)
    return np.broadcast_to(near, (z1 - z0, *shape[1:]))


def _true_contact(sel, truth, a, b, core, ball, low, middle, high, exclude_unresolved):
    """``sel`` restricted to true low-high contacts of ``truth`` (slab ``a:b``, ``core``)."""
    cube = np.ones((3,) * truth.ndim, dtype=bool)
    t = truth[a:b]
    sel &= ~ndimage.binary_dilation(t == middle, cube)[core] & (t[core] != INVALID)
    sel &= ndimage.binary_dilation(t == low, cube)[core]
    sel &= ndimage.binary_dilation(t == high, cube)[core]
    if exclude_unresolved and (t == middle).any():
        reach = ndimage.distance_transform_cdt(t != middle, metric="chessboard")
        sel &= reach[core] > np.ceil(ball - 1e-6)
    return sel


def rim_thickness(labels: np.ndarray, *, low: int, middle: int, high: int,
                  truth: np.ndarray | None = None, reach_px: float = 3.0,
                  slab_z: int = 64, exclude_unresolved: bool = True) -> np.ndarray:
    """Thickness (voxels) of the middle-phase rim at each middle voxel between the outer phases.

    ``t = d_low + d_high - 1`` (distances to the nearest ``low`` and ``high`` voxel, both
    <= ``reach_px``): 1 for a one-voxel rim (1.41 across a corner), 2 for two voxels. With
    ``truth``, only voxels at a true low-high contact count (no true middle phase in the
    3x3x3 neighbourhood). With ``exclude_unresolved``, voxels whose ball of radius
    ``r = max(d_low, d_high)`` reaches beyond the volume's faces, or (with ``truth``) whose
    cube of half-width ``ceil(r)`` holds true middle phase, are left out. Computed in z-slabs
    with a halo of ``ceil(reach_px) + 1`` slices (exact, bounded memory).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels (z, y, x).
    low, middle, high : int
        Labels of the darkest, middle and brightest phase.
    truth : numpy.ndarray, optional
        Ground-truth labels on the same grid (``INVALID`` = not scored).
    reach_px : float
        Largest distance to either outer phase.
    slab_z : int
        Slices per slab.
    exclude_unresolved : bool

    Returns
    -------
    numpy.ndarray
        Thickness of every counted voxel.
    """
    nz = labels.shape[0]
    halo = int(math.ceil(reach_px)) + 1
    found = []
    for z0 in range(0, nz, int(slab_z)):
        a, b = max(0, z0 - halo), min(nz, z0 + int(slab_z) + halo)
        core = slice(z0 - a, z0 - a + min(int(slab_z), nz - z0))
        lab = labels[a:b]
        mid = lab == middle
        if not mid[core].any() or not (lab == low).any() or not (lab == high).any():
            continue
        d_low, d_high = _outer_distances(lab, low, high)
        sel = (mid & (d_low <= reach_px) & (d_high <= reach_px))[core]
        ball = np.maximum(d_low[core], d_high[core])
        if exclude_unresolved:
            sel &= ball <= _distance_outside_px(labels.shape, z0, z0 + sel.shape[0], nz)
        if truth is not None:
            sel = _true_contact(sel, truth, a, b, core, ball, low, middle, high,
                                exclude_unresolved)
        found.append((d_low[core] + d_high[core] - 1.0)[sel])
    return np.concatenate(found) if found else np.zeros(0)


def min_island_voxels(min_island_um3, phases: dict, voxel_size_um) -> dict[int, int]:
    """Minimum island size per phase label in voxels, ``ceil(V_min / (vz vy vx))``.

    Parameters
    ----------
    min_island_um3 : float or dict
        One volume (µm³) for all phases or phase name -> volume.
    phases : dict or PhaseTable
    voxel_size_um : sequence of 3 float

    Returns
    -------
    dict
        Label -> minimum voxels, for phases with a positive minimum.
    """
    voxel_um3 = float(np.prod(voxel_size_um))
    labels = phase_table(phases).labels
    if isinstance(min_island_um3, dict):
        unknown = sorted(set(min_island_um3) - set(labels))
        if unknown:
            raise InputError("minimum island size given for a phase not in the phase table",
                             field="stages.segment.min_island_um3",
                             expected="phases " + ", ".join(labels), found=unknown)
        values = {labels[n]: float(v) for n, v in min_island_um3.items()}
    else:
        values = {v: float(min_island_um3 or 0.0) for v in labels.values()}
    return {lab: int(math.ceil(v / voxel_um3 - 1e-9)) for lab, v in values.items() if v > 0}


def remove_small_islands(labels: np.ndarray, min_voxels: dict[int, int]) -> tuple[np.ndarray, dict]:
    """Relabel small islands: face-connected components of phase ``v`` below ``min_voxels[v]``
    voxels take the most frequent label among their face neighbours outside the island.

    Parameters
    ----------
    labels : numpy.ndarray
    min_voxels : dict
        Label -> minimum voxels (phases in label order; a relabelled island may merge into a
        neighbour).

    Returns
    -------
    labels : numpy.ndarray
    report : dict
        Label -> ``{islands, voxels}`` relabelled.
    """
    out = labels.copy()
    report = {}
    for value in sorted(min_voxels):
        n_min = min_voxels[value]
        if n_min <= 1:
            continue
        n_islands = n_vox = 0
        for box, island, shell in _small_components(out == value, n_min, pad=1):
            n_islands += 1
            neighbours = out[box][shell]
            neighbours = neighbours[neighbours != value]
            if neighbours.size == 0:
                continue
            out[box][island] = np.bincount(neighbours).argmax()
            n_vox += int(island.sum())
        report[int(value)] = {"islands": n_islands, "voxels": n_vox}
    return out, report


def smooth_labels(labels: np.ndarray, method: str = "majority", radius_px: int = 1) -> np.ndarray:
    """Label smoothing.

    Parameters
    ----------
    labels : numpy.ndarray
    method : {'majority', 'median', 'none'}
        ``majority``: each voxel takes the most frequent label in its (2r+1)^3 box (ties keep
        the voxel's label); ``median``: median filter of the label values (meaningful only
        when the label order is a physical order).
    radius_px : int
        r (< 1: unchanged).

    Returns
    -------
    numpy.ndarray
    """
    if method == "none" or radius_px < 1:
        return labels
    size = 2 * int(radius_px) + 1
    if method == "median":
        return ndimage.median_filter(labels, size=size, mode="nearest")
    if method != "majority":
        raise InputError("unknown smoothing", field="stages.segment.smoothing",
                         expected="none, majority or median", found=method)
    values = np.unique(labels)
    best = np.zeros(labels.shape, dtype=np.float32)
    out = labels.copy()
    own = np.zeros(labels.shape, dtype=np.float32)
    counts = {}
    for v in values:
        c = ndimage.uniform_filter((labels == v).astype(np.float32), size=size, mode="nearest")
        counts[int(v)] = c
        own[labels == v] = c[labels == v]
    for v, c in counts.items():
        win = c > best + 1e-6
        out[win] = v
        best = np.maximum(best, c)
    keep = own >= best - 1e-6
    out[keep] = labels[keep]
    return out
