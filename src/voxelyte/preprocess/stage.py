"""The preprocess stage: brightness drift -> shading -> destriping -> contrast, lazily."""
from __future__ import annotations

import xarray as xr

from voxelyte.contract import as_channel_stack, stage_dataset
from voxelyte.errors import InputError
from voxelyte.preprocess.steps import (correct_brightness_drift, correct_shading, destripe,
                                       normalise_contrast)


def _input_stack(registered: xr.Dataset) -> xr.DataArray:
    """The ``registered`` variable (or the only variable) as a numeric channel stack."""
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
    return stack


def preprocess(registered: xr.Dataset, *, shading_method: str, shading_sigma_um: float,
               shading_poly_order: int, shading_classes: int, brightness_model: str,
               destripe_channels, curtain_axis: str, destripe_wavelet: str, destripe_level: int,
               destripe_sigma: float, contrast_method: str, contrast_percentiles,
               contrast_sample_slices: int, contrast_reference_slice: int | None) -> xr.Dataset:
    """The preprocess stage: brightness drift -> shading -> destriping -> contrast.

    Lazy; two small passes run now (slice medians, contrast percentiles on the sample slices).
    The keyword arguments are the sample's ``stages.preprocess`` (defaults in the schema).

    Parameters
    ----------
    registered : xarray.Dataset
        The register store, variable ``registered`` (channel, z, y, x).
    shading_method, shading_sigma_um, shading_poly_order, shading_classes
        :func:`correct_shading` (method, sigma_um, poly_order, n_classes).
    brightness_model : str
        :func:`correct_brightness_drift`.
    destripe_channels, curtain_axis, destripe_wavelet, destripe_level, destripe_sigma
        :func:`destripe` (channels, axis, wavelet, level, sigma).
    contrast_method, contrast_percentiles, contrast_sample_slices, contrast_reference_slice
        :func:`normalise_contrast` (method, percentiles, sample_slices, reference_slice).

    Returns
    -------
    xarray.Dataset
        Variable ``corrected`` float32 (channel, z, y, x) with attrs ``applied`` (steps per
        channel) and ``preprocess_params``; the dataset keeps ``registered``'s attrs.
    """
    p = {"shading_method": shading_method, "shading_sigma_um": shading_sigma_um,
         "shading_poly_order": shading_poly_order, "shading_classes": shading_classes,
         "brightness_model": brightness_model, "destripe_channels": destripe_channels,
         "curtain_axis": curtain_axis, "destripe_wavelet": destripe_wavelet,
         "destripe_level": destripe_level, "destripe_sigma": destripe_sigma,
         "contrast_method": contrast_method, "contrast_percentiles": contrast_percentiles,
         "contrast_sample_slices": contrast_sample_slices,
         "contrast_reference_slice": contrast_reference_slice}
    stack = _input_stack(registered)
    out = correct_brightness_drift(stack, model=brightness_model)
    out = correct_shading(out, method=shading_method, sigma_um=shading_sigma_um,
                          poly_order=shading_poly_order, n_classes=shading_classes)
    out = destripe(out, channels=destripe_channels, axis=curtain_axis, wavelet=destripe_wavelet,
                   level=destripe_level, sigma=destripe_sigma)
    out = normalise_contrast(out, method=contrast_method, percentiles=contrast_percentiles,
                             sample_slices=contrast_sample_slices,
                             reference_slice=contrast_reference_slice)
    out.attrs["preprocess_params"] = {k: (list(v) if isinstance(v, tuple) else v)
                                      for k, v in p.items()}
    return stage_dataset(out, "corrected", registered.attrs)
