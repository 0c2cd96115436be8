"""Size distributions: local thickness, granulometry, watershed particles (Etiemble et al. 2017)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from voxelyte import contract
from voxelyte.contract import distance_um, load_labels


def _radii_um(dist: np.ndarray, voxel, n_sizes: int) -> np.ndarray:
    """Ball radii (µm): ``n_sizes`` geometric steps from the smallest voxel size to the largest
    distance, rounded to quarter voxels."""
    dmax = float(dist.max()) if dist.size else 0.0
    vmin = min(voxel)
    if dmax < vmin:
        return np.zeros(0)
    radii = np.unique(np.round(np.geomspace(vmin, dmax, max(2, int(n_sizes))) / vmin * 4) / 4 * vmin)
    return radii[(radii >= vmin) & (radii <= dmax)]


def _openings(mask: np.ndarray, voxel, n_sizes: int):
    """Local thickness map (µm, Hildebrand & Rüegsegger) and granulometry by openings with
    balls of growing radius r (µm): opening_r = {x : dist(x, {d ≥ r}) < r} with d the EDT of
    the phase; thickness(x) = 2 max{r : x ∈ opening_r}; G(r) = |opening_r| / |phase|."""
    dist = distance_um(mask, voxel)
    radii = _radii_um(dist, voxel, n_sizes)
    thickness = np.zeros(mask.shape, dtype=np.float32)
    remaining = []
    n = int(mask.sum())
    for r in radii:
        seeds = dist >= r
        opened = distance_um(~seeds, voxel) < r if seeds.any() else np.zeros_like(mask)
        thickness[opened] = 2 * r
        remaining.append(float(opened.sum() / n) if n else 0.0)
    return thickness, radii, np.asarray(remaining)


def size_analysis(mask: np.ndarray, voxel, n_sizes: int):
    """Local thickness and granulometry of one phase mask.

    Parameters
    ----------
    mask : numpy.ndarray of bool, (z, y, x)
        The phase.
    voxel : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    n_sizes : int
        Number of ball radii (geometric steps from the smallest voxel size to the largest
        distance, rounded to quarter voxels).

    Returns
    -------
    lt : pandas.DataFrame
        Local-thickness distribution: diameter_um, volume_fraction_of_phase.
    lt_stats : dict
        ``mean_local_thickness_um``, ``median_local_thickness_um`` (None for an empty mask).
    gr : pandas.DataFrame
        Granulometry: radius_um, remaining_volume_fraction G(r), pattern_spectrum_um-1 = −dG/dr
        (G(0) = 1; the volume removed between r_i and r_(i+1) has radius r_i).
    gr_stats : dict
        ``granulometry_mean_radius_um`` (None without radii).

    References
    ----------
    Etiemble et al. 2017 (granulometry, local thickness); Hildebrand & Rüegsegger (local
    thickness).
    """
    import pandas as pd

    thickness, radii, remaining = _openings(mask, voxel, n_sizes)
    values = thickness[mask]
    del thickness
    diam = (2 * radii).astype(np.float32)
    frac = np.array([np.count_nonzero(values == d) for d in diam], dtype=float)
    frac = frac / values.size if values.size else frac
    lt = pd.DataFrame({"diameter_um": 2 * radii, "volume_fraction_of_phase": frac})
    lt_stats = {"mean_local_thickness_um": float(values.mean()) if values.size else None,
                "median_local_thickness_um": float(np.median(values)) if values.size else None}
    # G(0) = 1; pattern spectrum -dG/dr; volume removed between r_i and r_(i+1) has radius r_i
    r = np.concatenate([[0.0], radii])
    g = np.concatenate([[1.0], remaining])
    spectrum = -np.diff(g) / np.diff(r) if radii.size else np.zeros(0)
    gr = pd.DataFrame({"radius_um": radii, "remaining_volume_fraction": remaining,
                       "pattern_spectrum_um-1": spectrum})
    removed = remaining - np.concatenate([remaining[1:], [0.0]])
    gr_stats = {"granulometry_mean_radius_um": float(np.sum(removed * radii)) if radii.size else None}
    return lt, lt_stats, gr, gr_stats


def local_thickness_distribution(labels, phase_label: int, voxel_size_um, *, n_sizes: int = 24):
    """Volume-weighted local-thickness distribution of one phase.

    The thickness of a voxel is the diameter of the largest ball inside the phase that contains
    it (anisotropic EDT; the box boundary is not background, so particles cut by it read
    thicker). Memory ~20 bytes/voxel.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels (loaded whole).
    phase_label : int
        Label value of the phase.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    n_sizes : int
        Number of ball radii.

    Returns
    -------
    table : pandas.DataFrame
        Columns diameter_um, volume_fraction_of_phase.
    stats : dict
        Mean and median local thickness (µm): ``mean_local_thickness_um``,
        ``median_local_thickness_um``.

    References
    ----------
    Etiemble et al. 2017 (local thickness); Hildebrand & Rüegsegger (local thickness).
    """
    lt, lt_stats, _, _ = size_analysis(load_labels(labels) == phase_label, contract.voxel_size_um(voxel_size_um), n_sizes)
    return lt, lt_stats


def granulometry(labels, phase_label: int, voxel_size_um, *, n_sizes: int = 24):
    """Granulometry by openings with balls of growing radius r.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels (loaded whole).
    phase_label : int
        Label value of the phase.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    n_sizes : int
        Number of ball radii.

    Returns
    -------
    table : pandas.DataFrame
        Columns radius_um, remaining_volume_fraction G(r) = V(opening_r)/V and
        pattern_spectrum_um-1 = −dG/dr.
    stats : dict
        ``granulometry_mean_radius_um``: the mean radius Σ r_i (G(r_i) − G(r_(i+1))) (µm).

    References
    ----------
    Etiemble et al. 2017 (granulometry).
    """
    _, _, gr, gr_stats = size_analysis(load_labels(labels) == phase_label, contract.voxel_size_um(voxel_size_um), n_sizes)
    return gr, gr_stats


def separate_particles(labels, phase_label: int, voxel_size_um, *, min_distance_um: float = 0.4,
                       smoothing_voxels: float = 0.5, min_radius_um: float = 0.0):
    """Watershed particle separation of one phase.

    Distance transform d of the phase (µm, anisotropic), smoothed with a Gaussian
    (``smoothing_voxels``) to remove spurious maxima; markers = local maxima of d
    (skimage.feature.peak_local_max) at least ``min_distance_um`` apart per axis (box footprint)
    and with d ≥ ``min_radius_um``; skimage.segmentation.watershed of −d inside the phase.
    Connected pieces without a marker keep one particle each.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels (loaded whole).
    phase_label : int
        Label value of the phase.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    min_distance_um : float
        Smallest distance between markers per axis (µm).
    smoothing_voxels : float
        Gaussian sigma of the distance smoothing, in units of the smallest voxel size (0: none).
    min_radius_um : float
        Smallest distance value of a marker (µm; 0: no threshold).

    Returns
    -------
    particles : numpy.ndarray of int32, (z, y, x)
        Particle labels (0 outside the phase).
    table : pandas.DataFrame
        Columns particle_id, volume_um3 (µm³), equivalent_diameter_um = (6V/π)^(1/3) (µm),
        touches_boundary.

    References
    ----------
    Etiemble et al. 2017 (watershed particle separation and sizes).
    """
    import pandas as pd
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    voxel = contract.voxel_size_um(voxel_size_um)
    mask = load_labels(labels) == phase_label
    columns = ["particle_id", "volume_um3", "equivalent_diameter_um", "touches_boundary"]
    if not mask.any():
        return np.zeros(mask.shape, np.int32), pd.DataFrame(columns=columns)
    dist = distance_um(mask, voxel)
    if smoothing_voxels > 0:
        dist = ndimage.gaussian_filter(dist, [smoothing_voxels * min(voxel) / v for v in voxel])
        dist[~mask] = 0
    footprint = np.ones([2 * max(1, int(round(min_distance_um / v))) + 1 for v in voxel], bool)
    pieces, n_pieces = ndimage.label(mask)
    peaks = peak_local_max(dist, footprint=footprint, labels=pieces, exclude_border=False,
                           threshold_abs=min_radius_um if min_radius_um > 0 else None)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    unmarked = np.setdiff1d(np.arange(1, n_pieces + 1), np.unique(pieces[tuple(peaks.T)]))
    for j, piece in enumerate(unmarked, start=len(peaks) + 1):   # one marker per bare piece
        idx = np.flatnonzero(pieces.ravel() == piece)
        markers.ravel()[idx[np.argmax(dist.ravel()[idx])]] = j
    del pieces
    particles = watershed(-dist, markers, mask=mask).astype(np.int32)
    n = int(particles.max())
    volume = np.bincount(particles.ravel(), minlength=n + 1)[1:] * float(np.prod(voxel))
    border = np.zeros(n + 1, bool)
    for ax in range(3):
        for face in (0, -1):
            border[np.unique(np.take(particles, face, axis=ax))] = True
    ids = np.arange(1, n + 1)
    table = pd.DataFrame({"particle_id": ids, "volume_um3": volume,
                          "equivalent_diameter_um": np.cbrt(6 * volume / np.pi),
                          "touches_boundary": border[1:]})
    table = table[table["volume_um3"] > 0].reset_index(drop=True)
    return particles, table
