"""The segmentation's own accuracy on a phantom: the corrected volume moved onto the ground
truth's grid, annotated and segmented there, and scored where the truth is exact."""
from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from voxelyte.errors import InputError
from voxelyte.evaluate.scores import score
from voxelyte.segment import INVALID, corrected_stack, phantom_annotations, resolve_params, segment


def move_to_truth_grid(corrected: xr.Dataset, residual_px: np.ndarray, *, sample=None
                       ) -> tuple[xr.Dataset, np.ndarray]:
    """corrected.zarr's volume moved onto the ground-truth grid of a phantom.

    Slice z of every channel is shifted in-plane by ``-residual_px[z]`` (cubic spline,
    ``scipy.ndimage.shift`` order 3: the rendered images are blurred, nearly band-limited).

    Parameters
    ----------
    corrected : xarray.Dataset
        corrected.zarr's dataset.
    residual_px : numpy.ndarray
        ``(z, 2)`` drift residual (:func:`registration_residual_px`).
    sample : str, optional

    Returns
    -------
    moved : xarray.Dataset
    inside : numpy.ndarray
        bool ``(z, y, x)``: voxels whose source lies wholly inside the image and is finite.
    """
    stack = corrected_stack(corrected)
    residual = np.asarray(residual_px, dtype=np.float64)
    nz, ny, nx = stack.shape[1:]
    if residual.shape != (nz, 2):
        raise InputError("drift residual does not match the corrected volume", sample=sample,
                         field="residual_px", expected=(nz, 2), found=residual.shape)
    values = np.asarray(stack.values)
    moved = np.empty(values.shape, dtype=np.float32)
    inside = np.empty((nz, ny, nx), dtype=bool)
    for z in range(nz):
        finite = np.isfinite(values[:, z]).all(axis=0)
        shift = -residual[z]
        inside[z] = ndimage.shift(finite.astype(np.float32), shift, order=1, mode="constant",
                                  cval=0.0) > 1.0 - 1e-4
        for c in range(values.shape[0]):
            moved[c, z] = ndimage.shift(np.where(finite, values[c, z], 0.0), shift, order=3,
                                        mode="nearest")
    out = corrected.copy()
    out[stack.name] = stack.copy(data=moved)
    return out, inside


def segment_on_truth_grid(corrected: xr.Dataset, truth_plain: np.ndarray,
                          residual_px: np.ndarray, phases: dict, *, num_workers: int = 1,
                          sample=None, **params) -> tuple[np.ndarray, np.ndarray, dict]:
    """Segment a phantom on its ground-truth grid and score it there.

    The corrected volume is moved onto the truth's grid (:func:`move_to_truth_grid`),
    annotated there as the workflow annotates phantoms (``phantom_annotations``, trainable)
    and segmented with the same settings (``segment``), then scored against the plain-frame
    truth; voxels moved in from outside the image are not scored.

    Parameters
    ----------
    corrected : xarray.Dataset
    truth_plain : numpy.ndarray
        The truth on corrected.zarr's coords, not shifted.
    residual_px : numpy.ndarray
        ``(z, 2)`` drift residual.
    phases : dict or PhaseTable
    num_workers : int
    sample : str, optional
    **params
        Segment settings.

    Returns
    -------
    labels : numpy.ndarray
        Labels on the truth grid.
    truth : numpy.ndarray
        The truth with ``INVALID`` outside.
    score : dict
        :func:`score`, with ``phantom_annotations`` (trainable).
    """
    p = resolve_params(params)
    moved, inside = move_to_truth_grid(corrected, residual_px, sample=sample)
    truth = np.where(inside, truth_plain, INVALID).astype(np.uint8)
    annotations = classes = made = None
    if p["method"] == "trainable":
        annotations, classes, made = phantom_annotations(moved, truth, phases,
                                                         num_workers=num_workers,
                                                         sample=sample, **params)
    ds, _, _ = segment(moved, phases=phases, annotations=annotations, classes=classes,
                       sample=sample, num_workers=num_workers, **params)
    labels = np.asarray(ds["labels"].values)
    result = score(labels, truth, phases)
    if made is not None:
        result["phantom_annotations"] = made
    return labels, truth, result
