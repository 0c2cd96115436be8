"""Phantom rendering: per-slice BSE and SE images of a phantom structure with the PFIB-SEM
artefacts (pore shine-through, SE pore edges, curtains, blur, stage drift, shading, brightness
drift, shot and read noise) and their ground truth (drift, brightness, shading)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator

import numpy as np
from scipy import ndimage

from voxelyte.errors import InputError
from voxelyte.phantom.params import (BRIGHTNESS_JITTER_REL, CHANNELS, CURTAIN_BAND_SIGMAS_PX,
                                     CURTAIN_Z_SIGMA_SLICES, PHASES, SE_EDGE_SIGMA_PX,
                                     _STREAM_BRIGHTNESS, _STREAM_CURTAIN, _STREAM_DRIFT,
                                     _STREAM_NOISE, _STREAM_SHADING, _rng, merge_params,
                                     resolve_params)

if TYPE_CHECKING:
    from voxelyte.phantom.structure import PhantomStructure


def true_drift_px(params: dict) -> np.ndarray:
    """Ground-truth drift ``d_z = (dy, dx)`` px per slice.

    ``d_z = t_z * drift_total_px + B_z`` with ``t_z = z / (nz - 1)`` and ``B`` a random-walk
    bridge (increments N(0, drift_jitter_px), pinned to 0 at the first and last slice), i.e.
    a linear trend plus jitter. Convention: ``DRIFT_CONVENTION``.

    Parameters
    ----------
    params : dict
        Phantom parameters.

    Returns
    -------
    numpy.ndarray
        (nz, 2) float64; row 0 = (0, 0), last row = ``drift_total_px``.
    """
    p = resolve_params(params)
    r = p["render"]
    nz = p["shape_zyx"][0]
    t = np.arange(nz, dtype=np.float64) / max(nz - 1, 1)
    trend = t[:, None] * np.asarray(r["drift_total_px"], dtype=np.float64)[None, :]
    steps = _rng(p["seed"], _STREAM_DRIFT).normal(0.0, 1.0, size=(nz, 2)) * r["drift_jitter_px"]
    steps[0] = 0.0
    walk = np.cumsum(steps, axis=0)
    bridge = walk - t[:, None] * walk[-1][None, :]
    return trend + bridge


def brightness_factors(params: dict) -> np.ndarray:
    """Per-slice brightness ``b_z = 1 + brightness_drift * (z / (nz - 1) + jitter)``.

    Parameters
    ----------
    params : dict
        Phantom parameters (jitter sigma ``BRIGHTNESS_JITTER_REL``).

    Returns
    -------
    numpy.ndarray
        (nz,) float64.
    """
    p = resolve_params(params)
    r = p["render"]
    nz = p["shape_zyx"][0]
    t = np.arange(nz, dtype=np.float64) / max(nz - 1, 1)
    jitter = _rng(p["seed"], _STREAM_BRIGHTNESS).normal(0.0, 1.0, size=nz)
    return 1.0 + r["brightness_drift"] * (t + BRIGHTNESS_JITTER_REL * jitter)


def shading_field(params: dict, shape_yx: tuple) -> np.ndarray:
    """Multiplicative shading fixed in the image frame, ``1 + A * P(u, v)``.

    P is a random low-order polynomial (tilt, vignetting, saddle) scaled to max |P| = 1, u, v in
    [-1, 1], A the ``shading_amplitude``.

    Parameters
    ----------
    params : dict
        Phantom parameters.
    shape_yx : tuple of int
        Image shape (Y, X).

    Returns
    -------
    numpy.ndarray
        (Y, X) float64, at least 0.05.
    """
    p = resolve_params(params)
    amplitude = p["render"]["shading_amplitude"]
    a = _rng(p["seed"], _STREAM_SHADING).normal(size=4)
    a[2] = -abs(a[2])  # vignetting: darker towards the corners
    v = np.linspace(-1.0, 1.0, shape_yx[0])[:, None]
    u = np.linspace(-1.0, 1.0, shape_yx[1])[None, :]
    poly = a[0] * u + a[1] * v + a[2] * (u ** 2 + v ** 2) + a[3] * u * v
    poly /= np.abs(poly).max() or 1.0
    return np.clip(1.0 + amplitude * poly, 0.05, None)


def _curtain_field(params: dict, shape_ext: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Curtain stripes as two factors: a unit-std random profile across the stripes
    (nz, n_across), band-passed by a difference of Gaussians and smoothed along z, and an
    envelope (n_along,) fading from 1 to 0.5 along the stripes (milling direction)."""
    p = resolve_params(params)
    axis = p["render"]["curtain_axis"]
    nz, ny, nx = shape_ext
    n_across, n_along = (nx, ny) if axis == "y" else (ny, nx)
    noise = _rng(p["seed"], _STREAM_CURTAIN).normal(size=(nz, n_across))
    s_fine, s_coarse = CURTAIN_BAND_SIGMAS_PX
    band = (ndimage.gaussian_filter1d(noise, s_fine, axis=1)
            - ndimage.gaussian_filter1d(noise, s_coarse, axis=1))
    band = ndimage.gaussian_filter1d(band, CURTAIN_Z_SIGMA_SLICES, axis=0)
    band /= band.std() or 1.0
    envelope = 1.0 - 0.5 * np.linspace(0.0, 1.0, n_along)  # stronger where milling starts
    return band, envelope


def _shine_through_next_z(labels: np.ndarray) -> np.ndarray:
    """Index of the first non-pore voxel at depth >= z along +z (nz where none)."""
    nz = labels.shape[0]
    dtype = np.int16 if nz < np.iinfo(np.int16).max else np.int32
    z_index = np.arange(nz, dtype=dtype)[:, None, None]
    next_z = np.where(labels != PHASES["pore"], z_index, np.array(nz, dtype=dtype))
    reversed_view = next_z[::-1]
    np.minimum.accumulate(reversed_view, axis=0, out=reversed_view)
    return next_z



def _ideal_slice(labels: np.ndarray, next_z: np.ndarray, z: int, levels: dict, r: dict,
                 depth_um_per_slice: float, grid: tuple) -> dict:
    """Ideal (artefact-free) BSE and SE images of slice z on the extended grid: BSE phase levels
    with pore shine-through, SE phase levels with the pore-edge brightening on the solid side."""
    nz = labels.shape[0]
    yy, xx = grid
    pore_bse, pore_value = levels["BSE"][PHASES["pore"]], PHASES["pore"]
    edge_norm = math.sqrt(2 * math.pi) * SE_EDGE_SIGMA_PX  # step edge -> peak gradient 1
    slice_labels = labels[z]
    pore = slice_labels == pore_value
    bse = levels["BSE"][slice_labels]
    nxt = next_z[z].astype(np.int64)
    has_behind = pore & (nxt < nz)
    behind_labels = labels[np.minimum(nxt, nz - 1), yy, xx]
    attenuation = np.exp(-(nxt - z) * depth_um_per_slice / r["shine_through_depth_um"])
    shine = pore_bse + (levels["BSE"][behind_labels] - pore_bse) * attenuation
    bse = np.where(has_behind, shine, bse).astype(np.float32)
    # edge effect on the solid side only: the cavity itself stays dark
    edge = ndimage.gaussian_gradient_magnitude(pore.astype(np.float32), SE_EDGE_SIGMA_PX)
    edge[pore] = 0.0
    se = levels["SE"][slice_labels] + r["se_edge_gain"] * edge_norm * edge
    return {"BSE": bse, "SE": se.astype(np.float32)}


def _detect(image: np.ndarray, drift_z: np.ndarray, window: tuple, shading: np.ndarray,
            brightness_z: float, r: dict, rng: np.random.Generator) -> np.ndarray:
    """One channel's recorded slice: blur, drift shift and crop, x shading x brightness, shot
    and read noise, uint16 counts."""
    if r["blur_sigma_px"]:
        image = ndimage.gaussian_filter(image, r["blur_sigma_px"])
    image = ndimage.shift(image, drift_z, order=3, mode="nearest")[window]
    intensity = np.clip(image * shading * brightness_z, 0.0, None)
    photons = r["photons_per_unit"] or 0
    if photons > 0:
        intensity = rng.poisson(intensity * photons) / photons
    if r["read_noise"] > 0:
        intensity = intensity + rng.normal(0.0, r["read_noise"], size=intensity.shape)
    counts = np.rint(intensity * r["counts_scale"] + r["counts_offset"])
    return np.clip(counts, 0, np.iinfo(np.uint16).max).astype(np.uint16)


def _checked_drift(p: dict, labels_shape: tuple, margin: int) -> np.ndarray:
    """The true drift, checked against the structure's shape and margin."""
    nz, ny_ext, nx_ext = labels_shape
    ny, nx = ny_ext - 2 * margin, nx_ext - 2 * margin
    if p["shape_zyx"] != [nz, ny, nx]:
        raise InputError("render parameters do not match the structure", field="shape_zyx",
                         expected=[nz, ny, nx], found=p["shape_zyx"])
    drift = true_drift_px(p)
    if np.abs(drift).max() + 3 > margin:
        raise InputError("drift exceeds the structure margin; regenerate the structure with "
                         "these render parameters", field="render.drift_total_px",
                         expected=f"max |drift| <= {margin - 3} px",
                         found=float(np.abs(drift).max()))
    return drift


def render_slices(structure: PhantomStructure, params: dict) -> Iterator[tuple[int, dict]]:
    """Render the phantom's raw stack slice by slice, in z order.

    Per slice: ideal BSE (phase levels, pore shine-through ``pore + (behind - pore) *
    exp(-depth / shine_through_depth_um)``) and SE (phase levels + ``se_edge_gain`` x
    normalised in-plane gradient magnitude of the pore indicator on the solid voxels) ->
    + curtains (sample frame) -> Gaussian blur -> drift shift (``DRIFT_CONVENTION``) and crop
    -> x shading(y, x) x b_z -> Poisson(I * photons) / photons + N(0, read_noise) ->
    ``clip(round(I * counts_scale + counts_offset))``. ``photons_per_unit`` 0 / None: no shot
    noise.

    Parameters
    ----------
    structure : PhantomStructure
        The structure (:func:`generate_structure`).
    params : dict
        Render settings and seed; keys it lacks are taken from ``structure.params``.

    Yields
    ------
    tuple
        ``(z, {"BSE": uint16 (Y, X), "SE": uint16 (Y, X)})``.
    """
    p = resolve_params(merge_params(structure.params, params or {}))
    r = p["render"]
    labels = structure.labels
    nz, ny_ext, nx_ext = labels.shape
    m = structure.margin_px
    ny, nx = ny_ext - 2 * m, nx_ext - 2 * m
    drift = _checked_drift(p, labels.shape, m)
    brightness = brightness_factors(p)
    shading = shading_field(p, (ny, nx))
    curtain_profile, curtain_envelope = _curtain_field(p, labels.shape)
    next_z = _shine_through_next_z(labels)
    grid = np.ogrid[:ny_ext, :nx_ext]
    levels = {ch: np.array([r[key][name] for name in sorted(PHASES, key=PHASES.get)],
                           dtype=np.float32)
              for ch, key in (("BSE", "bse_levels"), ("SE", "se_levels"))}
    window = (slice(m, m + ny), slice(m, m + nx))
    for z in range(nz):
        ideal = _ideal_slice(labels, next_z, z, levels, r, p["voxel_size_um"], grid)
        if r["curtain_axis"] == "y":  # curtains: sample frame
            stripes = curtain_envelope[:, None] * curtain_profile[z][None, :]
        else:
            stripes = curtain_profile[z][:, None] * curtain_envelope[None, :]
        rng = _rng(p["seed"], _STREAM_NOISE, z)
        out = {}
        for ch in CHANNELS:
            image = ideal[ch] + np.float32(r["curtain_amplitude"].get(ch, 0.0)) * stripes
            out[ch] = _detect(image, drift[z], window, shading, brightness[z], r, rng)
        yield z, out
