"""Per-slice multiscale features of a multi-channel stack (intensity, edges, Hessian texture at
several scales, plus the smoothed intensity of neighbouring slices), for the random forest."""
from __future__ import annotations

import dask.array as da
import numpy as np
from scipy import ndimage

#: Settings that define the features (kept with a trained model).
FEATURE_KEYS = ("sigma_min_px", "sigma_max_px", "num_sigma", "intensity", "edges", "texture",
                "z_context")


def feature_names(channels: list[str], p: dict) -> list[str]:
    """Names of the feature columns, in the order :func:`slab_features` returns them.

    Parameters
    ----------
    channels : list of str
        Channel names.
    p : dict
        Segment settings (the :data:`FEATURE_KEYS`).

    Returns
    -------
    list of str
    """
    sigmas = np.logspace(np.log2(p["sigma_min_px"]), np.log2(p["sigma_max_px"]),
                         num=int(p["num_sigma"]), base=2, endpoint=True)
    names = []
    for ch in channels:
        for s in sigmas:
            if p["intensity"]:
                names.append(f"{ch} intensity s={s:.2f}")
            if p["edges"]:
                names.append(f"{ch} edges s={s:.2f}")
            if p["texture"]:
                names.extend(f"{ch} hessian eig{i} s={s:.2f}" for i in range(2))
    for ch in channels:
        names.extend(f"{ch} intensity z{k:+d}" for k in _z_offsets(p))
    return names


def _z_offsets(p: dict) -> list[int]:
    k = int(p["z_context"])
    return [o for o in range(-k, k + 1) if o != 0]


def _sigmas(p):
    return dict(sigma_min=p["sigma_min_px"], sigma_max=p["sigma_max_px"],
                num_sigma=int(p["num_sigma"]), intensity=p["intensity"], edges=p["edges"],
                texture=p["texture"])


def halo_slices(p: dict) -> int:
    """Slices of context a chunk needs on each side in z.

    Parameters
    ----------
    p : dict
        Segment settings.

    Returns
    -------
    int
        ``z_context``.
    """
    return int(p["z_context"])


def _context_planes(slab: np.ndarray, p: dict, offsets: list[int]) -> np.ndarray | None:
    """Every plane of every channel lightly smoothed, for the neighbouring-slice features."""
    if not offsets:
        return None
    s = min(0.7, p["sigma_min_px"]) if p["sigma_min_px"] > 0 else 0.7
    return np.stack([np.stack([ndimage.gaussian_filter(slab[c, z], s)
                               for z in range(slab.shape[1])]) for c in range(slab.shape[0])])


def slab_features(slab: np.ndarray, p: dict, lead: int, n_out: int) -> np.ndarray:
    """Features of slices ``lead .. lead + n_out`` of a slab.

    Per slice and channel ``skimage.feature.multiscale_basic_features`` (Gaussian-smoothed
    intensity, gradient magnitude, Hessian eigenvalues at ``num_sigma`` scales from
    ``sigma_min_px`` to ``sigma_max_px``), then the smoothed intensity of the ``z_context``
    slices before and after (clipped at the slab's ends).

    Parameters
    ----------
    slab : numpy.ndarray
        ``(C, Z, Y, X)`` float32; ``lead`` context slices before, context after as available.
    p : dict
        Segment settings.
    lead : int
        Index of the first output slice in the slab.
    n_out : int
        Output slices.

    Returns
    -------
    numpy.ndarray
        ``(n_out, Y, X, F)`` float32, columns as :func:`feature_names`.
    """
    from skimage.feature import multiscale_basic_features

    slab = np.nan_to_num(np.asarray(slab, dtype=np.float32), nan=0.0)
    nz = slab.shape[1]
    offsets = _z_offsets(p)
    sm = _context_planes(slab, p, offsets)
    out = None
    for k, i in enumerate(range(lead, lead + n_out)):
        f = multiscale_basic_features(np.moveaxis(slab[:, i], 0, -1), channel_axis=-1,
                                      workers=1, **_sigmas(p))
        n_basic = f.shape[-1]
        if out is None:  # filled in place: no second copy of the chunk's features
            n_ctx = slab.shape[0] * len(offsets)
            out = np.empty((n_out, *f.shape[:2], n_basic + n_ctx), dtype=np.float32)
        out[k, ..., :n_basic] = f
        del f
        for j, (c, o) in enumerate((c, o) for c in range(slab.shape[0]) for o in offsets):
            out[k, ..., n_basic + j] = sm[c, min(max(i + o, 0), nz - 1)]
    return out


def read_slab(data, z0: int, z1: int, halo: int) -> tuple[np.ndarray, int]:
    """Slices ``[z0 - halo, z1 + halo)`` of a ``(C, Z, Y, X)`` array, clipped at the ends.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
    z0, z1 : int
        The slices wanted.
    halo : int
        Context slices on each side.

    Returns
    -------
    slab : numpy.ndarray
        float32.
    lead : int
        Number of leading context slices.
    """
    nz = data.shape[1]
    a, b = max(0, z0 - halo), min(nz, z1 + halo)
    slab = data[:, a:b]
    if isinstance(slab, da.Array):
        slab = slab.compute(scheduler="synchronous")
    return np.asarray(slab, dtype=np.float32), z0 - a
