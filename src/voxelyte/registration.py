"""Slice registration of PFIB-SEM stacks: in-plane drift estimation and correction.

Minnmann et al. 2024 (Experimental) correct the stage / beam drift of the slice stack with
MultiStackReg, applying identical shifts to the BSE and SE stacks. Here the drift is estimated
by sub-pixel phase correlation (Guizar-Sicairos et al. 2008, Opt. Lett. 33, 156;
``skimage.registration.phase_cross_correlation``) between neighbouring slices of a reference
channel (or of all channels combined):

* each slice is standardised (zero mean, unit variance) and reduced to its periodic component
  (periodic-plus-smooth decomposition, Moisan 2011, ``window="periodic"``, the default): no
  FFT edge leakage, and unlike an apodisation window (``"tukey"``, ``"hann"``) every particle
  section in the field weighs the same, which lowers the structure-induced error below; the
  correlation is not amplitude-normalised (``normalization=None``):
  phase-only normalisation is biased (~0.1 px) by the noise of these images;
* the pair (z, z - j) gives ``m = d_z - d_{z-j}`` (``neighbours`` = max j); the absolute drift
  (relative to the first valid slice, ``d_0 = 0``) is the least-squares solution of all
  accepted pairs, weighted by their quality (for ``neighbours = 1``: the cumulative sum);
* quality of a pair = normalised correlation peak ``sqrt(1 - error)`` in [0, 1]
  (``error`` of phase_cross_correlation = 1 - |CC_max|^2 / (|A|^2 |B|^2));
* blank (constant) slices and slices with more than ``1 - min_valid_fraction`` non-finite
  voxels are invalid: quality 0, drift linearly interpolated from the neighbours, logged.
  Remaining non-finite voxels are replaced by the slice median for the estimate. A pair with
  quality below ``min_quality`` is not trusted: the slice is registered against the last
  registered slice instead (up to ``max_gap`` slices back); if that fails too, the slice is
  invalid (interpolated). Nothing is shifted by an untrusted measurement.

Accuracy and its limit (measured on ``voxelyte.phantom`` stacks against the ground-truth
drift). Phase correlation of two *different* slices of a 3D structure measures the drift plus
the apparent in-plane motion of the interfaces that are inclined to the slice plane. It is
zero on average but random per pair, with ``sigma_pair ~ 0.5 px * d50 / field`` (d50 the
particle size, field the image width, same units; e.g. 0.047 / 0.020 / 0.0095 px for 160 /
320 / 640 px fields of 1.2 µm CAM at 0.1 µm voxels, noise-free and unshaded: noise, curtains
and shading change it little), and persistent over about half a particle height in z (lag-1
autocorrelation of the pair errors 0.5-0.7). Chained over ``N`` slices it random-walks:
``error(N) ~ sigma_pair * sqrt(N * d50_slices / 2)``. For a stack of 40 slices, a 320 px
field and 12 px particles (~27 particle diameters across the field) the RMS error is
0.07-0.25 px, max < 0.7 px (seeds 1-10 of the acceptance phantom; with a Tukey window 0.13-0.39
px, max 0.9 px: the tapered margins drop particle sections and the error depends on what
enters them); a 160 px field of 25 px particles (6 diameters, the 160^3 demo
phantoms) reaches 2-4 px after 160 slices, and a 1000 px field of 50 px (5 µm) particles
(20 diameters) would reach ~1-3 px after 500 slices. Longer lags (``neighbours`` > 1),
combining channels (``"all"``: lower on most seeds, not on all), high-pass filtering,
median of tile-wise shifts and polynomial regularisation do not remove it (the error is coherent over lags and as smooth as real
drift); only more particle sections per field (or fine texture, or fiducials) do. Sub-pixel
peak: the upsampled-DFT peak (grid ``1 / upsample_factor`` px) is refined by a parabola
through the band-limited correlation at +-1 grid step (``_refine_peak``); without it every
pair is rounded to the grid, a bias that adds up when the drift per slice is below the grid
(measured: 0.02 px / slice on the 1/20 px grid: 0.6 px after 60 slices; 0.008 px / slice on
a 1/100 px grid: 1 px after 500 slices; with the refinement on the default 1/100 px grid:
0.01 px after 120 slices, on a 1/20 px grid 0.13 px: the parabola is only locally exact).

Drift convention (as ``voxelyte.phantom.DRIFT_CONVENTION``): ``raw[z](y, x) = ideal[z](y - dy_z,
x - dx_z)``; ``apply_drift`` shifts slice z by ``-d_z`` (cubic spline, scipy.ndimage.shift), the
same shift for every channel, and crops the border that became invalid.

Rigid / scaled rotation / affine (``method``): TurboReg (Thevenaz, Ruttimann & Unser 1998, IEEE
TIP 7, 27; the engine of StackReg / MultiStackReg used by Minnmann et al.) through pystackreg.
Each slice is registered against its neighbour (pair transform ``P_z = T_z T_{z-1}^-1``) on the
same prepared image as above, but without apodisation window and Gaussian-smoothed by
``smooth_sigma_px`` (default 1.5 px: TurboReg's least squares is biased by shot noise,
measured 0.045 -> 0.018 px per pair); absolute ``T_z = P_z T_{z-1}`` (matrix products, no
least squares over longer lags); the pair quality is the Pearson correlation of the reference
and the warped moving slice. Blank / non-finite / low-quality slices are handled as above
(bridging, then linear interpolation of the parameters). General convention: ``raw[z](T_z(p)) =
ideal[z](p)``, ``T_z(p) = A_z p + b_z`` with p = (y, x) in pixel index coordinates;
``apply_drift`` resamples ``registered[z](p) = raw[z](T_z(p))`` (scipy.ndimage.affine_transform)
for every channel. ``drift.csv`` keeps ``dy_px, dx_px`` as the displacement of the image centre
``T_z(c) - c`` (= d_z for translation) and adds ``rotation_deg`` and ``A, b``
(``DRIFT_COLUMNS``). The same structure-induced random walk limits these methods, now also in
angle (~ error / field radius: ~0.1 deg over 25 slices of the 288 px test field) and scale.
"""
from __future__ import annotations

import logging
import math

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage, signal

from voxelyte.errors import InputError
from voxelyte.io import as_channel_stack, volume_voxel_size_um

log = logging.getLogger(__name__)

METHODS = ("translation", "rigid", "scaled_rotation", "affine")
#: pystackreg (TurboReg) transformation model of each non-translation method
_STACKREG_MODEL = {"rigid": "RIGID_BODY", "scaled_rotation": "SCALED_ROTATION",
                   "affine": "AFFINE"}
REGULARISE = ("none", "median", "savgol", "polynomial")
#: Columns of ``drift.csv``. ``dy_px, dx_px`` (and ``_um``): displacement of the image centre
#: ``T_z(c) - c`` (the whole drift for "translation"); ``rotation_deg``: rotation angle of
#: ``T_z``; ``a_yy, a_yx, a_xy, a_xx, b_y, b_x``: the full affine ``T_z(p) = A p + b`` in pixel
#: index coordinates p = (y, x) (origin at the centre of the first pixel) with
#: ``raw[z](T_z(p)) = ideal[z](p)`` (identity A and b = d for "translation").
AFFINE_COLUMNS = ("a_yy", "a_yx", "a_xy", "a_xx", "b_y", "b_x")
DRIFT_COLUMNS = ("z_index", "z_um", "dy_px", "dx_px", "dy_um", "dx_um", "rotation_deg",
                 *AFFINE_COLUMNS, "quality", "valid", "note")
#: Defaults of ``register`` (the schema fragment mirrors them).
REGISTER_DEFAULTS = {
    "reference_channel": "BSE",
    "method": "translation",
    "upsample_factor": 100,
    "neighbours": 1,
    "regularise": "none",
    "regularise_window": 9,
    "regularise_order": 1,
    "min_quality": 0.1,
    "min_valid_fraction": 0.5,
    "max_gap": 10,
    "window": "periodic",
    "highpass_sigma_px": 0.0,
    "smooth_sigma_px": None,
    "crop_border": "auto",
    "interpolation_order": 3,
    "num_workers": 1,
}
_BLANK_REL_STD = 1e-6
#: Gaussian pre-smoothing (px) of the images registered by TurboReg ("rigid", "scaled_rotation",
#: "affine") when ``smooth_sigma_px`` is None: TurboReg's least squares on shot-noisy slices is
#: biased (measured on the 40 x 320 x 320 phantoms: 0.045 px / pair unsmoothed, 0.018 px with
#: 1.5 px; phase correlation is not helped by it).
STACKREG_SMOOTH_SIGMA_PX = 1.5


# --------------------------------------------------------------------------- helpers
def _as_czyx(stack: xr.DataArray) -> xr.DataArray:
    stack = as_channel_stack(stack)
    if stack.sizes["z"] < 2:
        raise InputError("registration needs at least two slices", field="z",
                         expected="a stack of >= 2 slices", found=f"{stack.sizes['z']} slice(s)")
    if stack.dtype.kind not in "iuf":
        raise InputError("image data are not numeric", expected="integer or float",
                         found=str(stack.dtype))
    return stack


def _dask_data(stack: xr.DataArray) -> da.Array:
    data = stack.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(1, 8, -1, -1))
    return data.rechunk({2: -1, 3: -1})


def _reference_index(stack: xr.DataArray, reference_channel) -> list[int]:
    names = [str(c) for c in stack.coords["channel"].values] if "channel" in stack.coords \
        else [str(i) for i in range(stack.sizes["channel"])]
    if reference_channel in (None, "all"):
        return list(range(len(names)))
    if reference_channel in names:
        return [names.index(reference_channel)]
    if reference_channel == "BSE":  # the default: fall back to the first channel
        log.info("no 'BSE' channel (channels %s): registering on '%s'", names, names[0])
        return [0]
    raise InputError("reference channel not in the stack", field="reference_channel",
                     expected=f"one of {names} or 'all'", found=reference_channel)


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


def _window(shape, kind: str) -> np.ndarray:
    from skimage.filters import window

    if kind in ("none", "periodic"):  # "periodic": see _periodic_component, no weights
        return np.ones(shape)
    if kind == "hann":
        return window("hann", shape)
    if kind == "tukey":  # flat centre, cosine taper over the outer 12.5 % on each side
        return window(("tukey", 0.25), shape)
    raise InputError("unknown apodisation window", field="window",
                     expected='"periodic", "tukey", "hann" or "none"', found=kind)


def _prepare(images: np.ndarray, min_valid_fraction: float, window: str = "hann",
             highpass_sigma_px: float = 0.0, smooth_sigma_px: float = 0.0):
    """(k, Y, X) channel images of one slice -> (standardised, smoothed (Gaussian of
    ``smooth_sigma_px``), windowed float64 image or None, note). Channels are standardised
    separately and averaged ("all")."""
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
        if highpass_sigma_px > 0:  # drop shading fixed in the image frame (biases towards 0)
            image = image - ndimage.gaussian_filter(image, highpass_sigma_px, mode="reflect")
            std = image.std() or 1.0
        parts.append((image - image.mean()) / std)
    combined = np.mean(parts, axis=0)
    if smooth_sigma_px > 0:
        combined = ndimage.gaussian_filter(combined, smooth_sigma_px, mode="reflect")
    if window == "periodic":
        combined = _periodic_component(combined)
    return combined * _window(combined.shape, window), "non-finite voxels filled" \
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


def _correlate(reference: np.ndarray, moving: np.ndarray, upsample_factor: int):
    """Shift m = d_moving - d_reference (px, (dy, dx)) and quality in [0, 1]."""
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


def _chunk_pairs(block: np.ndarray, first_z: int, lead: int, neighbours: int,
                 upsample_factor: int, min_valid_fraction: float, window: str = "hann",
                 highpass_sigma_px: float = 0.0, method: str = "translation",
                 smooth_sigma_px: float = 0.0):
    """Pairs (z, z - j) for the slices of one z-chunk; ``block`` = (channels, lead + n, Y, X)
    holds ``lead`` earlier slices first. Returns (notes per own slice, list of pairs):
    ``(z, z - j, dy, dx, quality)`` for "translation", ``(z, z - 1, P, quality)`` (P the 3x3
    pair transform of ``_stackreg_pair``) for the other methods (called with window "none"
    and one neighbour: ``estimate_drift`` sets them)."""
    prepared = [_prepare(block[:, i], min_valid_fraction, window, highpass_sigma_px,
                         smooth_sigma_px) for i in range(block.shape[1])]
    notes, pairs = [], []
    for i in range(lead, block.shape[1]):
        z = first_z + i - lead
        image, note = prepared[i]
        notes.append(note if image is None else (note or "ok"))
        if image is None:
            continue
        for j in range(1, neighbours + 1):
            if i - j < 0 or prepared[i - j][0] is None:
                continue
            if method == "translation":
                m, q = _correlate(prepared[i - j][0], image, upsample_factor)
                pairs.append((z, z - j, m[0], m[1], q))
            else:
                pair, q = _stackreg_pair(prepared[i - j][0], image, method)
                pairs.append((z, z - j, pair, q))
    return notes, pairs


def _regularise(drift: np.ndarray, how: str, window: int, order: int) -> np.ndarray:
    """Smooth the (nz, k) absolute drift parameters column-wise; row 0 stays 0."""
    nz, k = drift.shape
    if how == "none" or nz < 3:
        return drift
    if how == "median":  # running median of the increments, re-accumulated
        increments = np.diff(drift, axis=0)
        size = max(1, min(window, increments.shape[0]))
        smooth = ndimage.median_filter(increments, size=(size, 1), mode="nearest")
        out = np.vstack([np.zeros((1, k)), np.cumsum(smooth, axis=0)])
    elif how == "savgol":
        length = min(window if window % 2 else window + 1, nz if nz % 2 else nz - 1)
        poly = min(2, length - 1)
        out = signal.savgol_filter(drift, length, poly, axis=0, mode="interp")
    else:  # robust polynomial in z (Huber-weighted least squares, 10 reweightings)
        z = np.linspace(-1.0, 1.0, nz)
        basis = np.vander(z, min(order, nz - 1) + 1)
        out = np.empty_like(drift)
        for axis in range(k):
            weights = np.ones(nz)
            for _ in range(10):
                coef, *_ = np.linalg.lstsq(basis * weights[:, None], drift[:, axis] * weights,
                                           rcond=None)
                residual = drift[:, axis] - basis @ coef
                scale = 1.4826 * np.median(np.abs(residual)) or 1e-9
                k = 1.345 * scale
                weights = np.sqrt(np.where(np.abs(residual) <= k, 1.0,
                                           k / np.maximum(np.abs(residual), 1e-300)))
            out[:, axis] = basis @ coef
    return out - out[0]


def _solve(nz: int, pairs: list, connected: np.ndarray, anchor: int) -> np.ndarray:
    """Weighted least squares d_a - d_b = m over the accepted pairs, d_anchor = 0."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import lsqr

    index = -np.ones(nz, dtype=int)
    unknown = [z for z in range(nz) if connected[z] and z != anchor]
    index[unknown] = np.arange(len(unknown))
    drift = np.zeros((nz, 2))
    if not unknown:
        return drift
    rows, cols, vals, rhs = [], [], [], []
    for r, (a, b, dy, dx, q) in enumerate(pairs):
        w = max(q, 1e-3)
        for z, sign in ((a, 1.0), (b, -1.0)):
            if index[z] >= 0:
                rows.append(r)
                cols.append(index[z])
                vals.append(sign * w)
        rhs.append((w * dy, w * dx))
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(pairs), len(unknown))).tocsr()
    rhs = np.asarray(rhs)
    for axis in range(2):
        drift[unknown, axis] = lsqr(matrix, rhs[:, axis], atol=1e-12, btol=1e-12)[0]
    return drift


# --------------------------------------------------------------------------- public API
def estimate_drift(stack: xr.DataArray, *, reference_channel: str | None = "BSE",
                   method: str = "translation", upsample_factor: int = 100, neighbours: int = 1,
                   regularise: str = "none", regularise_window: int = 9,
                   regularise_order: int = 1, min_quality: float = 0.1,
                   min_valid_fraction: float = 0.5, max_gap: int = 10,
                   window: str = "periodic", highpass_sigma_px: float = 0.0,
                   smooth_sigma_px: float | None = None,
                   num_workers: int = 1) -> pd.DataFrame:
    """Per-slice in-plane drift ``d_z = (dy, dx)`` of a (channel, z, y, x) or (z, y, x) stack.

    Streams z-chunks (each with the ``neighbours`` preceding slices) through phase correlation
    of the reference channel (``"all"`` / None: channels standardised and averaged); see the
    module docstring for the estimator, quality and the handling of blank / non-finite / noise
    slices. ``method``: "translation" (phase correlation, least squares over the pairs) or
    "rigid" / "scaled_rotation" / "affine" (TurboReg via pystackreg, neighbour pairs composed:
    ``T_z = P_z T_{z-1}``; ``neighbours``, ``window`` and ``upsample_factor`` apply to
    "translation" only). ``regularise``: "none", "median" (running median of the increments
    over ``regularise_window`` slices), "savgol" (Savitzky-Golay, order 2, over the window) or
    "polynomial" (Huber-robust fit of order ``regularise_order`` in z), applied to every
    parameter (centre displacement and ``A - I``).

    Returns one row per slice with the columns of ``DRIFT_COLUMNS``
    (``raw[z](T_z(p)) = ideal[z](p)``; translation: ``raw[z](y, x) = ideal[z](y - dy_z,
    x - dx_z)``; T = identity at the first valid slice)."""
    stack = _as_czyx(stack)
    _window((2, 2), window)
    if method not in METHODS:
        raise InputError("registration method not available", field="method",
                         expected=f"one of {list(METHODS)}", found=method)
    if regularise not in REGULARISE:
        raise InputError("unknown drift regularisation", field="regularise",
                         expected=f"one of {list(REGULARISE)}", found=regularise)
    if int(upsample_factor) < 1 or int(neighbours) < 1:
        raise InputError("upsample_factor and neighbours must be >= 1", field="upsample_factor",
                         expected=">= 1", found=(upsample_factor, neighbours))
    nz, ny, nx = stack.sizes["z"], stack.sizes["y"], stack.sizes["x"]
    vy, vx = volume_voxel_size_um(stack, ("y", "x"))
    channels = _reference_index(stack, reference_channel)
    data = _dask_data(stack)[channels]
    neighbours, upsample_factor = int(neighbours), int(upsample_factor)
    translation = method == "translation"
    if smooth_sigma_px is None:
        smooth_sigma_px = 0.0 if translation else STACKREG_SMOOTH_SIGMA_PX
    smooth_sigma_px = float(smooth_sigma_px)
    if not translation:
        if neighbours > 1:
            log.info("method %s composes neighbour pairs: neighbours=%d ignored", method,
                     neighbours)
        neighbours = 1
    pair_window = window if translation else "none"  # TurboReg masks the border itself

    # 1. streamed pass: one task per z-chunk, with the preceding `neighbours` slices
    tasks, starts = [], np.cumsum((0,) + data.chunks[1])
    for first, stop in zip(starts[:-1], starts[1:]):
        lead = min(neighbours, int(first))
        tasks.append(dask.delayed(_chunk_pairs)(data[:, first - lead:stop], int(first), lead,
                                                neighbours, upsample_factor, min_valid_fraction,
                                                pair_window, highpass_sigma_px, method,
                                                smooth_sigma_px))
    with dask.config.set(scheduler="threads", num_workers=num_workers):
        results = dask.compute(*tasks)
    notes = [n for chunk_notes, _ in results for n in chunk_notes]
    pairs = [p for _, chunk_pairs in results for p in chunk_pairs]
    valid = np.array([n not in ("blank", "non-finite") for n in notes])
    for z in np.flatnonzero(~valid):
        log.warning("slice z=%d is %s: quality 0, drift interpolated from its neighbours",
                    z, notes[z])

    # 2. accept pairs, link slices whose neighbour pairs failed to the last linked slice
    by_slice: dict[int, list] = {}
    for p in pairs:
        by_slice.setdefault(p[0], []).append(p)
    prepared_cache: dict[int, np.ndarray | None] = {}

    def prepared(z):
        if z not in prepared_cache:
            prepared_cache[z] = _prepare(np.asarray(data[:, z]), min_valid_fraction, pair_window,
                                         highpass_sigma_px, smooth_sigma_px)[0]
        return prepared_cache[z]

    def bridge(z, last):
        if translation:
            m, q = _correlate(prepared(last), prepared(z), upsample_factor)
            return (z, last, m[0], m[1], q)
        pair, q = _stackreg_pair(prepared(last), prepared(z), method)
        return (z, last, pair, q)

    connected = np.zeros(nz, dtype=bool)
    quality = np.zeros(nz)
    accepted = []
    anchor = int(np.flatnonzero(valid)[0]) if valid.any() else None
    if anchor is None:
        raise InputError("no slice can be registered: every slice is blank or non-finite",
                         field="raw", expected="slices with image content",
                         found=f"{nz} invalid slices")
    connected[anchor] = True
    last = anchor
    for z in range(anchor + 1, nz):
        if not valid[z]:
            continue
        good = [p for p in by_slice.get(z, []) if p[-1] >= min_quality and connected[p[1]]]
        if not good and z - last <= max_gap:  # bridge to the last registered slice
            candidate = bridge(z, last)
            if candidate[-1] >= min_quality:
                good = [candidate]
                notes[z] = f"bridged to z={last}"
                log.warning("slice z=%d registered against z=%d (neighbour pair below "
                            "min_quality %.2f)", z, last, min_quality)
        if not good:
            valid[z] = False
            notes[z] = "low quality"
            log.warning("slice z=%d: no pair reaches min_quality %.2f: quality 0, drift "
                        "interpolated", z, min_quality)
            continue
        accepted.extend(good)
        connected[z] = True
        quality[z] = max(p[-1] for p in good)
        last = z
    if nz > anchor + 1 and connected.sum() > 1:
        quality[anchor] = max(p[-1] for p in accepted if p[1] == anchor) \
            if any(p[1] == anchor for p in accepted) else 0.0

    # 3. absolute transforms, interpolation of invalid slices, regularisation. Parameters per
    # slice: centre displacement (dy, dx) and the entries of A - I (zero for translation).
    centre = np.array([(ny - 1) / 2.0, (nx - 1) / 2.0])
    params = np.zeros((nz, 6))
    if translation:
        params[:, :2] = _solve(nz, accepted, connected, anchor)
    else:
        absolute = {anchor: np.eye(3)}
        for z, b, pair, _ in accepted:  # one accepted pair per slice, in z order
            absolute[z] = pair @ absolute[b]
        for z, matrix in absolute.items():
            params[z, :2] = matrix[:2, :2] @ centre + matrix[:2, 2] - centre
            params[z, 2:] = (matrix[:2, :2] - np.eye(2)).ravel()
    z_all = np.arange(nz)
    for k in range(params.shape[1]):
        params[:, k] = np.interp(z_all, z_all[connected], params[connected, k])
    for z in np.flatnonzero(~connected):
        notes[z] = f"{notes[z]}; interpolated"
    params = _regularise(params - params[0], regularise, int(regularise_window),
                         int(regularise_order))
    if translation:
        params[:, 2:] = 0.0
    linear = params[:, 2:].reshape(nz, 2, 2) + np.eye(2)
    offset = params[:, :2] + centre - linear @ centre
    rotation_deg = np.degrees(np.arctan2(linear[:, 0, 1] - linear[:, 1, 0],
                                         linear[:, 0, 0] + linear[:, 1, 1]))

    z_um = (np.asarray(stack.coords["z"].values, dtype=float) if "z" in stack.coords
            else z_all.astype(float))
    table = pd.DataFrame({
        "z_index": z_all, "z_um": z_um, "dy_px": params[:, 0], "dx_px": params[:, 1],
        "dy_um": params[:, 0] * vy, "dx_um": params[:, 1] * vx, "rotation_deg": rotation_deg,
        "a_yy": linear[:, 0, 0], "a_yx": linear[:, 0, 1], "a_xy": linear[:, 1, 0],
        "a_xx": linear[:, 1, 1], "b_y": offset[:, 0], "b_x": offset[:, 1], "quality": quality,
        "valid": connected, "note": notes})
    if translation:  # exactly the shift, no rounding through the centre
        table["b_y"], table["b_x"] = params[:, 0], params[:, 1]
    table.attrs = {"method": method, "reference_channel": reference_channel,
                   "upsample_factor": upsample_factor, "neighbours": neighbours,
                   "regularise": regularise, "shape_yx": [ny, nx]}
    return table


def _affine_of(drift: pd.DataFrame):
    """(A (nz, 2, 2), b (nz, 2), pure translation?) of a drift table: the affine columns when
    present, else identity and ``b = (dy_px, dx_px)``."""
    if all(c in drift.columns for c in AFFINE_COLUMNS):
        values = drift.loc[:, list(AFFINE_COLUMNS)].to_numpy(dtype=np.float64)
        linear, offset = values[:, :4].reshape(-1, 2, 2), values[:, 4:]
    else:
        offset = drift.loc[:, ["dy_px", "dx_px"]].to_numpy(dtype=np.float64)
        linear = np.broadcast_to(np.eye(2), (len(drift), 2, 2)).copy()
    if not (np.isfinite(linear).all() and np.isfinite(offset).all()):
        raise InputError("drift table has non-finite transforms", field="drift",
                         expected="finite dy_px, dx_px and affine columns", found="NaN / inf")
    return linear, offset, bool(np.all(linear == np.eye(2)))


def crop_bounds_px(drift: pd.DataFrame, crop_border="auto", shape_yx=None) -> dict:
    """Pixels to drop at the (low, high) end of y and x after registering slice z.

    ``"auto"``, translation: registered[z](y) = raw[z](y + dy_z) is valid for -dy_z <= y <= Y -
    1 - dy_z, so ``low = ceil(max(0, -min dy))``, ``high = ceil(max(0, max dy))`` (same for x)
    — at most ceil(max |d|) per side. Rotation / scale / shear (``AFFINE_COLUMNS`` not the
    identity; ``shape_yx`` = (Y, X) needed): the same bounds from the centre displacement, then
    grown by the smallest common margin e (px, every side) for which the four corners of the
    kept rectangle map inside the raw frame under every ``T_z`` (affine: then all of it
    does). ``"none"``: 0. An int n: n on every side."""
    if crop_border == "none":
        return {"y": (0, 0), "x": (0, 0)}
    if crop_border == "auto":
        out = {}
        for axis, col in (("y", "dy_px"), ("x", "dx_px")):
            d = np.asarray(drift[col], dtype=float)
            out[axis] = (int(math.ceil(max(0.0, -d.min()) - 1e-6)),
                         int(math.ceil(max(0.0, d.max()) - 1e-6)))
        linear, offset, pure = _affine_of(drift)
        if pure:
            return out
        if shape_yx is None:
            shape_yx = drift.attrs.get("shape_yx")
        if shape_yx is None:
            raise InputError("auto crop of a rotated / affine registration needs the image "
                             "shape", field="shape_yx", expected="(Y, X)", found=None)
        ny, nx = (int(n) for n in shape_yx)
        for extra in range(0, (min(ny, nx) + 1) // 2 + 1):
            y0, y1 = out["y"][0] + extra, ny - 1 - out["y"][1] - extra
            x0, x1 = out["x"][0] + extra, nx - 1 - out["x"][1] - extra
            corners = np.array([[y0, x0], [y0, x1], [y1, x0], [y1, x1]], dtype=float)
            mapped = np.einsum("zij,cj->zci", linear, corners) + offset[:, None, :]
            if (mapped.min(axis=(0, 1)) >= -1e-6).all() and mapped[..., 0].max() <= ny - 1 + 1e-6 \
                    and mapped[..., 1].max() <= nx - 1 + 1e-6:
                break
        return {axis: (lo + extra, hi + extra) for axis, (lo, hi) in out.items()}
    if isinstance(crop_border, (int, np.integer)) and not isinstance(crop_border, bool) \
            and crop_border >= 0:
        n = int(crop_border)
        return {"y": (n, n), "x": (n, n)}
    raise InputError("invalid crop_border", field="crop_border",
                     expected='"auto", "none" or an integer >= 0', found=crop_border)


def _shift_block(block: np.ndarray, linear: np.ndarray, offset: np.ndarray, pure: bool,
                 order: int, out_dtype: np.dtype, block_info=None) -> np.ndarray:
    z0 = block_info[0]["array-location"][1][0]
    out = np.empty(block.shape, dtype=out_dtype)

    def warp(image, spline_order):
        if pure:  # registered[z](p) = raw[z](p + d_z)
            return ndimage.shift(image, -offset[z0 + i], order=spline_order, mode="nearest")
        return ndimage.affine_transform(image, linear[z0 + i], offset=offset[z0 + i],
                                        order=spline_order, mode="nearest")

    for i in range(block.shape[1]):
        for c in range(block.shape[0]):
            image = block[c, i].astype(np.float32)
            finite = np.isfinite(image)
            has_nan = not finite.all()
            if has_nan:  # shift the values with NaNs filled, then move the NaN mask along
                image = np.where(finite, image, np.median(image[finite]) if finite.any() else 0)
            moved = warp(image, order)
            if has_nan:
                lost = warp((~finite).astype(np.float32), 1) > 0.5
                moved[lost] = np.nan
            if out_dtype.kind in "iu":
                info = np.iinfo(out_dtype)
                moved = np.clip(np.rint(moved), info.min, info.max)
            out[c, i] = moved.astype(out_dtype)
    return out


def apply_drift(stack: xr.DataArray, drift: pd.DataFrame, *, crop_border="auto",
                interpolation_order: int = 3) -> xr.DataArray:
    """Register every channel of slice z with the same transform: ``registered[z](p) =
    raw[z](T_z(p))`` — for translation a shift by ``-d_z`` (scipy.ndimage.shift), otherwise
    scipy.ndimage.affine_transform with ``A_z, b_z`` (``AFFINE_COLUMNS``); spline of
    ``interpolation_order``, float32, then rounded and clipped back to an integer input dtype;
    then the invalid border is cropped (``crop_bounds_px``). Lazy (dask, one task per z-chunk,
    whole slices). Non-finite voxels of float stacks stay non-finite at their moved place.
    Same dims and coords (cropped); attrs kept plus ``registration`` (drift summary, crop)."""
    stack_in = stack
    stack = _as_czyx(stack) if stack.sizes.get("z", 0) >= 2 else stack
    if stack.dims == ("z", "y", "x"):
        stack = stack.expand_dims(channel=["image"])
    if len(drift) != stack.sizes["z"]:
        raise InputError("drift table does not match the stack", field="drift",
                         expected=f"{stack.sizes['z']} rows (one per slice)", found=len(drift))
    dy = np.asarray(drift["dy_px"], dtype=np.float64)
    dx = np.asarray(drift["dx_px"], dtype=np.float64)
    if not (np.isfinite(dy).all() and np.isfinite(dx).all()):
        raise InputError("drift table has non-finite shifts", field="drift",
                         expected="finite dy_px, dx_px", found="NaN / inf")
    linear, offset, pure = _affine_of(drift)
    ny, nx = stack.sizes["y"], stack.sizes["x"]
    bounds = crop_bounds_px(drift, crop_border, shape_yx=(ny, nx))
    if sum(bounds["y"]) >= ny or sum(bounds["x"]) >= nx:
        raise InputError("crop removes the whole image", field="crop_border",
                         expected=f"< {ny} px in y and < {nx} px in x", found=bounds)
    data = _dask_data(stack)
    out_dtype = np.dtype(stack.dtype)
    shifted = data.map_blocks(_shift_block, linear, offset, pure, int(interpolation_order),
                              out_dtype, dtype=out_dtype,
                              meta=np.empty((0, 0, 0, 0), dtype=out_dtype))
    result = stack.copy(data=shifted)
    result = result.isel(y=slice(bounds["y"][0], ny - bounds["y"][1]),
                         x=slice(bounds["x"][0], nx - bounds["x"][1]))
    result.attrs = dict(stack.attrs)
    rotation = np.degrees(np.arctan2(linear[:, 0, 1] - linear[:, 1, 0],
                                     linear[:, 0, 0] + linear[:, 1, 1]))
    result.attrs["registration"] = {
        "drift_convention": "raw[z](T_z(p)) = ideal[z](p), p = (y, x) px; translation: raw[z]"
                            "(y, x) = ideal[z](y - dy_z, x - dx_z); slice z shifted by -d_z",
        "max_abs_dy_px": float(np.abs(dy).max()), "max_abs_dx_px": float(np.abs(dx).max()),
        "final_dy_px": float(dy[-1]), "final_dx_px": float(dx[-1]),
        "max_abs_rotation_deg": float(np.abs(rotation).max()),
        "crop_px": {axis: list(v) for axis, v in bounds.items()},
        "interpolation_order": int(interpolation_order),
        "method": drift.attrs.get("method", "translation"),
        "reference_channel": drift.attrs.get("reference_channel"),
    }
    if stack_in.dims == ("z", "y", "x"):
        result = result.isel(channel=0, drop=True)
    return result


def register(raw: xr.Dataset, **params) -> tuple[xr.Dataset, pd.DataFrame]:
    """The register stage: ``raw`` (variable ``raw`` (channel, z, y, x)) -> (Dataset with the
    lazily shifted and cropped variable ``registered``, drift table). ``params``: the keys of
    ``REGISTER_DEFAULTS``; unknown keys raise InputError."""
    unknown = sorted(set(params) - set(REGISTER_DEFAULTS))
    if unknown:
        raise InputError("unknown register parameters", field="stages.register",
                         expected=f"keys of {sorted(REGISTER_DEFAULTS)}", found=unknown)
    p = {**REGISTER_DEFAULTS, **params}
    if "raw" not in raw.data_vars:
        raise InputError("raw store has no variable 'raw'", field="raw",
                         expected="variable 'raw' (channel, z, y, x)", found=list(raw.data_vars))
    stack = raw["raw"]
    drift = estimate_drift(stack, **{k: p[k] for k in (
        "reference_channel", "method", "upsample_factor", "neighbours", "regularise",
        "regularise_window", "regularise_order", "min_quality", "min_valid_fraction", "max_gap",
        "window", "highpass_sigma_px", "smooth_sigma_px", "num_workers")})
    registered = apply_drift(stack, drift, crop_border=p["crop_border"],
                             interpolation_order=p["interpolation_order"])
    registered.attrs["registration"]["params"] = {k: p[k] for k in REGISTER_DEFAULTS}
    registered.attrs["registration"]["n_invalid_slices"] = int((~drift["valid"]).sum())
    out = registered.rename("registered").to_dataset()
    out.attrs = dict(raw.attrs)
    for dim in ("z", "y", "x"):
        if dim in out.coords:
            out[dim].attrs.setdefault("units", "um")
    return out, drift


def write_drift_table(drift: pd.DataFrame, path) -> None:
    """``drift.csv``: one row per slice, the columns of ``DRIFT_COLUMNS`` (9 significant digits:
    the affine entries must reproduce the resampling to << 1 count)."""
    drift.loc[:, list(DRIFT_COLUMNS)].to_csv(path, index=False, float_format="%.9g")


def drift_qc_figure(raw, registered, drift: pd.DataFrame, path, *, channel=None) -> None:
    """QC figure (PNG/PDF by suffix): drift dy, dx (px) and quality vs slice; xz orthogonal
    slices (at the central y) before and after registration."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    def as_array(obj, name):
        array = obj[name] if isinstance(obj, xr.Dataset) else obj
        if "channel" in array.dims:
            names = [str(c) for c in array.coords["channel"].values]
            pick = channel if channel in names else ("BSE" if "BSE" in names else names[0])
            array = array.isel(channel=names.index(pick))
        return array

    before = as_array(raw, "raw")
    after = as_array(registered, "registered")
    xz_before = np.asarray(before.isel(y=before.sizes["y"] // 2).values, dtype=np.float32)
    y_mid = float(before.coords["y"][before.sizes["y"] // 2]) if "y" in before.coords else None
    if y_mid is not None and "y" in after.coords:
        xz_after = np.asarray(after.sel(y=y_mid, method="nearest").values, dtype=np.float32)
    else:
        xz_after = np.asarray(after.isel(y=after.sizes["y"] // 2).values, dtype=np.float32)

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.plot(drift["z_index"], drift["dy_px"], label="dy")
    ax.plot(drift["z_index"], drift["dx_px"], label="dx")
    bad = ~np.asarray(drift["valid"], dtype=bool)
    if bad.any():
        ax.plot(drift["z_index"][bad], drift["dy_px"][bad], "rx", label="interpolated")
    ax.set_xlabel("slice z")
    ax.set_ylabel("drift (px)")
    ax.legend(loc="upper left")
    twin = ax.twinx()
    twin.plot(drift["z_index"], drift["quality"], color="0.6", lw=0.8)
    twin.set_ylim(0, 1.05)
    twin.set_ylabel("quality")
    rotation = np.asarray(drift["rotation_deg"], dtype=float) if "rotation_deg" in drift \
        else np.zeros(len(drift))
    ax.set_title("estimated drift" + (f" (rotation at last slice {rotation[-1]:.2f} deg)"
                                      if np.any(rotation != 0) else ""))
    for ax, image, title in ((axes[1], xz_before, "xz before"), (axes[2], xz_after, "xz after")):
        lo, hi = np.nanpercentile(image, [1, 99]) if np.isfinite(image).any() else (0, 1)
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
        ax.set_xlabel("x (px)")
        ax.set_ylabel("z (slice)")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
