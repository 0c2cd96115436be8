"""Per-slice corrections on numpy images: large Gaussian blur, polynomial shading, wavelet-FFT
destriping, stripe power, and the per-slice brightness factors."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal

from voxelyte.errors import InputError


def gaussian_blur_large(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """2D Gaussian blur (reflecting borders), fast for large sigma.

    For sigma > 8 px evaluated on a grid block-averaged by ``f = sigma // 4`` and interpolated
    back bilinearly (error << 1 %).

    Parameters
    ----------
    image : numpy.ndarray
        2D image.
    sigma_px : float
        Gaussian sigma (px).

    Returns
    -------
    numpy.ndarray
        The blurred image, dtype of ``image``.
    """
    if sigma_px <= 8:
        return ndimage.gaussian_filter(image, sigma_px, mode="reflect")
    f = int(sigma_px // 4)
    ny, nx = image.shape
    py, px = (-ny) % f, (-nx) % f
    padded = np.pad(image, ((0, py), (0, px)), mode="reflect")
    small = padded.reshape(padded.shape[0] // f, f, padded.shape[1] // f, f).mean(axis=(1, 3))
    # block averaging already blurs by a box of width f (variance f^2/12)
    sigma_small = math.sqrt(max(sigma_px ** 2 - f ** 2 / 12.0, 0.0)) / f
    small = ndimage.gaussian_filter(small, sigma_small, mode="reflect")
    yy = (np.arange(ny) - (f - 1) / 2) / f
    xx = (np.arange(nx) - (f - 1) / 2) / f
    grid = np.meshgrid(yy, xx, indexing="ij")
    return ndimage.map_coordinates(small, grid, order=1, mode="nearest").astype(image.dtype)


def _poly_basis(shape: tuple, order: int, coords: tuple | None = None) -> np.ndarray:
    """Monomials u^i v^j (i + j <= order) as columns; u, v = the normalised [-1, 1] coordinates
    of a ``shape`` image, or the given 1D (v, u) coordinate arrays."""
    if coords is None:
        coords = (np.linspace(-1.0, 1.0, shape[0]), np.linspace(-1.0, 1.0, shape[1]))
    v, u = coords[0][:, None], coords[1][None, :]
    shape = (v.shape[0], u.shape[1])
    terms = [np.broadcast_to(u ** i * v ** j, shape) for i in range(order + 1)
             for j in range(order + 1 - i)]
    return np.stack([t.ravel() for t in terms], axis=1)


def _fit_grid(full: np.ndarray, max_fit_px: int):
    """The image the shading is fitted on (block-averaged by ``f = ceil(sqrt(size /
    max_fit_px))`` when larger than ``max_fit_px``) and its normalised (v, u) coordinates."""
    ny, nx = full.shape
    f = max(1, int(math.ceil(math.sqrt(full.size / max_fit_px))))
    if f > 1:  # block centres in the full image's normalised coordinates
        my, mx = ny // f, nx // f
        image = full[:my * f, :mx * f].reshape(my, f, mx, f).mean(axis=(1, 3))
        coords = tuple(-1.0 + 2.0 * (np.arange(m) * f + (f - 1) / 2) / max(n - 1, 1)
                       for m, n in ((my, ny), (mx, nx)))
    else:
        image = full
        coords = (np.linspace(-1.0, 1.0, ny), np.linspace(-1.0, 1.0, nx))
    return image, coords


def _class_levels(flat: np.ndarray, positive: np.ndarray, n_classes: int):
    """Multi-Otsu intensity class of each pixel and the median level of each class."""
    from skimage.filters import threshold_multiotsu

    classes = np.zeros(flat.shape, dtype=np.int8)
    if n_classes > 1:
        try:
            thresholds = threshold_multiotsu(flat[positive], classes=n_classes)
            classes = np.digitize(flat, thresholds).astype(np.int8)
        except (ValueError, IndexError):
            pass
    levels = np.array([np.median(flat[(classes == k) & positive]) if
                       np.any((classes == k) & positive) else 1.0
                       for k in range(max(n_classes, 1))])
    return classes, levels


def polynomial_shading(image: np.ndarray, order: int = 2, n_classes: int = 3,
                       iterations: int = 3, max_fit_px: int = 65_536) -> np.ndarray:
    """Multiplicative shading S (mean 1) of one slice, phase composition flattened out.

    ``log S`` is a 2D polynomial of ``order`` in the normalised image coordinates, fitted by
    least squares to ``log(I / L_k)`` with ``L_k`` the median level of each pixel's intensity
    class (multi-Otsu), pixels at class boundaries left out, iterated. Images larger than
    ``max_fit_px`` are fitted on a block-averaged copy (e.g. 4 x 4 blocks for 1000 x 1000: the
    polynomial is smooth, so this only averages noise) and evaluated on the full grid.

    Parameters
    ----------
    image : numpy.ndarray
        2D slice.
    order : int
        Polynomial order.
    n_classes : int
        Intensity classes (phases).
    iterations : int
        Fit / re-classify rounds.
    max_fit_px : int
        Largest image fitted at full resolution.

    Returns
    -------
    numpy.ndarray
        S (float64, shape of ``image``); ones when fewer than half the pixels are positive.
    """
    full = np.asarray(image, dtype=np.float64)
    ny, nx = full.shape
    image, coords = _fit_grid(full, max_fit_px)
    shape = image.shape
    basis = _poly_basis(shape, order, coords)
    shading = np.ones(shape)
    positive = image > 0
    if positive.mean() < 0.5:
        return np.ones(full.shape)
    coef = None
    for _ in range(iterations):
        flat = image / shading
        classes, levels = _class_levels(flat, positive, n_classes)
        interior = (ndimage.maximum_filter(classes, 3) == ndimage.minimum_filter(classes, 3))
        use = (interior & positive & (levels[classes] > 0)).ravel()
        if use.sum() < basis.shape[1] * 10:
            use = positive.ravel()
        target = np.log(image.ravel()[use] / levels[classes].ravel()[use])
        coef, *_ = np.linalg.lstsq(basis[use], target, rcond=None)
        log_s = (basis @ coef).reshape(shape)
        shading = np.exp(log_s - log_s.mean())
    v = np.linspace(-1.0, 1.0, ny)[:, None]
    u = np.linspace(-1.0, 1.0, nx)[None, :]
    log_full = np.zeros(full.shape)
    terms = [(i, j) for i in range(order + 1) for j in range(order + 1 - i)]  # as _poly_basis
    for c, (i, j) in zip(coef, terms):
        log_full += c * (u ** i * v ** j)
    return np.exp(log_full - log_full.mean())


def destripe_slice(image: np.ndarray, *, axis: str = "y", wavelet: str = "db4", level: int = 4,
                   sigma: float = 1.0) -> np.ndarray:
    """Wavelet-FFT destriping of one slice.

    2D wavelet decomposition; the vertical detail coefficients (stripes constant along
    ``axis``) are Fourier transformed along the stripes and multiplied by the notch
    ``1 - exp(-k^2 / (2 sigma^2))``; then the image is reconstructed (the slice mean is kept).

    Parameters
    ----------
    image : numpy.ndarray
        2D slice.
    axis : {'y', 'x'}
        Axis the stripes are elongated along ("y": constant along y, varying across x).
    wavelet : str
        PyWavelets discrete wavelet.
    level : int
        Decomposition levels (capped at the image's maximum).
    sigma : float
        Notch width (frequency index).

    Returns
    -------
    numpy.ndarray
        The destriped slice, float32.

    References
    ----------
    Münch, B., Trtik, P., Marone, F. & Stampanoni, M. (2009). Stripe and ring artifact removal
    with combined wavelet-Fourier filtering. Opt. Express 17, 8567.
    """
    import pywt

    a = np.asarray(image, dtype=np.float64)
    if axis == "x":
        a = a.T
    w = pywt.Wavelet(wavelet)
    level = max(1, min(int(level), pywt.dwt_max_level(min(a.shape), w.dec_len)))
    coeffs = pywt.wavedec2(a, w, level=level, mode="symmetric")
    out = [coeffs[0]]
    for c_h, c_v, c_d in coeffs[1:]:
        # stripes constant along axis 0 live in the vertical details, at k = 0 along axis 0
        k = np.fft.fftfreq(c_v.shape[0]) * c_v.shape[0]
        notch = 1.0 - np.exp(-k ** 2 / (2.0 * sigma ** 2))
        c_v = np.real(np.fft.ifft(np.fft.fft(c_v, axis=0) * notch[:, None], axis=0))
        out.append((c_h, c_v, c_d))
    rec = pywt.waverec2(out, w, mode="symmetric")[:a.shape[0], :a.shape[1]]
    return (rec.T if axis == "x" else rec).astype(np.float32)


def stripe_power(image: np.ndarray, axis: str = "y", band_px: int = 1) -> float:
    """Energy of the stripe band of the 2D spectrum.

    Parameters
    ----------
    image : numpy.ndarray
        2D slice.
    axis : {'y', 'x'}
        Stripe axis (stripes along y: the k_y ~ 0, k_x != 0 line).
    band_px : int
        Half-width of the band, ``|k_along| <= band_px``, ``k_across != 0``.

    Returns
    -------
    float
    """
    a = np.asarray(image, dtype=np.float64)
    if axis == "x":
        a = a.T
    spectrum = np.abs(np.fft.fft2(a - a.mean())) ** 2
    ky = np.abs(np.fft.fftfreq(a.shape[0]) * a.shape[0])
    kx = np.fft.fftfreq(a.shape[1]) * a.shape[1]
    band = (ky[:, None] <= band_px) & (kx[None, :] != 0)
    return float(spectrum[band].sum())


def _huber_log_trend(s: np.ndarray, good: np.ndarray, nz: int) -> np.ndarray:
    """Robust (Huber-weighted, 10 rounds) linear fit of ``log s`` in z, evaluated on all z."""
    z = np.arange(nz, dtype=float)
    basis = np.vander(z[good], 2)
    y = np.log(s[good])
    weights = np.ones(good.sum())
    for _ in range(10):  # Huber-weighted least squares
        coef, *_ = np.linalg.lstsq(basis * weights[:, None], y * weights, rcond=None)
        r = y - basis @ coef
        k = 1.345 * (1.4826 * np.median(np.abs(r)) or 1e-9)
        weights = np.sqrt(np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-300)))
    return np.exp(np.vander(z, 2) @ coef)


def brightness_factors(stats: np.ndarray, model: str = "linear", window: int = 15) -> np.ndarray:
    """Multiplicative brightness factors per channel and slice from per-slice statistics.

    ``"linear"``: robust (Huber) fit ``log s_z = a + b z``, factor ``exp(mean fit - fit_z)``
    (only the trend is corrected, not the slice-to-slice composition noise); ``"per_slice"``:
    ``median(s) / s_z``; ``"smooth"``: Savitzky-Golay trend of ``s_z`` over ``window``;
    ``"none"``: ones.

    Parameters
    ----------
    stats : numpy.ndarray
        (channel, z) statistic per slice (the slice median).
    model : {'linear', 'per_slice', 'smooth', 'none'}
    window : int
        Savitzky-Golay window (slices) of "smooth".

    Returns
    -------
    numpy.ndarray
        (channel, z) factors; 1 where a factor would not be finite and positive.
    """
    stats = np.asarray(stats, dtype=np.float64)
    factors = np.ones_like(stats)
    if model == "none":
        return factors
    nz = stats.shape[1]
    for c, s in enumerate(stats):
        good = np.isfinite(s) & (s > 0)
        if good.sum() < 2:
            continue
        if model == "per_slice":
            target = np.full(nz, np.median(s[good]))
        elif model == "linear":
            fit = _huber_log_trend(s, good, nz)
            s = fit  # only the trend is corrected, not the slice-to-slice composition noise
            target = np.full(nz, np.exp(np.mean(np.log(fit))))
        elif model == "smooth":
            filled = np.interp(np.arange(nz), np.flatnonzero(good), s[good])
            length = min(window | 1, nz if nz % 2 else nz - 1)
            s = signal.savgol_filter(filled, length, min(2, length - 1)) if length >= 3 \
                else filled
            target = np.full(nz, np.median(s))
        else:
            raise InputError("unknown brightness model", field="brightness_model",
                             expected='"linear", "per_slice", "smooth" or "none"', found=model)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = target / s
        factors[c] = np.where(np.isfinite(f) & (f > 0), f, 1.0)
    return factors

