"""Carrier clusters that do not reach the counter electrode: isolated by the conductivity contrast
(what the tiled method must keep inside a tile) or by geometry alone (what the map is compared
with)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Voxels with σ ≥ ISOLATED_CONTRAST·max σ form the carrier clusters whose isolation matters.
ISOLATED_CONTRAST = 1e-3


def isolated_clusters(sigma: np.ndarray) -> tuple[np.ndarray, list]:
    """Face-connected clusters of the high-conductivity voxels (σ ≥ ISOLATED_CONTRAST·max σ)
    that do not reach the counter electrode (last plane).

    Parameters
    ----------
    sigma : numpy.ndarray
        Oriented conductivity (depth, rows, cols), counter electrode at the last plane.

    Returns
    -------
    tuple
        (cluster id per voxel, 0 elsewhere; bounding slices of cluster i at [i - 1]).
    """
    comp = _clusters_off_counter(sigma >= ISOLATED_CONTRAST * float(sigma.max()))
    return comp, ndimage.find_objects(comp)


def geometric_isolation(labels_oriented: np.ndarray, carrier_label: int) -> np.ndarray:
    """Carrier-phase face pixels isolated by geometry alone.

    Parameters
    ----------
    labels_oriented : numpy.ndarray
        Labels (depth, rows, cols), scanned face first, counter electrode at the last plane.
    carrier_label : int
        Label of the carrier phase.

    Returns
    -------
    numpy.ndarray of bool, (rows, cols)
        Face pixels whose face-connected carrier cluster does not reach the counter electrode.
    """
    return _clusters_off_counter(labels_oriented == carrier_label)[0] > 0


def _clusters_off_counter(mask: np.ndarray) -> np.ndarray:
    """Face-connected clusters of ``mask`` (oriented) that do not reach the counter electrode
    (last plane): cluster ids, 0 elsewhere."""
    comp, n = ndimage.label(mask)
    keep = np.ones(n + 1, bool)
    keep[np.unique(comp[-1])] = False
    keep[0] = False
    comp[~keep[comp]] = 0
    return comp
