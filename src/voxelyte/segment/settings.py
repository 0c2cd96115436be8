"""The segment stage's settings (defaults from the schema's ``stages.segment``), label constants
and the channel-stack helpers shared by the package (``channel_names`` is the contract's)."""
from __future__ import annotations

import copy
from functools import lru_cache

import dask.array as da
import xarray as xr

from voxelyte.contract import as_channel_stack, channel_names, phase_table, whole_slice_data
from voxelyte.contract import INVALID_LABEL
from voxelyte.errors import InputError

METHODS = ("trainable", "unsupervised")
#: Annotation value of an unlabelled voxel.
UNLABELLED = 0
#: Ground-truth value of a voxel that is not scored (outside the truth or the image).
INVALID = INVALID_LABEL


@lru_cache(maxsize=1)
def _schema_defaults() -> dict:
    from voxelyte.config import stage_defaults

    return stage_defaults()["segment"]


def resolve_params(params: dict) -> dict:
    """Segment settings: ``params`` over the schema defaults (``stages.segment``), checked.

    Parameters
    ----------
    params : dict
        Keys of the schema's ``stages.segment``; missing keys take the schema default.

    Returns
    -------
    dict
        Every setting. Unknown keys, an unknown method or level-trend model and
        ``sigma_max_px < sigma_min_px`` raise InputError.
    """
    defaults = _schema_defaults()
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise InputError("unknown segment parameters", field="stages.segment",
                         expected=f"keys of {sorted(defaults)}", found=unknown)
    p = {**copy.deepcopy(defaults), **params}
    if p["method"] not in METHODS:
        raise InputError("unknown segmentation method", field="stages.segment.method",
                         expected=f"one of {METHODS}", found=p["method"])
    if p["unsupervised_level_trend"] not in ("linear", "none"):
        raise InputError("unknown level-trend model",
                         field="stages.segment.unsupervised_level_trend",
                         expected='"linear" or "none"', found=p["unsupervised_level_trend"])
    if p["sigma_max_px"] < p["sigma_min_px"]:
        raise InputError("sigma_max_px is below sigma_min_px", field="stages.segment.sigma_max_px",
                         expected=f">= {p['sigma_min_px']}", found=p["sigma_max_px"])
    return p


def phase_classes(phases: dict) -> dict[str, dict]:
    """One annotation class per phase, value = phase label + 1 (0 = unlabelled).

    Parameters
    ----------
    phases : dict or PhaseTable
        The sample's phase table.

    Returns
    -------
    dict
        ``{name: {value, phase}}``, the sample file's ``annotations.classes`` form.
    """
    return {name: {"value": lab + 1, "phase": name}
            for name, lab in phase_table(phases).labels.items()}


def corrected_stack(corrected: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The ``(channel, z, y, x)`` image stack of corrected.zarr's dataset (or of a stack).

    Parameters
    ----------
    corrected : xarray.Dataset or xarray.DataArray
        corrected.zarr's dataset (variable ``corrected``) or the stack itself.

    Returns
    -------
    xarray.DataArray
    """
    stack = corrected["corrected"] if isinstance(corrected, xr.Dataset) else corrected
    return as_channel_stack(stack)


def whole_slice_chunks(stack: xr.DataArray) -> xr.DataArray:
    """Dask-backed stacks rechunked to whole slices and all channels (per-slice features).

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.

    Returns
    -------
    xarray.DataArray
    """
    if isinstance(stack.data, da.Array):
        return stack.copy(data=whole_slice_data(stack, all_channels=True))
    return stack


def pick_channels(stack: xr.DataArray, channels, sample=None) -> xr.DataArray:
    """The stack's channels named in ``channels`` (None or empty: all).

    Parameters
    ----------
    stack : xarray.DataArray
    channels : list of str or None
    sample : str, optional
        Named in errors.

    Returns
    -------
    xarray.DataArray
    """
    if not channels:
        return stack
    names = channel_names(stack)
    missing = [c for c in channels if c not in names]
    if missing:
        raise InputError("channel not in the corrected volume", sample=sample,
                         field="stages.segment.channels", expected=f"names from {names}",
                         found=missing)
    return stack.isel(channel=[names.index(c) for c in channels])


def segment_stack(corrected, channels, sample=None) -> xr.DataArray:
    """The channels the segmentation uses, rechunked to whole slices.

    Parameters
    ----------
    corrected : xarray.Dataset or xarray.DataArray
    channels : list of str or None
    sample : str, optional

    Returns
    -------
    xarray.DataArray
    """
    return whole_slice_chunks(pick_channels(corrected_stack(corrected), channels, sample))
