"""Ground-truth phantoms: synthetic 3-phase composite cathodes and their raw PFIB-SEM stacks.

Structure (labels pore = 0, CAM = 1, SE = 2; arrays (z, y, x), z = slicing axis) follows the
picture of Minnmann et al. 2024 (samples BM10 / BM03 / BM01: same CAM, different SE particle
size): larger SE particles cannot fill the narrow crevices between CAM particles, so they leave
more porosity sitting between CAM particles, and the CAM is more clustered.

* CAM: polydisperse spheres, lognormal diameters (median ``cam_d50_um``, geometric standard
  deviation ``cam_size_gsd``), random sequential placement. With probability
  ``cam_clustering`` a new sphere is pressed against a random placed one (centre distance
  ``(r_i + r_j) * U(0.6, 0.8)``: a flattened contact, so the pair reads as one agglomerate),
  otherwise it is placed uniformly. A sphere is rejected when more than ``MAX_CAM_OVERLAP``
  (10 %) of its volume is CAM already (not counting the sphere it is pressed against); a sphere
  that finds no place in ``PLACEMENT_TRIES`` tries is allowed proportionally more overlap. The
  requested CAM fraction is hit exactly: the field ``f(x) = max_i (r_i - |x - c_i|)`` is
  thresholded at the quantile that gives the fraction in the central (ground-truth) window;
  ``cam_particle_id`` is the argmax sphere.
* ``cam_clustering = "auto"``: ``clip(1.2 * (se_d50 / cam_d50 - 0.75), 0, 0.9)``: 0.28 / 0.52 /
  0.88 for SE:CAM size ratios 0.98 / 1.18 / 1.48 (BM03 / BM01 / BM10 SE sizes at half scale
  against a 2.5 µm CAM). Clustering hides CAM surface in contacts, so CAM chords get longer
  (Minnmann Fig. 5a).
* SE fills the non-CAM space that an SE particle can reach: the morphological opening of the
  non-CAM space by a ball of radius ``r_access = SE_ACCESS_ALPHA * se_d50 / 2`` (alpha = 0.3:
  the malleable SE deforms into gaps down to ~30 % of its particle radius; enclosed voids wider
  than that are taken as filled). The rest (narrow crevices between CAM particles) is pore
  (``porosity = "auto"``). An explicit porosity takes the non-CAM voxels with the highest
  crevice score (outside the opening + Gaussian-smoothed CAM density + tiny seeded tie-break
  noise), hit exactly in the central window.

Rendering (per slice; PFIB-SEM artefacts as described by Cooper et al. 2022 and handled in
Minnmann et al. 2024): BSE material contrast with pore shine-through (a pore shows the first
material behind it along +z, attenuated by ``exp(-depth / shine_through_depth_um)``), SE
topographic contrast (dark pores, bright pore edges: the edge effect brightens the solid beside
a pore, where secondary electrons also escape through the side wall, while the cavity stays
dark, so even a one-voxel crevice reads as a dark line, as pores "are cavities in a finely
polished flat surface", Minnmann et al. 2024), curtaining stripes attached to the sample,
Gaussian blur, stage drift (see ``DRIFT_CONVENTION``), multiplicative shading fixed in the image
frame times a per-slice brightness factor, Poisson + Gaussian noise, uint16 counts.

Everything is seeded (``numpy.random.default_rng([seed, stream, ...])``, one stream per purpose):
the same parameters give bit-identical output.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml
from scipy import ndimage

from voxelyte import config as _config
from voxelyte.errors import InputError
from voxelyte.io import write_zarr_atomic

PHASES = {"pore": 0, "CAM": 1, "SE": 2}
CHANNELS = ("BSE", "SE")

#: Every parameter with its default: the schema (workflow/schemas/sample.schema.yaml) is the source.
DEFAULTS: dict = _config.phantom_defaults()

DRIFT_CONVENTION = (
    "raw[z](y, x) = ideal[z](y - dy_z, x - dx_z): slice z of the raw stack is the ground-truth "
    "slice shifted by +d_z = (dy_z, dx_z) px (scipy.ndimage.shift(ideal, (dy_z, dx_z), order=3)), "
    "d_0 = (0, 0); registration must shift slice z by -d_z to recover the ground truth."
)

# Model constants (documented choices, not user parameters).
SE_ACCESS_ALPHA = 0.3          # r_access = alpha * se_d50 / 2: SE reach into CAM crevices
MAX_CAM_OVERLAP = 0.1          # max fraction of a new sphere's volume already CAM
PLACEMENT_TRIES = 25           # tries per sphere before its overlap limit is relaxed
CONTACT_DISTANCE_RANGE = (0.6, 0.8)    # clustered centre distance / (r_i + r_j)
CLUSTERING_SLOPE, CLUSTERING_ONSET_RATIO, CLUSTERING_MAX = 1.2, 0.75, 0.9  # "auto" clustering
CAM_FRACTION_SURPLUS = 0.01    # spheres are placed until union >= requested + surplus
SPHERE_BOX_PAD_PX = 2          # f is evaluated this far outside each sphere
SE_EDGE_SIGMA_PX = 1.0         # width of the SE-detector pore-edge brightening (solid side)
CURTAIN_BAND_SIGMAS_PX = (1.0, 6.0)  # band-pass (difference of Gaussians) across the stripes
CURTAIN_Z_SIGMA_SLICES = 8.0   # curtains vary slowly with depth
BRIGHTNESS_JITTER_REL = 0.1    # slice jitter sigma = this * brightness_drift

_STREAM_CAM, _STREAM_PORE, _STREAM_DRIFT, _STREAM_SHADING = 1, 2, 3, 4
_STREAM_CURTAIN, _STREAM_BRIGHTNESS, _STREAM_NOISE = 5, 6, 7


def _rng(seed: int, stream: int, *extra: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, *[int(e) for e in extra]])


# --------------------------------------------------------------------------- parameters
merge_params = _config.deep_merge


def _to_builtin(value):
    """numpy scalars / arrays / tuples -> plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_to_builtin(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def resolve_params(params: dict | None = None) -> dict:
    """DEFAULTS merged recursively with ``params`` and validated against the phantom schema;
    plain JSON types."""
    p = _config.validate(_to_builtin(merge_params(DEFAULTS, params or {})),
                         _config.phantom_schema(), source="phantom parameters")
    if p["porosity"] != "auto" and p["porosity"] >= 1 - p["cam_volume_fraction"]:
        raise InputError("porosity leaves no room for the solid electrolyte",
                         source="phantom parameters", field="porosity",
                         expected=f"< 1 - cam_volume_fraction = {1 - p['cam_volume_fraction']:.3f}",
                         found=p["porosity"])
    return p


def cam_clustering_probability(params: dict) -> float:
    """Probability that a new CAM sphere is pressed against an existing one.

    ``"auto"``: ``clip(1.2 * (se_d50 / cam_d50 - 0.75), 0, 0.9)`` — larger SE particles leave
    the CAM more clustered (Minnmann et al. 2024, BM10 vs BM03 / BM01)."""
    p = resolve_params(params)
    if p["cam_clustering"] != "auto":
        return float(p["cam_clustering"])
    ratio = p["se_d50_um"] / p["cam_d50_um"]
    return round(float(np.clip(CLUSTERING_SLOPE * (ratio - CLUSTERING_ONSET_RATIO), 0.0,
                               CLUSTERING_MAX)), 6)


def se_access_radius_um(params: dict) -> float:
    """Radius of the ball that SE can push into the non-CAM space: alpha * se_d50 / 2."""
    p = resolve_params(params)
    return SE_ACCESS_ALPHA * p["se_d50_um"] / 2


# --------------------------------------------------------------------------- structure
@dataclass
class PhantomStructure:
    """Phantom structure on the extended (z, Y + 2m, X + 2m) grid; the ground truth is the
    central (Y, X) window (``central(array)``)."""
    labels: np.ndarray            # uint8, pore 0 / CAM 1 / SE 2
    cam_particle_id: np.ndarray   # uint32, sphere owning each CAM voxel (1-based), 0 = not CAM
    margin_px: int
    params: dict
    info: dict = field(default_factory=dict)  # clustering used, r_access, particle count, ...

    def central(self, array: np.ndarray) -> np.ndarray:
        """The ground-truth (central) window of an extended-grid array."""
        m = self.margin_px
        return array[:, m:array.shape[1] - m, m:array.shape[2] - m]


def _distance_to_zero_px(mask_nonzero: np.ndarray) -> np.ndarray:
    """Euclidean distance (px, float32) of each True voxel to the nearest False voxel."""
    try:
        import edt  # float32 output, a fraction of scipy's memory (porespy dependency)
        return edt.edt(np.ascontiguousarray(mask_nonzero), black_border=False, parallel=1)
    except ImportError:  # pragma: no cover
        return ndimage.distance_transform_edt(mask_nonzero).astype(np.float32)


def _margin_px(params: dict) -> int:
    r = params["render"]
    max_drift = float(np.abs(true_drift_px(params)).max())
    filter_reach = math.ceil(4 * max(r["blur_sigma_px"] or 0.0, SE_EDGE_SIGMA_PX))
    return int(math.ceil(max_drift)) + 3 + filter_reach


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
            partner_id = 0  # the sphere a clustered candidate is pressed against (1-based)
            if centres and rng.random() < p_cluster:
                j = int(rng.integers(len(centres)))
                partner_id = j + 1
                direction = rng.normal(size=3)
                direction /= np.linalg.norm(direction) or 1.0
                distance = (radius + radii[j]) * rng.uniform(*CONTACT_DISTANCE_RANGE)
                centre = centres[j] + distance * direction
                if np.any(centre < -0.5 * radius) or np.any(centre > shape_arr - 1 + 0.5 * radius):
                    continue
            else:
                centre = rng.uniform(-0.5 * radius, shape_arr - 1 + 0.5 * radius)
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


def generate_structure(params: dict) -> PhantomStructure:
    """Synthesise the 3-phase structure (see the module docstring for the model)."""
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

    # SE reach: opening of the non-CAM space by a ball of radius r_access (EDT based).
    r_access_px = se_access_radius_um(p) / p["voxel_size_um"]
    non_cam = ~cam
    seeds = _distance_to_zero_px(non_cam) > r_access_px
    reachable = _distance_to_zero_px(~seeds) <= r_access_px
    del seeds
    if p["porosity"] == "auto":
        pore = non_cam & ~reachable
    else:
        # Crevice score: unreachable first, then dense CAM surroundings, tie-break noise.
        rng = _rng(p["seed"], _STREAM_PORE)
        score = ndimage.gaussian_filter(cam.astype(np.float32), sigma=max(1.0, r_access_px))
        score += (~reachable).astype(np.float32)
        score += 1e-3 * rng.random(shape, dtype=np.float32)
        score[cam] = -np.inf
        t = _top_fraction_threshold(score[central], p["porosity"], n_central)
        pore = score >= t
        del score
    del reachable

    labels = np.full(shape, PHASES["SE"], dtype=np.uint8)
    labels[cam] = PHASES["CAM"]
    labels[pore] = PHASES["pore"]
    structure = PhantomStructure(labels=labels, cam_particle_id=owner, margin_px=margin, params=p)
    structure.info = {
        "cam_clustering": p_cluster,
        "se_access_radius_um": se_access_radius_um(p),
        "n_cam_particles": int(len(np.unique(structure.central(owner))) - 1),
        "n_cam_spheres_placed": int(n_spheres),
        "volume_fraction": volume_fractions(structure.central(labels)),
    }
    return structure


def volume_fractions(labels: np.ndarray) -> dict:
    """Voxel-count volume fraction of each phase in PHASES."""
    counts = np.bincount(labels.ravel(), minlength=max(PHASES.values()) + 1)
    return {name: float(counts[value] / labels.size) for name, value in PHASES.items()}


# --------------------------------------------------------------------------- rendering
def true_drift_px(params: dict) -> np.ndarray:
    """Ground-truth drift d_z = (dy, dx) px, shape (nz, 2): row 0 = (0, 0), last row =
    ``drift_total_px``.

    ``d_z = t_z * drift_total_px + B_z`` with ``t_z = z / (nz - 1)`` and ``B`` a random-walk
    bridge (increments N(0, drift_jitter_px), pinned to 0 at the first and last slice), i.e.
    a linear trend plus jitter. Convention: ``DRIFT_CONVENTION``."""
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
    """Per-slice brightness b_z = 1 + brightness_drift * z / (nz - 1) + jitter
    (jitter sigma = BRIGHTNESS_JITTER_REL * brightness_drift)."""
    p = resolve_params(params)
    r = p["render"]
    nz = p["shape_zyx"][0]
    t = np.arange(nz, dtype=np.float64) / max(nz - 1, 1)
    jitter = _rng(p["seed"], _STREAM_BRIGHTNESS).normal(0.0, 1.0, size=nz)
    return 1.0 + r["brightness_drift"] * (t + BRIGHTNESS_JITTER_REL * jitter)


def shading_field(params: dict, shape_yx: tuple) -> np.ndarray:
    """Multiplicative shading fixed in the image frame: 1 + A * P(u, v) with P a random
    low-order polynomial (tilt, vignetting, saddle) scaled to max |P| = 1, u, v in [-1, 1]."""
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


def render_slices(structure: PhantomStructure, params: dict) -> Iterator[tuple[int, dict]]:
    """Yield ``(z, {"BSE": uint16 (Y, X), "SE": uint16 (Y, X)})`` in z order.

    Per slice: ideal BSE (phase levels, pore shine-through
    ``pore + (behind - pore) * exp(-depth / shine_through_depth_um)``) and SE (phase levels +
    ``se_edge_gain`` x normalised in-plane gradient magnitude of the pore indicator on the solid
    voxels; pore voxels keep the pore level) ->
    + curtains (sample frame) -> Gaussian blur -> drift shift (``DRIFT_CONVENTION``) and crop ->
    x shading(y, x) x b_z -> Poisson(I * photons) / photons + N(0, read_noise) ->
    ``clip(round(I * counts_scale + counts_offset))``. ``photons_per_unit`` 0 / None: no shot
    noise. The structure comes from ``structure``; render settings and seed from ``params``
    (keys it lacks are taken from ``structure.params``)."""
    p = resolve_params(merge_params(structure.params, params or {}))
    r = p["render"]
    labels = structure.labels
    nz, ny_ext, nx_ext = labels.shape
    m = structure.margin_px
    ny, nx = ny_ext - 2 * m, nx_ext - 2 * m
    if p["shape_zyx"] != [nz, ny, nx]:
        raise InputError("render parameters do not match the structure", field="shape_zyx",
                         expected=[nz, ny, nx], found=p["shape_zyx"])
    drift = true_drift_px(p)
    if np.abs(drift).max() + 3 > m:
        raise InputError("drift exceeds the structure margin; regenerate the structure with "
                         "these render parameters", field="render.drift_total_px",
                         expected=f"max |drift| <= {m - 3} px", found=float(np.abs(drift).max()))
    brightness = brightness_factors(p)
    shading = shading_field(p, (ny, nx))
    curtain_profile, curtain_envelope = _curtain_field(p, labels.shape)
    curtain_amp = r["curtain_amplitude"]
    next_z = _shine_through_next_z(labels)
    yy, xx = np.ogrid[:ny_ext, :nx_ext]

    levels = {ch: np.array([r[key][name] for name in sorted(PHASES, key=PHASES.get)],
                           dtype=np.float32)
              for ch, key in (("BSE", "bse_levels"), ("SE", "se_levels"))}
    pore_bse, pore_value = levels["BSE"][PHASES["pore"]], PHASES["pore"]
    depth_um_per_slice = p["voxel_size_um"]
    edge_norm = math.sqrt(2 * math.pi) * SE_EDGE_SIGMA_PX  # step edge -> peak gradient 1
    photons = r["photons_per_unit"] or 0
    window = (slice(m, m + ny), slice(m, m + nx))

    for z in range(nz):
        slice_labels = labels[z]
        pore = slice_labels == pore_value
        # 1. ideal images
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
        ideal = {"BSE": bse, "SE": se.astype(np.float32)}
        # 2. curtains (sample frame)
        if r["curtain_axis"] == "y":
            stripes = curtain_envelope[:, None] * curtain_profile[z][None, :]
        else:
            stripes = curtain_profile[z][:, None] * curtain_envelope[None, :]
        rng = _rng(p["seed"], _STREAM_NOISE, z)
        out = {}
        for ch in CHANNELS:
            image = ideal[ch] + np.float32(curtain_amp.get(ch, 0.0)) * stripes
            # 3. blur, 4. drift + crop
            if r["blur_sigma_px"]:
                image = ndimage.gaussian_filter(image, r["blur_sigma_px"])
            image = ndimage.shift(image, drift[z], order=3, mode="nearest")[window]
            # 5. shading x brightness, 6. noise
            intensity = np.clip(image * shading * brightness[z], 0.0, None)
            if photons > 0:
                intensity = rng.poisson(intensity * photons) / photons
            if r["read_noise"] > 0:
                intensity = intensity + rng.normal(0.0, r["read_noise"], size=intensity.shape)
            counts = np.rint(intensity * r["counts_scale"] + r["counts_offset"])
            out[ch] = np.clip(counts, 0, np.iinfo(np.uint16).max).astype(np.uint16)
        yield z, out


# --------------------------------------------------------------------------- writing
def _move_into_place(src: Path, dst: Path) -> None:
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(src, dst)


def write_phantom(out_dir, params: dict, sample_name: str, phases: dict | None = None) -> dict:
    """Generate and render a phantom into ``out_dir``: ``BSE.tif``, ``SE.tif`` (ImageJ uint16
    ZYX stacks, one page per slice, with µm spacing), ``ground_truth.zarr`` (central-window
    labels, cam_particle_id, per-slice drift and brightness; µm coords) and ``phantom.json``.
    Files are written in a temporary folder inside ``out_dir`` and moved to their final names
    only when complete (``phantom.json`` last). Also ``sample.yaml``: a sample file naming the
    two stacks, so they ingest like real data; ``phases`` is its phase table (default: the
    phantom labels without material data). Returns the paths and achieved fractions."""
    p = resolve_params(params)
    import tifffile
    import xarray as xr

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    structure = generate_structure(p)
    drift = true_drift_px(p)
    brightness = brightness_factors(p)
    vs = float(p["voxel_size_um"])
    nz, ny, nx = p["shape_zyx"]
    fractions = structure.info["volume_fraction"]
    names = {"BSE": "BSE.tif", "SE": "SE.tif", "ground_truth": "ground_truth.zarr",
             "sample_yaml": "sample.yaml", "phantom_json": "phantom.json"}

    tmp = Path(tempfile.mkdtemp(prefix=".phantom.tmp-", dir=out_dir))
    try:
        # ImageJ hyperstacks (axes ZYX) allocated by tifffile, then filled page by page.
        stacks = {ch: tifffile.memmap(tmp / names[ch], shape=(nz, ny, nx), dtype=np.uint16,
                                      imagej=True, resolution=(1 / vs, 1 / vs),
                                      metadata={"spacing": vs, "unit": "um", "axes": "ZYX"})
                  for ch in CHANNELS}
        try:
            for z, images in render_slices(structure, p):
                for ch in CHANNELS:
                    stacks[ch][z] = images[ch]
        finally:
            for stack in stacks.values():
                stack.flush()
            del stacks

        coords = {"z": (np.arange(nz) + 0.5) * vs, "y": (np.arange(ny) + 0.5) * vs,
                  "x": (np.arange(nx) + 0.5) * vs}
        dataset = xr.Dataset(
            {"labels": (("z", "y", "x"), structure.central(structure.labels)),
             "cam_particle_id": (("z", "y", "x"), structure.central(structure.cam_particle_id)),
             "drift_dy_px": (("z",), drift[:, 0]),
             "drift_dx_px": (("z",), drift[:, 1]),
             "brightness_factor": (("z",), brightness)},
            coords=coords,
            attrs={"phases": dict(PHASES), "voxel_size_um": [vs, vs, vs],
                   "volume_fraction": fractions, "params": p,
                   "drift_convention": DRIFT_CONVENTION, "sample_name": sample_name})
        for name in ("z", "y", "x"):
            dataset[name].attrs["units"] = "um"
        write_zarr_atomic(dataset.chunk({"z": 64, "y": 256, "x": 256}),
                          tmp / names["ground_truth"])

        summary = {
            "sample_name": sample_name,
            "volume_fraction": fractions,
            "porosity": fractions["pore"],
            "cam_clustering": structure.info["cam_clustering"],
            "se_access_radius_um": structure.info["se_access_radius_um"],
            "n_cam_particles": structure.info["n_cam_particles"],
            "drift_total_px": {"dy": float(drift[-1, 0]), "dx": float(drift[-1, 1])},
            "drift_convention": DRIFT_CONVENTION,
            "voxel_size_um": [vs, vs, vs],
            "shape_zyx": [nz, ny, nx],
            "params": p,
        }
        (tmp / names["phantom_json"]).write_text(json.dumps(summary, indent=2))
        sample_file = {
            "description": f"Phantom '{sample_name}' generated by voxelyte; ground truth in "
                           f"{names['ground_truth']}.",
            "inputs": [{"name": ch, "format": "tiff", "path": names[ch]} for ch in CHANNELS],
            "voxel_size_um": {axis: vs for axis in "zyx"},
            "phases": phases or {name: {"label": label} for name, label in PHASES.items()},
        }
        (tmp / names["sample_yaml"]).write_text(yaml.safe_dump(sample_file, sort_keys=False))

        for key in ("BSE", "SE", "ground_truth", "sample_yaml", "phantom_json"):
            _move_into_place(tmp / names[key], out_dir / names[key])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = {key: str(out_dir / name) for key, name in names.items()}
    result.update({"volume_fraction": fractions, "porosity": fractions["pore"],
                   "cam_clustering": structure.info["cam_clustering"]})
    return result
