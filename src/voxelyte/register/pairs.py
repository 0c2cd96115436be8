"""Slice pairs: each slice prepared for registration (standardised, periodic component), and the
pair measurements between neighbouring slices: sub-pixel phase correlation (translation) or
TurboReg via pystackreg (rigid, scaled rotation, affine)."""
from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr
from scipy import ndimage

from voxelyte.contract import as_channel_stack, channel_index, channel_names
from voxelyte.errors import InputError

log = logging.getLogger(__name__)

METHODS = ("translation", "rigid", "scaled_rotation", "affine")
#: pystackreg (TurboReg) transformation model of each non-translation method
_STACKREG_MODEL = {"rigid": "RIGID_BODY", "scaled_rotation": "SCALED_ROTATION",
                   "affine": "AFFINE"}
_BLANK_REL_STD = 1e-6
#: Gaussian pre-smoothing (px) of the images registered by TurboReg ("rigid", "scaled_rotation",
#: "affine") when ``smooth_sigma_px`` is None: TurboReg's least squares on shot-noisy slices is
#: biased (measured on the 40 x 320 x 320 phantoms: 0.045 px / pair unsmoothed, 0.018 px with
#: 1.5 px; phase correlation is not helped by it).
STACKREG_SMOOTH_SIGMA_PX = 1.5


def _as_czyx(stack: xr.DataArray) -> xr.DataArray:
    stack = as_channel_stack(stack)
    if stack.sizes["z"] < 2:
        raise InputError("registration needs at least two slices", field="z",
                         expected="a stack of >= 2 slices", found=f"{stack.sizes['z']} slice(s)")
    if stack.dtype.kind not in "iuf":
        raise InputError("image data are not numeric", expected="integer or float",
                         found=str(stack.dtype))
    return stack


def _reference_index(stack: xr.DataArray, reference_channel) -> list[int]:
    names = channel_names(stack)
    if reference_channel in (None, "all"):
        return list(range(len(names)))
    if reference_channel == "BSE" and "BSE" not in names:  # the default: the first channel
        log.info("no 'BSE' channel (channels %s): registering on '%s'", names, names[0])
    return [channel_index(stack, reference_channel, field="reference_channel",
                          expected=f"one of {names} or 'all'")]


def _periodic_component(image: np.ndarray) -> np.ndarray:
    """Periodic component of the periodic-plus-smooth decomposition (Moisan 2011, J. Math.
    Imaging Vis. 39, 161): ``p = u - s`` with the smooth ``s`` solving ``laplacian(s) =
    laplacian_periodic(u) - laplacian(u)`` (boundary jumps ``v``), in Fourier space ``s^(q, r) =
    v^(q, r) / (2 cos(2 pi q / M) + 2 cos(2 pi r / N) - 4)``, ``s^(0, 0) = 0``. Removes the
    cross-shaped FFT leakage of the image edges without down-weighting the field margins."""
    u = np.asarray(image, dtype=np.float64)
    jumps = np.zeros_like(u)
    jumps[0, :] += u[-1, :] - u[0, :]
    jumps[-1, :] += u[0, :] - u[-1, :]
    jumps[:, 0] += u[:, -1] - u[:, 0]
    jumps[:, -1] += u[:, 0] - u[:, -1]
    cy = np.cos(2.0 * np.pi * np.fft.fftfreq(u.shape[0]))[:, None]
    cx = np.cos(2.0 * np.pi * np.fft.fftfreq(u.shape[1]))[None, :]
    denominator = 2.0 * cy + 2.0 * cx - 4.0
    denominator[0, 0] = 1.0
    smooth = np.fft.fft2(jumps) / denominator
    smooth[0, 0] = 0.0
    return u - np.real(np.fft.ifft2(smooth))



def prepare_slice(images: np.ndarray, min_valid_fraction: float, *, periodic: bool = True,
                  smooth_sigma_px: float = 0.0):
    """One slice's image for registration.

    Each channel is standardised (zero mean, unit variance; non-finite voxels filled with the
    slice median), the channels are averaged, Gaussian-smoothed by ``smooth_sigma_px`` and, when
    ``periodic``, reduced to the periodic component of the periodic-plus-smooth decomposition
    (no FFT edge leakage, no down-weighted margins).

    Parameters
    ----------
    images : numpy.ndarray
        ``(k, Y, X)``: the slice in the ``k`` reference channels.
    min_valid_fraction : float
        A channel with a smaller fraction of finite voxels makes the slice invalid.
    periodic : bool
        Take the periodic component (phase correlation); False for TurboReg, which masks the
        border itself.
    smooth_sigma_px : float
        Gaussian pre-smoothing (px); 0: none.

    Returns
    -------
    numpy.ndarray or None
        The prepared float64 image; None for an invalid slice.
    str
        ``"blank"`` or ``"non-finite"`` (invalid), ``"non-finite voxels filled"`` or ``""``.

    References
    ----------
    Moisan, L. (2011). Periodic plus smooth image decomposition. J. Math. Imaging Vis. 39, 161.
    """
    parts = []
    for image in images:
        image = np.asarray(image, dtype=np.float64)
        finite = np.isfinite(image)
        fraction = finite.mean()
        if fraction < min_valid_fraction:
            return None, "non-finite"
        if fraction < 1:
            image = np.where(finite, image, np.median(image[finite]))
        std = image.std()
        if not std > _BLANK_REL_STD * max(abs(image.mean()), 1.0):
            return None, "blank"
        parts.append((image - image.mean()) / std)
    combined = np.mean(parts, axis=0)
    if smooth_sigma_px > 0:
        combined = ndimage.gaussian_filter(combined, smooth_sigma_px, mode="reflect")
    if periodic:
        combined = _periodic_component(combined)
    return combined, "non-finite voxels filled" \
        if any(not np.isfinite(im).all() for im in images) else ""


def _refine_peak(reference: np.ndarray, moving: np.ndarray, shift: np.ndarray,
                 step: float) -> np.ndarray:
    """Sub-grid refinement of a cross-correlation peak found on a grid of ``step`` px: the
    band-limited correlation ``cc(t) = sum_k F(k) exp(2 pi i k t / N)``, ``F = R conj(M)``, is
    evaluated at ``shift + (-step, 0, step)`` along each axis (separable matrix DFT) and the
    vertex of the parabola through the three values is taken. Without it the grid quantises
    every pair shift, a bias that adds up over the stack when the drift per slice is
    smaller than the grid (e.g. 0.008 px / slice on a 0.01 px grid: +1 px after 500 slices)."""
    product = np.fft.fft2(reference) * np.conj(np.fft.fft2(moving))
    ky = np.fft.fftfreq(product.shape[0])
    kx = np.fft.fftfreq(product.shape[1])
    offsets = np.array([-step, 0.0, step])
    ey = np.exp(2j * np.pi * np.outer(shift[0] + offsets, ky))   # (3, Ny)
    ex = np.exp(2j * np.pi * np.outer(shift[1] + offsets, kx))   # (3, Nx)
    cc = np.real(ey @ product @ ex.T)                            # (3, 3): (dy, dx) offsets
    refined = np.array(shift, dtype=np.float64)
    for axis, values in enumerate((cc[:, 1], cc[1, :])):
        curvature = values[0] - 2.0 * values[1] + values[2]
        if curvature < 0:  # a maximum: vertex within half a grid step
            delta = 0.5 * (values[0] - values[2]) / curvature
            refined[axis] += step * float(np.clip(delta, -1.0, 1.0))
    return refined


def correlate_pair(reference: np.ndarray, moving: np.ndarray, upsample_factor: int):
    """Translation between two prepared slices by sub-pixel phase correlation.

    The upsampled-DFT peak (``skimage.registration.phase_cross_correlation``, no amplitude
    normalisation) refined by a parabola through the band-limited correlation (grid ``1 /
    upsample_factor`` px).

    Parameters
    ----------
    reference, moving : numpy.ndarray
        Prepared slices (:func:`prepare_slice`).
    upsample_factor : int
        Peak grid of ``1 / upsample_factor`` px.

    Returns
    -------
    numpy.ndarray
        ``m = d_moving - d_reference`` (px, (dy, dx)).
    float
        Quality ``sqrt(1 - error)`` in [0, 1], the normalised correlation peak.

    References
    ----------
    Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Efficient subpixel image
    registration algorithms. Opt. Lett. 33, 156.
    """
    from skimage.registration import phase_cross_correlation

    shift, error, _ = phase_cross_correlation(reference, moving, upsample_factor=upsample_factor,
                                              normalization=None)
    if upsample_factor > 1:
        shift = _refine_peak(reference, moving, np.asarray(shift, dtype=np.float64),
                             1.0 / upsample_factor)
    quality = math.sqrt(max(0.0, 1.0 - float(error)))
    # phase_cross_correlation returns the shift that registers `moving` onto `reference`,
    # i.e. -(d_moving - d_reference).
    return -np.asarray(shift, dtype=np.float64), quality


def _stackreg_pair(reference: np.ndarray, moving: np.ndarray, method: str):
    """Pair transform P (3x3, (y, x) pixel coordinates) with ``moving(P p) ~ reference(p)``,
    i.e. ``P = T_moving T_reference^-1``, by TurboReg (Thevenaz et al. 1998, IEEE TIP 7, 27:
    pyramid least-squares intensity matching; ``pystackreg.StackReg``, whose matrix maps
    reference to moving coordinates in (x, y) order), and quality = Pearson correlation of the
    reference and the moving image warped by P over the pixels that P maps inside (0 for a
    degenerate P: |det| outside [0.5, 2] or non-finite)."""
    from pystackreg import StackReg

    sr = StackReg(getattr(StackReg, _STACKREG_MODEL[method]))
    m_xy = sr.register(reference, moving)
    swap = [1, 0, 2]
    pair = np.asarray(m_xy, dtype=np.float64)[np.ix_(swap, swap)]
    det = float(np.linalg.det(pair[:2, :2]))
    if not (np.isfinite(pair).all() and 0.5 <= abs(det) <= 2.0):
        return np.eye(3), 0.0
    warped = ndimage.affine_transform(moving, pair[:2, :2], offset=pair[:2, 2], order=1,
                                      mode="constant", cval=np.nan)
    inside = np.isfinite(warped)
    if inside.mean() < 0.25:
        return pair, 0.0
    a, b = reference[inside], warped[inside]
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum())) or 1.0
    return pair, max(0.0, float((a * b).sum()) / denom)


def _chunk_pairs(block: np.ndarray, first_z: int, lead: int, upsample_factor: int,
                 min_valid_fraction: float, method: str = "translation",
                 smooth_sigma_px: float = 0.0):
    """Pairs (z, z - 1) for the slices of one z-chunk; ``block`` = (channels, lead + n, Y, X)
    holds ``lead`` (0 or 1) earlier slices first. Returns (notes per own slice, list of pairs):
    ``(z, z - 1, dy, dx, quality)`` for "translation", ``(z, z - 1, P, quality)`` (P the 3x3
    pair transform of ``_stackreg_pair``) for the other methods."""
    periodic = method == "translation"  # TurboReg masks the border itself
    prepared = [prepare_slice(block[:, i], min_valid_fraction, periodic=periodic,
                              smooth_sigma_px=smooth_sigma_px) for i in range(block.shape[1])]
    notes, pairs = [], []
    for i in range(lead, block.shape[1]):
        z = first_z + i - lead
        image, note = prepared[i]
        notes.append(note if image is None else (note or "ok"))
        if image is None or i < 1 or prepared[i - 1][0] is None:
            continue
        if method == "translation":
            m, q = correlate_pair(prepared[i - 1][0], image, upsample_factor)
            pairs.append((z, z - 1, m[0], m[1], q))
        else:
            pair, q = _stackreg_pair(prepared[i - 1][0], image, method)
            pairs.append((z, z - 1, pair, q))
    return notes, pairs
