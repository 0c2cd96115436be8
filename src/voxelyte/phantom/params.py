"""Phantom parameters: the schema defaults merged with a sample file's ``phantom`` section and
validated, the label and channel conventions, the model constants and the seeded random streams."""
from __future__ import annotations

import numpy as np

from voxelyte import config as _config
from voxelyte.contract import to_jsonable
from voxelyte.errors import InputError

PHASES = {"pore": 0, "CAM": 1, "SE": 2}
CHANNELS = ("BSE", "SE")

#: Every parameter with its default: the schema (``sample.schema.yaml``, ``phantom``) is the source.
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


#: Recursive merge of parameter dicts (later wins), as for the sample files.
merge_params = _config.deep_merge


def resolve_params(params: dict | None = None) -> dict:
    """Phantom parameters: ``DEFAULTS`` merged recursively with ``params``, validated.

    Parameters
    ----------
    params : dict, optional
        A sample file's ``phantom`` section (any subset).

    Returns
    -------
    dict
        Every parameter, plain JSON types; invalid values raise InputError.
    """
    p = _config.validate(to_jsonable(merge_params(DEFAULTS, params or {})),
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
    the CAM more clustered.

    Parameters
    ----------
    params : dict
        Phantom parameters (resolved by :func:`resolve_params`).

    Returns
    -------
    float

    References
    ----------
    Minnmann, P. et al. (2024). J. Electrochem. Soc. 171, 060514 (BM10 vs BM03 / BM01).
    """
    p = resolve_params(params)
    if p["cam_clustering"] != "auto":
        return float(p["cam_clustering"])
    ratio = p["se_d50_um"] / p["cam_d50_um"]
    return round(float(np.clip(CLUSTERING_SLOPE * (ratio - CLUSTERING_ONSET_RATIO), 0.0,
                               CLUSTERING_MAX)), 6)


def se_access_radius_um(params: dict) -> float:
    """Radius of the ball that SE can push into the non-CAM space: alpha * se_d50 / 2.

    Parameters
    ----------
    params : dict
        Phantom parameters (resolved by :func:`resolve_params`).

    Returns
    -------
    float
        Radius in µm.
    """
    p = resolve_params(params)
    return SE_ACCESS_ALPHA * p["se_d50_um"] / 2

