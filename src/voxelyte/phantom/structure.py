"""Phantom structure: polydisperse CAM spheres placed sequentially (optionally clustered), the
field thresholded to hit the CAM fraction exactly, SE where an SE particle can reach, pore in the
narrow crevices between CAM particles (README, *The demo study*)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from voxelyte.contract import distance_um, volume_fractions
from voxelyte.phantom.params import (CAM_FRACTION_SURPLUS, CONTACT_DISTANCE_RANGE,
                                     MAX_CAM_OVERLAP, PHASES, PLACEMENT_TRIES, SE_EDGE_SIGMA_PX,
                                     SPHERE_BOX_PAD_PX, _STREAM_CAM, _STREAM_PORE, _rng,
                                     cam_clustering_probability, resolve_params,
                                     se_access_radius_um)
from voxelyte.phantom.render import true_drift_px


@dataclass
class PhantomStructure:
    """Phantom structure on the extended (z, Y + 2m, X + 2m) grid; the ground truth is the
    central (Y, X) window (``central(array)``).

    Parameters
    ----------
    labels : numpy.ndarray
        uint8, pore 0 / CAM 1 / SE 2.
    cam_particle_id : numpy.ndarray
        uint32, the sphere owning each CAM voxel (1-based), 0 = not CAM.
    margin_px : int
        Margin m of the extended grid.
    params : dict
        The resolved phantom parameters.
    info : dict
        Clustering used, SE access radius, particle counts, volume fractions.
    """
    labels: np.ndarray            # uint8, pore 0 / CAM 1 / SE 2
    cam_particle_id: np.ndarray   # uint32, sphere owning each CAM voxel (1-based), 0 = not CAM
    margin_px: int
    params: dict
    info: dict = field(default_factory=dict)  # clustering used, r_access, particle count, ...

    def central(self, array: np.ndarray) -> np.ndarray:
        """The ground-truth (central) window of an extended-grid array.

        Parameters
        ----------
        array : numpy.ndarray
            (z, Y + 2m, X + 2m).

        Returns
        -------
        numpy.ndarray
            The (z, Y, X) view.
        """
        m = self.margin_px
        return array[:, m:array.shape[1] - m, m:array.shape[2] - m]


def _distance_to_zero_px(mask_nonzero: np.ndarray) -> np.ndarray:
    """Euclidean distance (px, float32) of each True voxel to the nearest False voxel."""
    return distance_um(mask_nonzero, (1.0, 1.0, 1.0))


def _margin_px(params: dict) -> int:
    r = params["render"]
    max_drift = float(np.abs(true_drift_px(params)).max())
    filter_reach = math.ceil(4 * max(r["blur_sigma_px"] or 0.0, SE_EDGE_SIGMA_PX))
    return int(math.ceil(max_drift)) + 3 + filter_reach


def _candidate_centre(rng, centres: list, radii: list, radius: float, p_cluster: float,
                      shape_arr: np.ndarray):
    """A candidate centre for a sphere of ``radius`` and the sphere it is pressed against
    (1-based id, 0: placed uniformly); None when a clustered candidate falls outside."""
    partner_id = 0  # the sphere a clustered candidate is pressed against (1-based)
    if centres and rng.random() < p_cluster:
        j = int(rng.integers(len(centres)))
        partner_id = j + 1
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction) or 1.0
        distance = (radius + radii[j]) * rng.uniform(*CONTACT_DISTANCE_RANGE)
        centre = centres[j] + distance * direction
        if np.any(centre < -0.5 * radius) or np.any(centre > shape_arr - 1 + 0.5 * radius):
            return None
    else:
        centre = rng.uniform(-0.5 * radius, shape_arr - 1 + 0.5 * radius)
    return centre, partner_id


def _place_cam_spheres(shape: tuple, central: tuple, params: dict, p_cluster: float):
    """Random sequential placement of lognormal spheres; returns (field f, owner id, count)."""
    rng = _rng(params["seed"], _STREAM_CAM)
    vs = params["voxel_size_um"]
    log_median_r = math.log(params["cam_d50_um"] / 2 / vs)
    log_sigma = math.log(params["cam_size_gsd"])
    target = params["cam_volume_fraction"] + CAM_FRACTION_SURPLUS
    shape_arr = np.array(shape)

    cam_field = np.full(shape, -np.inf, dtype=np.float32)
    owner = np.zeros(shape, dtype=np.uint32)
    centres: list[np.ndarray] = []
    radii: list[float] = []
    union_voxels, total_voxels = 0, int(np.prod(shape))
    while True:
        if union_voxels >= target * total_voxels:
            union_central = np.count_nonzero(cam_field[central] > 0) / cam_field[central].size
            if union_central >= target:
                break
        radius = max(1.0, float(np.exp(rng.normal(log_median_r, log_sigma))))
        for attempt in range(100 * PLACEMENT_TRIES):
            candidate = _candidate_centre(rng, centres, radii, radius, p_cluster, shape_arr)
            if candidate is None:
                continue
            centre, partner_id = candidate
            lo = np.maximum(np.floor(centre - radius - SPHERE_BOX_PAD_PX).astype(int), 0)
            hi = np.minimum(np.ceil(centre + radius + SPHERE_BOX_PAD_PX).astype(int) + 1, shape_arr)
            if np.any(hi <= lo):
                continue
            box = tuple(slice(a, b) for a, b in zip(lo, hi))
            zz, yy, xx = np.ogrid[box]
            f_sphere = (radius - np.sqrt((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2
                                         + (xx - centre[2]) ** 2)).astype(np.float32)
            inside = f_sphere > 0
            volume = np.count_nonzero(inside)
            if volume == 0:
                continue
            already_cam = cam_field[box] > 0
            others = already_cam & (owner[box] != partner_id) if partner_id else already_cam
            overlap = np.count_nonzero(inside & others) / volume
            if overlap > MAX_CAM_OVERLAP * (1 + attempt // PLACEMENT_TRIES):
                continue
            union_voxels += volume - np.count_nonzero(inside & already_cam)
            wins = f_sphere > cam_field[box]
            cam_field[box][wins] = f_sphere[wins]
            owner[box][wins] = len(centres) + 1
            centres.append(centre)
            radii.append(radius)
            break
    return cam_field, owner, len(centres)


def _top_fraction_threshold(values: np.ndarray, fraction: float, n_total: int) -> float:
    """Threshold t such that round(fraction * n_total) of ``values`` are >= t."""
    k = int(round(fraction * n_total))
    flat = values.ravel()
    if k <= 0:
        return np.inf
    k = min(k, flat.size)
    return float(np.partition(flat, flat.size - k)[flat.size - k])


def _pore_mask(cam: np.ndarray, central: tuple, n_central: int, p: dict) -> np.ndarray:
    """Pore voxels: the non-CAM space an SE particle cannot reach (opening of the non-CAM space
    by a ball of radius ``r_access``, EDT based); for an explicit porosity the non-CAM voxels of
    highest crevice score, hit exactly in the central window."""
    r_access_px = se_access_radius_um(p) / p["voxel_size_um"]
    non_cam = ~cam
    seeds = _distance_to_zero_px(non_cam) > r_access_px
    reachable = _distance_to_zero_px(~seeds) <= r_access_px
    del seeds
    if p["porosity"] == "auto":
        return non_cam & ~reachable
    # Crevice score: unreachable first, then dense CAM surroundings, tie-break noise.
    rng = _rng(p["seed"], _STREAM_PORE)
    score = ndimage.gaussian_filter(cam.astype(np.float32), sigma=max(1.0, r_access_px))
    score += (~reachable).astype(np.float32)
    del reachable
    score += 1e-3 * rng.random(cam.shape, dtype=np.float32)
    score[cam] = -np.inf
    t = _top_fraction_threshold(score[central], p["porosity"], n_central)
    return score >= t


def generate_structure(params: dict) -> PhantomStructure:
    """Synthesise the 3-phase structure (pore 0, CAM 1, SE 2).

    Parameters
    ----------
    params : dict
        Phantom parameters (any subset; resolved by :func:`resolve_params`).

    Returns
    -------
    PhantomStructure
        Labels and CAM particle ids on the extended grid (margin for drift and filters); info:
        clustering used, SE access radius, particle counts, central-window volume fractions.

    References
    ----------
    Minnmann, P. et al. (2024). J. Electrochem. Soc. 171, 060514 (the structures imitated).
    """
    p = resolve_params(params)
    margin = _margin_px(p)
    nz, ny, nx = p["shape_zyx"]
    shape = (nz, ny + 2 * margin, nx + 2 * margin)
    central = (slice(None), slice(margin, margin + ny), slice(margin, margin + nx))
    n_central = nz * ny * nx
    p_cluster = cam_clustering_probability(p)

    cam_field, owner, n_spheres = _place_cam_spheres(shape, central, p, p_cluster)
    threshold = _top_fraction_threshold(cam_field[central], p["cam_volume_fraction"], n_central)
    cam = cam_field >= threshold
    del cam_field
    owner[~cam] = 0
    pore = _pore_mask(cam, central, n_central, p)

    labels = np.full(shape, PHASES["SE"], dtype=np.uint8)
    labels[cam] = PHASES["CAM"]
    labels[pore] = PHASES["pore"]
    structure = PhantomStructure(labels=labels, cam_particle_id=owner, margin_px=margin, params=p)
    structure.info = {
        "cam_clustering": p_cluster,
        "se_access_radius_um": se_access_radius_um(p),
        "n_cam_particles": int(len(np.unique(structure.central(owner))) - 1),
        "n_cam_spheres_placed": int(n_spheres),
        "volume_fraction": volume_fractions(structure.central(labels), PHASES),
    }
    return structure
