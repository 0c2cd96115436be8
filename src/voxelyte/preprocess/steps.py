"""Stack-wide corrections of a ``(channel, z, y, x)`` DataArray, lazily: one dask task per z-chunk
of whole slices; the only stack-wide quantities (slice medians, contrast percentiles) are small
and computed from whole slices, so results do not depend on the chunking."""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from voxelyte.contract import (as_channel_stack, channel_names, volume_voxel_size_um,
                               whole_slice_data)
from voxelyte.errors import InputError
from voxelyte.preprocess.filters import (brightness_factors, destripe_slice, gaussian_blur_large,
                                         polynomial_shading)


def _map_slices(stack: xr.DataArray, func, channels=None, step: str = "") -> xr.DataArray:
    """Apply ``func(image2d float32, channel_name, z_index) -> image2d`` to every slice of the
    selected channels (others only cast to float32); lazy, whole slices per task. Non-finite
    voxels are filled with the slice median for ``func`` and are NaN again in the result."""
    stack = as_channel_stack(stack)
    names = channel_names(stack)
    selected = set(names if channels is None else channels)
    data = whole_slice_data(stack)

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


def correct_shading(stack: xr.DataArray, *, method: str = "polynomial", sigma_um: float = 10.0,
                    poly_order: int = 2, n_classes: int = 3, channels=None) -> xr.DataArray:
    """Per-slice shading correction.

    ``"divide"``: ``I / G_sigma(I) * mean(I)`` with G a 2D Gaussian of ``sigma_um`` (Minnmann
    et al. 2024); ``"polynomial"``: ``I / S`` (:func:`polynomial_shading`); ``"none"``.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)`` with a voxel size.
    method : {'polynomial', 'divide', 'none'}
    sigma_um : float
        Gaussian sigma (µm) of "divide".
    poly_order, n_classes : int
        Of "polynomial".
    channels : list of str, optional
        Channels to correct (default: all).

    Returns
    -------
    xarray.DataArray
        float32, lazy; attrs ``applied`` lists the step per channel.

    References
    ----------
    Minnmann, P. et al. (2024). J. Electrochem. Soc. 171, 060514.
    """
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


def slice_medians(stack: xr.DataArray) -> np.ndarray:
    """Median of every slice of every channel, in one streamed pass.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.

    Returns
    -------
    numpy.ndarray
        (channel, z) float64 (NaN-aware medians).
    """
    data = whole_slice_data(stack)
    medians = data.map_blocks(
        lambda b: np.nanmedian(b.reshape(b.shape[0], b.shape[1], -1).astype(np.float64),
                               axis=2)[:, :, None, None],
        dtype=np.float64, chunks=data.chunks[:2] + ((1,), (1,)))
    return np.asarray(medians.compute())[:, :, 0, 0]


def correct_brightness_drift(stack: xr.DataArray, *, model: str = "linear",
                             factors: np.ndarray | None = None) -> xr.DataArray:
    """Multiply slice z of channel c by ``factors[c, z]``.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)``.
    model : {'linear', 'per_slice', 'smooth', 'none'}
        Model of :func:`brightness_factors`, applied to the slice medians (one streamed pass)
        unless ``factors`` are given.
    factors : numpy.ndarray, optional
        (channel, z) factors.

    Returns
    -------
    xarray.DataArray
        float32, lazy; attrs ``brightness_factor`` per channel and ``applied``.
    """
    stack = as_channel_stack(stack)
    if factors is None:
        factors = brightness_factors(slice_medians(stack), model)
    names = channel_names(stack)
    factors = np.asarray(factors, dtype=np.float64)
    out = _map_slices(stack, lambda im, c, z: im * np.float32(factors[names.index(c), z]),
                      step=f"brightness {model}")
    out.attrs["brightness_factor"] = {n: [round(float(v), 6) for v in factors[i]]
                                      for i, n in enumerate(names)}
    return out


def destripe(stack: xr.DataArray, *, channels=("SE",), axis: str = "y", wavelet: str = "db4",
             level: int = 4, sigma: float = 1.0) -> xr.DataArray:
    """Wavelet-FFT destriping (:func:`destripe_slice`) of the given channels, per slice.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)``.
    channels : sequence of str
        Channels to destripe (names not in the stack are skipped).
    axis, wavelet, level, sigma
        See :func:`destripe_slice`.

    Returns
    -------
    xarray.DataArray
        float32, lazy.

    References
    ----------
    Münch, B. et al. (2009). Opt. Express 17, 8567.
    """
    import pywt

    if axis not in ("y", "x"):
        raise InputError("unknown curtain axis", field="curtain_axis", expected='"y" or "x"',
                         found=axis)
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise InputError("unknown wavelet", field="destripe_wavelet",
                         expected="a discrete PyWavelets wavelet (e.g. db4)", found=wavelet)
    names = channel_names(as_channel_stack(stack))
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
    """Intensity percentiles of every channel over evenly spaced sample slices.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)``.
    percentiles : (float, float)
        Low and high percentile (%).
    sample_slices : int
        Number of evenly spaced slices read.

    Returns
    -------
    numpy.ndarray
        (channel, 2), over the finite voxels ((0, 1) for a channel without any).
    """
    stack = as_channel_stack(stack)
    idx = _sample_indices(stack.sizes["z"], sample_slices)
    sample = np.asarray(stack.isel(z=idx).values, dtype=np.float64)
    out = np.empty((sample.shape[0], 2))
    for c in range(sample.shape[0]):
        values = sample[c][np.isfinite(sample[c])]
        out[c] = np.percentile(values, percentiles) if values.size else (0.0, 1.0)
    return out


def _match_to_reference(stack: xr.DataArray, names: list, reference_slice, percentiles, limits):
    """Histogram-match every slice to the reference slice (default: the middle one); the
    limits default to the reference slice's percentiles."""
    from skimage.exposure import match_histograms

    lo_p, hi_p = percentiles
    ref_z = stack.sizes["z"] // 2 if reference_slice is None else int(reference_slice)
    if not 0 <= ref_z < stack.sizes["z"]:
        raise InputError("reference slice outside the stack", field="contrast_reference_slice",
                         expected=f"0 <= z < {stack.sizes['z']}", found=ref_z)
    references = np.asarray(stack.isel(z=ref_z).values, dtype=np.float32)
    matched = _map_slices(stack, lambda im, c, z: match_histograms(
        im, references[names.index(c)]).astype(np.float32), step=f"match z={ref_z}")
    if limits is None:
        limits = np.array([np.percentile(r, (lo_p, hi_p)) for r in references])
    return matched, limits


def normalise_contrast(stack: xr.DataArray, *, method: str = "percentile",
                       percentiles=(0.5, 99.5), sample_slices: int = 32,
                       reference_slice: int | None = None,
                       limits: np.ndarray | None = None) -> xr.DataArray:
    """Contrast normalisation to float32 [0, 1].

    ``"percentile"``: ``clip((I - p_lo) / (p_hi - p_lo), 0, 1)`` with the channel's
    percentiles over sample slices; ``"match"``: ``skimage.exposure.match_histograms`` of each
    slice to a reference slice, then the same stretch; ``"none"``.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or ``(z, y, x)``.
    method : {'percentile', 'match', 'none'}
    percentiles : (float, float)
        Low and high percentile (%), ``0 <= low < high <= 100``.
    sample_slices : int
        See :func:`contrast_percentiles`.
    reference_slice : int, optional
        Reference slice of "match" (default: the middle one).
    limits : numpy.ndarray, optional
        (channel, 2) stretch limits; skips the percentile pass.

    Returns
    -------
    xarray.DataArray
        float32, lazy; attrs ``contrast_limits`` per channel.
    """
    stack = as_channel_stack(stack)
    names = channel_names(stack)
    lo_p, hi_p = (float(v) for v in percentiles)
    if not 0 <= lo_p < hi_p <= 100:
        raise InputError("invalid contrast percentiles", field="contrast_percentiles",
                         expected="0 <= low < high <= 100", found=list(percentiles))
    if method == "none":
        return _map_slices(stack, lambda im, c, z: im, channels=[])
    if method == "match":
        stack, limits = _match_to_reference(stack, names, reference_slice, (lo_p, hi_p), limits)
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

