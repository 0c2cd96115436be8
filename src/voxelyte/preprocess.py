"""Intensity corrections of registered PFIB-SEM stacks (Minnmann et al. 2024, Experimental):
shading (inhomogeneous illumination), brightness drift along z, curtaining stripes, contrast.

Every step works on a (channel, z, y, x) DataArray lazily: one dask task per z-chunk of whole
slices (per-slice operations need the full slice); the only stack-wide quantities (per-slice
brightness statistics, contrast percentiles) are small and computed from whole slices, so the
result does not depend on the chunking.

* Shading, ``method="divide"`` (Minnmann): ``I' = I / G_sigma(I) * mean(I)`` per slice, G a 2D
  Gaussian of ``sigma_um`` (large sigma: evaluated on a block-averaged grid, bilinear back).
  ``method="polynomial"``: ``I' = I / S`` with ``log S`` a 2D polynomial of ``poly_order`` in the
  normalised image coordinates, fitted by least squares to ``log(I / L_k)`` where ``L_k`` is the
  median level of the intensity class (multi-Otsu, ``n_classes``) of each pixel, pixels at
  class boundaries left out, iterated: the phase composition does not leak into S.
* Brightness drift: per-slice statistic ``s_z`` (median of the slice); ``model="linear"``:
  robust (Huber) fit ``log s_z = a + b z``, factor ``exp(mean fit - fit_z)``; ``"per_slice"``:
  ``median(s) / s_z``; ``"smooth"``: Savitzky-Golay trend of ``s_z``; ``"none"``.
* Curtaining: wavelet-FFT destriping (Münch et al. 2009, Opt. Express 17, 8567): 2D wavelet
  decomposition (PyWavelets, ``wavelet``, ``level``); the detail coefficients that carry the
  stripes (stripes along y: the vertical details) are Fourier transformed along the stripe axis
  and multiplied by the notch ``1 - exp(-k^2 / (2 sigma^2))`` (k: frequency index), then the
  image is reconstructed. Only the detail bands change: the slice mean is kept.
* Contrast: ``"percentile"``: ``clip((I - p_lo) / (p_hi - p_lo), 0, 1)`` with the channel's
  percentiles (default 0.5 / 99.5 %) over evenly spaced sample slices; ``"match"``:
  ``skimage.exposure.match_histograms`` of each slice to a reference slice, then the same
  stretch; ``"none"``.
"""
from __future__ import annotations

import logging
import math

import dask.array as da
import numpy as np
import xarray as xr
from scipy import ndimage, signal

from voxelyte.errors import InputError
from voxelyte.io import as_channel_stack, volume_voxel_size_um

log = logging.getLogger(__name__)

#: Defaults of ``preprocess`` (the schema fragment mirrors them).
PREPROCESS_DEFAULTS = {
    "shading_method": "polynomial",
    "shading_sigma_um": 10.0,
    "shading_poly_order": 2,
    "shading_classes": 3,
    "brightness_model": "linear",
    "destripe_channels": ["SE"],
    "curtain_axis": "y",
    "destripe_wavelet": "db4",
    "destripe_level": 4,
    "destripe_sigma": 1.0,
    "contrast_method": "percentile",
    "contrast_percentiles": [0.5, 99.5],
    "contrast_sample_slices": 32,
    "contrast_reference_slice": None,
}


# --------------------------------------------------------------------------- helpers

def _channel_names(stack: xr.DataArray) -> list[str]:
    if "channel" in stack.coords:
        return [str(c) for c in stack.coords["channel"].values]
    return [str(i) for i in range(stack.sizes["channel"])]


def _map_slices(stack: xr.DataArray, func, channels=None, step: str = "") -> xr.DataArray:
    """Apply ``func(image2d float32, channel_name, z_index) -> image2d`` to every slice of the
    selected channels (others only cast to float32); lazy, whole slices per task. Non-finite
    voxels are filled with the slice median for ``func`` and are NaN again in the result."""
    stack = as_channel_stack(stack)
    names = _channel_names(stack)
    selected = set(names if channels is None else channels)
    data = stack.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(1, 8, -1, -1))
    data = data.rechunk({2: -1, 3: -1})

    def block(b, block_info=None):
        loc = block_info[0]["array-location"]
        c0, z0 = loc[0][0], loc[1][0]
        out = np.empty(b.shape, dtype=np.float32)
        for c in range(b.shape[0]):
            name = names[c0 + c]
            for i in range(b.shape[1]):
                image = b[c, i].astype(np.float32)
                if name not in selected:
                    out[c, i] = image
                    continue
                finite = np.isfinite(image)
                if finite.all():
                    out[c, i] = func(image, name, z0 + i)
                elif finite.any():  # fill with the slice median, keep the NaNs where they were
                    filled = np.where(finite, image, np.median(image[finite]))
                    out[c, i] = np.where(finite, func(filled, name, z0 + i), np.nan)
                else:
                    out[c, i] = np.nan
        return out

    result = stack.copy(data=data.map_blocks(block, dtype=np.float32,
                                             meta=np.empty((0, 0, 0, 0), np.float32)))
    result.attrs = dict(stack.attrs)
    if step:
        applied = {k: list(v) for k, v in result.attrs.get("applied", {}).items()}
        for name in names:
            if name in selected:
                applied.setdefault(name, []).append(step)
        result.attrs["applied"] = applied
    return result


def gaussian_blur_large(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """2D Gaussian blur (reflecting borders); for sigma > 8 px evaluated on a grid
    block-averaged by ``f = sigma // 4`` and interpolated back bilinearly (error << 1 %)."""
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


def polynomial_shading(image: np.ndarray, order: int = 2, n_classes: int = 3,
                       iterations: int = 3, max_fit_px: int = 65_536) -> np.ndarray:
    """Multiplicative shading S (mean 1) of one slice: ``log S`` = polynomial of ``order``
    fitted to ``log(I / L_class)`` (see the module docstring).

    Images larger than ``max_fit_px`` are fitted on a block-averaged copy (blocks of
    ``f = ceil(sqrt(size / max_fit_px))`` px, e.g. 4 x 4 for 1000 x 1000; the polynomial is
    smooth, so this only averages noise) and the polynomial is evaluated on the full grid."""
    from skimage.filters import threshold_multiotsu

    full = np.asarray(image, dtype=np.float64)
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
    shape = image.shape
    basis = _poly_basis(shape, order, coords)
    shading = np.ones(shape)
    positive = image > 0
    if positive.mean() < 0.5:
        return np.ones(full.shape)
    coef = None
    for _ in range(iterations):
        flat = image / shading
        classes = np.zeros(shape, dtype=np.int8)
        if n_classes > 1:
            try:
                thresholds = threshold_multiotsu(flat[positive], classes=n_classes)
                classes = np.digitize(flat, thresholds).astype(np.int8)
            except (ValueError, IndexError):
                pass
        levels = np.array([np.median(flat[(classes == k) & positive]) if
                           np.any((classes == k) & positive) else 1.0
                           for k in range(max(n_classes, 1))])
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
    """Wavelet-FFT destriping of one slice (Münch et al. 2009); stripes elongated along
    ``axis`` ("y": constant along y, varying across x)."""
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
    """Energy of the stripe band of the 2D spectrum: |k_along| <= band_px, k_across != 0
    (stripes along y: the k_y ~ 0, k_x != 0 line)."""
    a = np.asarray(image, dtype=np.float64)
    if axis == "x":
        a = a.T
    spectrum = np.abs(np.fft.fft2(a - a.mean())) ** 2
    ky = np.abs(np.fft.fftfreq(a.shape[0]) * a.shape[0])
    kx = np.fft.fftfreq(a.shape[1]) * a.shape[1]
    band = (ky[:, None] <= band_px) & (kx[None, :] != 0)
    return float(spectrum[band].sum())


# --------------------------------------------------------------------------- public API
def correct_shading(stack: xr.DataArray, *, method: str = "polynomial", sigma_um: float = 10.0,
                    poly_order: int = 2, n_classes: int = 3, channels=None) -> xr.DataArray:
    """Per-slice shading correction (module docstring): "divide" (``I / G_sigma(I) *
    mean(I)``, Minnmann et al. 2024), "polynomial" (phase-flattened low-order fit) or "none"."""
    if method == "none":
        return _map_slices(stack, lambda im, c, z: im, channels=[])
    vy, vx = volume_voxel_size_um(stack, ("y", "x"))
    if method == "divide":
        if not sigma_um > 0:
            raise InputError("shading sigma must be > 0", field="shading_sigma_um",
                             expected="> 0 µm", found=sigma_um)
        sigma_px = sigma_um / math.sqrt(vy * vx)

        def func(image, channel, z):
            blurred = gaussian_blur_large(image, sigma_px)
            mean = float(image.mean())
            return image / np.maximum(blurred, 1e-6 * max(abs(mean), 1e-12)) * mean

        step = f"shading divide sigma_um={sigma_um}"
    elif method == "polynomial":
        def func(image, channel, z):
            return image / polynomial_shading(image, poly_order, n_classes)

        step = f"shading polynomial order={poly_order} classes={n_classes}"
    else:
        raise InputError("unknown shading method", field="shading_method",
                         expected='"divide", "polynomial" or "none"', found=method)
    return _map_slices(stack, func, channels=channels, step=step)


def _slice_statistic(stack: xr.DataArray) -> np.ndarray:
    """Median of every slice, (channel, z) float64 (one streamed pass)."""
    data = stack.data if isinstance(stack.data, da.Array) else \
        da.from_array(np.asarray(stack.data), chunks=(1, 8, -1, -1))
    data = data.rechunk({2: -1, 3: -1})
    medians = data.map_blocks(
        lambda b: np.nanmedian(b.reshape(b.shape[0], b.shape[1], -1).astype(np.float64),
                               axis=2)[:, :, None, None],
        dtype=np.float64, chunks=data.chunks[:2] + ((1,), (1,)))
    return np.asarray(medians.compute())[:, :, 0, 0]


def brightness_factors(stats: np.ndarray, model: str = "linear", window: int = 15) -> np.ndarray:
    """Multiplicative factors (channel, z) from per-slice statistics (module docstring)."""
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
            z = np.arange(nz, dtype=float)
            basis = np.vander(z[good], 2)
            y = np.log(s[good])
            weights = np.ones(good.sum())
            for _ in range(10):  # Huber-weighted least squares
                coef, *_ = np.linalg.lstsq(basis * weights[:, None], y * weights, rcond=None)
                r = y - basis @ coef
                k = 1.345 * (1.4826 * np.median(np.abs(r)) or 1e-9)
                weights = np.sqrt(np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-300)))
            fit = np.exp(np.vander(z, 2) @ coef)
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


def correct_brightness_drift(stack: xr.DataArray, *, model: str = "linear",
                             factors: np.ndarray | None = None) -> xr.DataArray:
    """Multiply slice z of channel c by ``factors[c, z]`` (computed from the slice medians with
    ``brightness_factors`` unless given)."""
    stack = as_channel_stack(stack)
    if factors is None:
        factors = brightness_factors(_slice_statistic(stack), model)
    names = _channel_names(stack)
    factors = np.asarray(factors, dtype=np.float64)
    out = _map_slices(stack, lambda im, c, z: im * np.float32(factors[names.index(c), z]),
                      step=f"brightness {model}")
    out.attrs["brightness_factor"] = {n: [round(float(v), 6) for v in factors[i]]
                                      for i, n in enumerate(names)}
    return out


def destripe(stack: xr.DataArray, *, channels=("SE",), axis: str = "y", wavelet: str = "db4",
             level: int = 4, sigma: float = 1.0) -> xr.DataArray:
    """Wavelet-FFT destriping (Münch et al. 2009) of the given channels, per slice."""
    import pywt

    if axis not in ("y", "x"):
        raise InputError("unknown curtain axis", field="curtain_axis", expected='"y" or "x"',
                         found=axis)
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise InputError("unknown wavelet", field="destripe_wavelet",
                         expected="a discrete PyWavelets wavelet (e.g. db4)", found=wavelet)
    names = _channel_names(as_channel_stack(stack))
    channels = [c for c in (channels or []) if c in names]
    return _map_slices(stack, lambda im, c, z: destripe_slice(im, axis=axis, wavelet=wavelet,
                                                              level=level, sigma=sigma),
                       channels=channels,
                       step=f"destripe axis={axis} wavelet={wavelet} level={level} "
                            f"sigma={sigma}")


def _sample_indices(nz: int, n: int) -> np.ndarray:
    return np.unique(np.linspace(0, nz - 1, min(n, nz)).round().astype(int))


def contrast_percentiles(stack: xr.DataArray, percentiles=(0.5, 99.5),
                         sample_slices: int = 32) -> np.ndarray:
    """(channel, 2) percentiles over evenly spaced sample slices (finite voxels only)."""
    stack = as_channel_stack(stack)
    idx = _sample_indices(stack.sizes["z"], sample_slices)
    sample = np.asarray(stack.isel(z=idx).values, dtype=np.float64)
    out = np.empty((sample.shape[0], 2))
    for c in range(sample.shape[0]):
        values = sample[c][np.isfinite(sample[c])]
        out[c] = np.percentile(values, percentiles) if values.size else (0.0, 1.0)
    return out


def normalise_contrast(stack: xr.DataArray, *, method: str = "percentile",
                       percentiles=(0.5, 99.5), sample_slices: int = 32,
                       reference_slice: int | None = None,
                       limits: np.ndarray | None = None) -> xr.DataArray:
    """Contrast normalisation to float32 [0, 1] (module docstring). ``limits`` (channel, 2)
    skips the percentile pass."""
    stack = as_channel_stack(stack)
    names = _channel_names(stack)
    lo_p, hi_p = (float(v) for v in percentiles)
    if not 0 <= lo_p < hi_p <= 100:
        raise InputError("invalid contrast percentiles", field="contrast_percentiles",
                         expected="0 <= low < high <= 100", found=list(percentiles))
    if method == "none":
        return _map_slices(stack, lambda im, c, z: im, channels=[])
    if method == "match":
        from skimage.exposure import match_histograms

        ref_z = stack.sizes["z"] // 2 if reference_slice is None else int(reference_slice)
        if not 0 <= ref_z < stack.sizes["z"]:
            raise InputError("reference slice outside the stack", field="contrast_reference_slice",
                             expected=f"0 <= z < {stack.sizes['z']}", found=ref_z)
        references = np.asarray(stack.isel(z=ref_z).values, dtype=np.float32)
        matched = _map_slices(stack, lambda im, c, z: match_histograms(
            im, references[names.index(c)]).astype(np.float32), step=f"match z={ref_z}")
        if limits is None:
            limits = np.array([np.percentile(r, (lo_p, hi_p)) for r in references])
        stack = matched
    elif method != "percentile":
        raise InputError("unknown contrast method", field="contrast_method",
                         expected='"percentile", "match" or "none"', found=method)
    if limits is None:
        limits = contrast_percentiles(stack, (lo_p, hi_p), sample_slices)
    limits = np.asarray(limits, dtype=np.float64)

    def func(image, channel, z):
        lo, hi = limits[names.index(channel)]
        scale = 1.0 / (hi - lo) if hi > lo else 1.0
        return np.clip((image - lo) * scale, 0.0, 1.0).astype(np.float32)

    out = _map_slices(stack, func, step=f"contrast stretch {lo_p}-{hi_p} %")
    out.attrs["contrast_limits"] = {n: [float(v) for v in limits[i]] for i, n in enumerate(names)}
    return out


def preprocess(registered: xr.Dataset, **params) -> xr.Dataset:
    """The preprocess stage: ``registered`` (variable ``registered`` (channel, z, y, x)) ->
    Dataset with ``corrected`` float32 (channel, z, y, x), lazily: brightness drift ->
    shading -> destriping -> contrast. ``params``: keys of ``PREPROCESS_DEFAULTS``.
    attrs["applied"] lists the steps per channel. Two small passes run now: slice medians and
    the contrast percentiles on the sample slices."""
    unknown = sorted(set(params) - set(PREPROCESS_DEFAULTS))
    if unknown:
        raise InputError("unknown preprocess parameters", field="stages.preprocess",
                         expected=f"keys of {sorted(PREPROCESS_DEFAULTS)}", found=unknown)
    p = {**PREPROCESS_DEFAULTS, **params}
    name = "registered" if "registered" in registered.data_vars else None
    if name is None:
        if len(registered.data_vars) != 1:
            raise InputError("no variable 'registered'", field="registered",
                             expected="variable 'registered' (channel, z, y, x)",
                             found=list(registered.data_vars))
        name = next(iter(registered.data_vars))
    stack = as_channel_stack(registered[name])
    if stack.dtype.kind not in "iuf":
        raise InputError("image data are not numeric", field=name, expected="integer or float",
                         found=str(stack.dtype))
    out = correct_brightness_drift(stack, model=p["brightness_model"])
    out = correct_shading(out, method=p["shading_method"], sigma_um=p["shading_sigma_um"],
                          poly_order=p["shading_poly_order"], n_classes=p["shading_classes"])
    out = destripe(out, channels=p["destripe_channels"], axis=p["curtain_axis"],
                   wavelet=p["destripe_wavelet"], level=p["destripe_level"],
                   sigma=p["destripe_sigma"])
    out = normalise_contrast(out, method=p["contrast_method"],
                             percentiles=p["contrast_percentiles"],
                             sample_slices=p["contrast_sample_slices"],
                             reference_slice=p["contrast_reference_slice"])
    out.attrs["preprocess_params"] = {k: (list(v) if isinstance(v, tuple) else v)
                                      for k, v in p.items()}
    ds = out.rename("corrected").to_dataset()
    ds.attrs = dict(registered.attrs)
    for dim in ("z", "y", "x"):
        if dim in ds.coords:
            ds[dim].attrs.setdefault("units", "um")
    return ds
