"""The segment stage: corrected volume -> phase labels and confidence (trainable or
unsupervised), post-processed, with the stage's info."""
from __future__ import annotations

import logging
import time

import numpy as np
import xarray as xr

from voxelyte.contract import phase_table, volume_fractions, volume_voxel_size_um
from voxelyte.errors import InputError
from voxelyte.phantom import truth_in_registered_frame
from voxelyte.segment.annotations import check_annotations, load_annotations, phantom_annotations
from voxelyte.segment.features import feature_names
from voxelyte.segment.forest import (TrainedModel, predict, save_model, save_thresholds,
                                     train_classifier)
from voxelyte.segment.postprocess import min_island_voxels, remove_small_islands, smooth_labels
from voxelyte.segment.settings import (channel_names, corrected_stack, pick_channels,
                                       resolve_params, whole_slice_chunks)
from voxelyte.segment.unsupervised import segment_unsupervised

log = logging.getLogger(__name__)

#: Forest settings recorded in the stage's info.
FOREST_KEYS = ("n_estimators", "max_depth", "min_samples_leaf", "class_weight", "seed")
CONFIDENCE_DESCRIPTION = (
    "certainty of the chosen phase, uint8: p = value / 255 (trainable: summed random-forest "
    "probability of the phase; unsupervised: the self-trained forest's, or a "
    "threshold-distance heuristic without self-training)")


def _check_training_input(annotations, classes, shape, sample) -> dict:
    if annotations is None or not classes:
        raise InputError("trainable segmentation needs annotations", sample=sample,
                         field="annotations",
                         expected="an 'annotations' entry (path, format, classes) in the "
                                  "sample file, or stages.segment.method: unsupervised",
                         found=None)
    if annotations.shape != shape:
        raise InputError("annotation shape does not match the corrected volume",
                         sample=sample, field="annotations", expected=shape,
                         found=annotations.shape)
    return check_annotations(annotations, classes, sample=sample)


def segment_trainable(stack: xr.DataArray, annotations: np.ndarray, classes: dict, p: dict, *,
                      num_workers: int = 1, sample=None):
    """The trainable method: a random forest fitted on the annotations labels the volume.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.
    annotations : numpy.ndarray
        uint8 ``(z, y, x)``, 0 = unlabelled.
    classes : dict
        Class table ``{value: {name, phase, label}}``.
    p : dict
        Segment settings.
    num_workers : int
    sample : str, optional

    Returns
    -------
    labels, confidence : numpy.ndarray
        uint8.
    model : TrainedModel
    info : dict
        Classes, annotated voxels, training voxels, features, forest settings.
    timings : dict
    """
    per_class = _check_training_input(annotations, classes, tuple(stack.shape[1:]), sample)
    t0 = time.perf_counter()
    stack = whole_slice_chunks(stack)
    model = train_classifier(stack, annotations, classes, p, n_jobs=num_workers)
    timings = {"train_s": time.perf_counter() - t0}
    t1 = time.perf_counter()
    labels, conf = predict(stack, model, chunk_z=int(p["chunk_z"]), num_workers=num_workers)
    timings["predict_s"] = time.perf_counter() - t1
    info = {
        "classes": {v["name"]: {"value": int(k), "phase": v["phase"]} for k, v in classes.items()},
        "annotated_voxels": per_class,
        "annotated_slices": int(np.any(annotations != 0, axis=(1, 2)).sum()),
        "annotated_fraction": float(np.count_nonzero(annotations) / annotations.size),
        "training_voxels": model.n_training_voxels,
        "features": feature_names(model.channels, p),
        "feature_importance_top10": dict(sorted(model.feature_importance.items(),
                                                key=lambda kv: -kv[1])[:10]),
        "forest": {k: p[k] for k in FOREST_KEYS},
    }
    return labels, conf, model, info, timings


def postprocess_labels(labels: np.ndarray, phases: dict, p: dict,
                       voxel_size_um) -> tuple[np.ndarray, dict]:
    """Island removal (``min_island_um3``), then ``smoothing``.

    Parameters
    ----------
    labels : numpy.ndarray
    phases : dict or PhaseTable
    p : dict
        Segment settings.
    voxel_size_um : sequence of 3 float

    Returns
    -------
    labels : numpy.ndarray
    info : dict
        ``islands_removed`` per phase, ``smoothing_changed_voxels`` (with smoothing).
    """
    names_of = {v: n for n, v in phase_table(phases).labels.items()}
    min_vox = min_island_voxels(p["min_island_um3"], phases, voxel_size_um)
    labels, islands = remove_small_islands(labels, min_vox)
    info = {"islands_removed": {names_of.get(k, str(k)): dict(v, min_voxels=min_vox[k])
                                for k, v in islands.items()}}
    for name, v in info["islands_removed"].items():
        log.info("islands of %s below %d voxels: %d islands, %d voxels relabelled", name,
                 v["min_voxels"], v["islands"], v["voxels"])
    if p["smoothing"] != "none":
        before = labels
        labels = smooth_labels(labels, p["smoothing"], int(p["smoothing_radius_px"]))
        info["smoothing_changed_voxels"] = int(np.count_nonzero(before != labels))
        log.info("%s smoothing (r = %d px) changed %d voxels", p["smoothing"],
                 p["smoothing_radius_px"], info["smoothing_changed_voxels"])
    return labels, info


def labels_dataset(labels: np.ndarray, confidence: np.ndarray, coords: dict, phases: dict, *,
                   voxel_size_um, method: str, sample: str, chunk_z: int) -> xr.Dataset:
    """labels.zarr's dataset: ``labels`` and ``confidence`` (uint8, z, y, x) on ``coords``.

    Parameters
    ----------
    labels, confidence : numpy.ndarray
    coords : dict
        z, y, x coordinates (µm) of the corrected volume.
    phases : dict
        Phase name -> label value.
    voxel_size_um : sequence of 3 float
    method : str
    sample : str
    chunk_z : int
        Slices per dask (and zarr) chunk.

    Returns
    -------
    xarray.Dataset
    """
    ds = xr.Dataset(
        {"labels": (("z", "y", "x"), labels,
                    {"description": "phase label per voxel (uint8); phases: name -> label",
                     "phases": phases}),
         "confidence": (("z", "y", "x"), confidence, {"description": CONFIDENCE_DESCRIPTION})},
        coords=coords,
        attrs={"phases": phases, "voxel_size_um": list(voxel_size_um), "method": method,
               "sample": sample})
    for d in ("z", "y", "x"):
        ds[d].attrs["units"] = "um"
    return ds.chunk({"z": int(chunk_z), "y": -1, "x": -1})


def segment(corrected: xr.Dataset, *, phases: dict, annotations: np.ndarray | None = None,
            classes: dict | None = None, sample: str | None = None, num_workers: int = 1,
            **params) -> tuple[xr.Dataset, dict, TrainedModel | None]:
    """Segment a corrected volume into phase labels.

    Parameters
    ----------
    corrected : xarray.Dataset
        corrected.zarr's dataset.
    phases : dict or PhaseTable
    annotations : numpy.ndarray, optional
        uint8 ``(z, y, x)``, 0 = unlabelled (``method: trainable``).
    classes : dict, optional
        Class table ``{value: {name, phase, label}}`` (``method: trainable``).
    sample : str, optional
    num_workers : int
    **params
        Segment settings (schema ``stages.segment``; missing keys: schema defaults).

    Returns
    -------
    labels : xarray.Dataset
        ``labels`` and ``confidence`` uint8 on the corrected coords.
    info : dict
        Method, volume fractions, timings, method details.
    model : TrainedModel or None
    """
    p = resolve_params(params)
    labels_of = phase_table(phases).labels
    stack = pick_channels(corrected_stack(corrected), p["channels"], sample)
    voxel = volume_voxel_size_um(corrected)
    info: dict = {"method": p["method"], "channels": channel_names(stack)}
    if p["method"] == "trainable":
        labels, conf, model, extra, timings = segment_trainable(
            stack, annotations, classes, p, num_workers=num_workers, sample=sample)
    else:
        labels, conf, model, extra, timings = segment_unsupervised(
            stack, phases, p, num_workers=num_workers, sample=sample)
    info.update(extra)
    info["volume_fraction_raw"] = volume_fractions(labels, phases)
    t2 = time.perf_counter()
    labels, cleaned = postprocess_labels(labels, phases, p, voxel)
    info.update(cleaned)
    timings["postprocess_s"] = time.perf_counter() - t2
    info["volume_fraction"] = volume_fractions(labels, phases)
    info["timings_s"] = timings
    info["phase_map"] = labels_of
    ds = labels_dataset(labels, conf, {d: stack.coords[d] for d in ("z", "y", "x")}, labels_of,
                        voxel_size_um=voxel, method=p["method"],
                        sample=sample or corrected.attrs.get("sample", ""),
                        chunk_z=int(p["chunk_z"]))
    return ds, info, model


def stage_annotations(corrected, *, phases, settings, annotations=None, ground_truth=None,
                      drift=None, sample=None, num_workers=1):
    """The annotations the segment stage trains on.

    Parameters
    ----------
    corrected : xarray.Dataset
    phases : dict or PhaseTable
    settings : dict
        The sample's ``stages.segment``.
    annotations : dict, optional
        The sample file's ``annotations`` (path resolved): a user's file.
    ground_truth : xarray.Dataset, optional
        A phantom's ground_truth.zarr: scribbles and correction strokes drawn from it in the
        registered frame (:func:`phantom_annotations`) instead of a user's file.
    drift : pandas.DataFrame, optional
        drift.csv (with ``ground_truth``).
    sample : str, optional
    num_workers : int

    Returns
    -------
    annotations, classes : numpy.ndarray and dict, or None
        None for ``method: unsupervised`` or without annotations.
    made : dict or None
        The phantom annotations' counts.
    """
    if settings.get("method", "trainable") != "trainable":
        return None, None, None
    if ground_truth is not None:
        stack = corrected["corrected"]
        coords = {axis: stack.coords[axis].values for axis in ("z", "y", "x")}
        truth_reg, _ = truth_in_registered_frame(
            ground_truth, drift[["dy_px", "dx_px"]].to_numpy(), coords)
        ann, classes, made = phantom_annotations(corrected, truth_reg, phases,
                                                 num_workers=num_workers, sample=sample,
                                                 **settings)
        log.info("%s: phantom scribbles on %d slices, %d voxels (registered frame), correction "
                 "strokes %s voxels", sample, int(np.any(ann > 0, axis=(1, 2)).sum()),
                 made["scribble_voxels"], made["correction_voxels"])
        return ann, classes, made
    if annotations:
        ann, classes = load_annotations(annotations, shape_zyx=tuple(corrected["corrected"]
                                                                     .shape[1:]),
                                        phases=phases, sample=sample)
        return ann, classes, None
    return None, None, None


def segment_sample(corrected, *, phases, settings, annotations=None, ground_truth=None,
                   drift=None, sample=None, num_workers=1):
    """The segment stage of one sample: its annotations (:func:`stage_annotations`), then
    :func:`segment` with the sample's settings.

    Parameters
    ----------
    corrected : xarray.Dataset
        corrected.zarr's dataset.
    phases : dict or PhaseTable
    settings : dict
        The sample's ``stages.segment``.
    annotations, ground_truth, drift
        See :func:`stage_annotations`.
    sample : str, optional
    num_workers : int

    Returns
    -------
    labels : xarray.Dataset
    info : dict
        segmentation.json's content (``sample`` first; ``phantom_annotations`` on phantoms).
    model : TrainedModel or None
    """
    ann, classes, made = stage_annotations(
        corrected, phases=phases, settings=settings, annotations=annotations,
        ground_truth=ground_truth, drift=drift, sample=sample, num_workers=num_workers)
    labels, info, model = segment(corrected, phases=phases, annotations=ann, classes=classes,
                                  sample=sample, num_workers=num_workers, **settings)
    info = {"sample": sample, **info}
    if made is not None:
        info["phantom_annotations"] = made
    log.info("%s: %s segmentation, volume fractions %s, timings %s", sample, info["method"],
             {k: round(v, 4) for k, v in info["volume_fraction"].items()}, info["timings_s"])
    return labels, info, model


def write_model(model: TrainedModel | None, info: dict, path) -> None:
    """Write the stage's model file: the forest (:func:`save_model`) or, for thresholds only,
    the unsupervised thresholds (:func:`save_thresholds`).

    Parameters
    ----------
    model : TrainedModel or None
    info : dict
        The stage's info.
    path : str or Path

    Returns
    -------
    None
    """
    if model is not None:
        save_model(model, path)
    else:
        save_thresholds(info.get("unsupervised", {}), path)
