"""Annotations of the trainable segmentation: a user's annotation file and class table, and on
phantoms the scribbles and correction strokes that stand in for a user's."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from voxelyte.contract import phase_table
from voxelyte.errors import InputError
from voxelyte.segment.forest import predict_slices, train_classifier
from voxelyte.segment.settings import (INVALID, UNLABELLED, phase_classes, resolve_params,
                                       segment_stack)

log = logging.getLogger(__name__)

ANNOTATION_FORMATS = ("tiff", "zarr", "npy")


# --------------------------------------------------------------------------- a user's file
def _read_zarr_annotations(path: Path, name, sample=None) -> np.ndarray:
    import zarr

    node = zarr.open(str(path), mode="r")
    if hasattr(node, "shape"):
        return node[...]
    if name is None:
        arrays = [k for k, _ in node.arrays()]
        if len(arrays) != 1:
            raise InputError("zarr annotation store holds several arrays", sample=sample,
                             source=str(path), field="annotations.dataset",
                             expected=f"one of {arrays}", found=None)
        name = arrays[0]
    return node[name][...]


def _read_annotation_file(path: Path, fmt: str, dataset, sample=None) -> np.ndarray:
    """The integer array of an annotation file (2D: one slice)."""
    try:
        if fmt == "tiff":
            import tifffile
            data = tifffile.imread(path)
        elif fmt == "npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = _read_zarr_annotations(path, dataset, sample)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"annotation file not readable ({type(err).__name__}: {err})",
                         sample=sample, source=str(path), field="annotations.path") from err
    data = np.asarray(data)
    if data.dtype.kind not in "iub":
        raise InputError("annotations are not integer labels", sample=sample, source=str(path),
                         field="annotations.path", expected="an integer label image",
                         found=str(data.dtype))
    return data[None] if data.ndim == 2 else data


def _as_uint8_labels(data: np.ndarray, sample, path) -> np.ndarray:
    if data.size and (data.min() < 0 or data.max() > 254):
        raise InputError("annotation values out of range", sample=sample, source=str(path),
                         field="annotations.path", expected="values 0 (unlabelled) .. 254",
                         found=[int(data.min()), int(data.max())])
    return data.astype(np.uint8)


def _on_volume_grid(data: np.ndarray, slices, shape_zyx: tuple, sample, path, src) -> np.ndarray:
    """The annotations as a uint8 volume of ``shape_zyx`` (a file of the listed slices only is
    placed at them)."""
    if slices is None:
        if data.shape != shape_zyx:
            raise InputError("annotation shape does not match the corrected volume",
                             sample=sample, source=str(path), field="annotations.path",
                             expected=f"{shape_zyx} (corrected.zarr z, y, x)", found=data.shape)
        return _as_uint8_labels(data, sample, path)
    want = (len(slices),) + shape_zyx[1:]
    if data.shape != want:
        raise InputError("annotation shape does not match the corrected volume",
                         sample=sample, source=str(path), field="annotations.path",
                         expected=f"{want} (the listed slices x corrected y, x)",
                         found=data.shape)
    bad = [z for z in slices if not 0 <= z < shape_zyx[0]]
    if bad:
        raise InputError("annotated slice index outside the volume", sample=sample,
                         source=src, field="annotations.slices",
                         expected=f"indices in [0, {shape_zyx[0]})", found=bad)
    full = np.zeros(shape_zyx, dtype=np.uint8)
    full[list(slices)] = _as_uint8_labels(data, sample, path)
    return full


def load_annotations(spec: dict, *, shape_zyx: tuple, phases: dict, sample: str | None = None,
                     source: str | None = None) -> tuple[np.ndarray, dict]:
    """Read a user's annotation volume and check it against the volume and the class table.

    Parameters
    ----------
    spec : dict
        The sample file's ``annotations``: ``path`` (resolved), ``format`` (tiff | zarr |
        npy), ``dataset`` (zarr: array name), ``slices`` (z indices when the file holds only
        those slices), ``classes`` (class name -> ``{value: 1..254, phase}``).
    shape_zyx : tuple of int
        Shape of the corrected volume.
    phases : dict or PhaseTable
    sample : str, optional
        Named in errors.
    source : str, optional
        The file as named in errors (default: the path).

    Returns
    -------
    annotations : numpy.ndarray
        uint8 ``(z, y, x)``, 0 = unlabelled.
    table : dict
        Class table ``{value: {name, phase, label}}``. A value without a class, no labelled
        voxel, a shape that is not the volume's or a class of an unknown phase raise
        InputError.
    """
    path = Path(spec["path"])
    fmt = spec.get("format", "tiff")
    src = source or str(path)
    if fmt not in ANNOTATION_FORMATS:
        raise InputError("unknown annotation format", sample=sample, source=src,
                         field="annotations.format", expected=f"one of {ANNOTATION_FORMATS}",
                         found=fmt)
    if not path.exists():
        raise InputError("annotation file not found", sample=sample, source=src,
                         field="annotations.path", expected=f"an existing {fmt} file {path}",
                         found="nothing")
    data = _read_annotation_file(path, fmt, spec.get("dataset"), sample)
    data = _on_volume_grid(data, spec.get("slices"), tuple(int(s) for s in shape_zyx), sample,
                           path, src)
    table = class_table(spec.get("classes") or {}, phases, sample=sample, source=src)
    check_annotations(data, table, sample=sample, source=str(path))
    return data, table


def class_table(classes: dict, phases: dict, *, sample=None, source=None) -> dict[int, dict]:
    """Check annotation classes and map them to phase labels.

    Parameters
    ----------
    classes : dict
        ``{class name: {value, phase}}``: values 1..254 and unique, phases in the table.
    phases : dict or PhaseTable
    sample, source : str, optional
        Named in errors.

    Returns
    -------
    dict
        ``{value: {name, phase, label}}``.
    """
    labels = phase_table(phases).labels
    table: dict[int, dict] = {}
    if not classes:
        raise InputError("no annotation classes given", sample=sample, source=source,
                         field="annotations.classes",
                         expected="class name -> {value, phase}", found=classes)
    for name, entry in classes.items():
        value, phase = int(entry["value"]), entry["phase"]
        where = f"annotations.classes.{name}"
        if not 1 <= value <= 254:
            raise InputError("class value out of range", sample=sample, source=source,
                             field=f"{where}.value", expected="1..254", found=value)
        if value in table:
            raise InputError("two classes share one value", sample=sample, source=source,
                             field=f"{where}.value",
                             expected=f"a value other than {value} (used by "
                                      f"'{table[value]['name']}')", found=value)
        if phase not in labels:
            raise InputError("class mapped to a phase not in the phase table", sample=sample,
                             source=source, field=f"{where}.phase",
                             expected="one of " + ", ".join(labels), found=phase)
        table[value] = {"name": str(name), "phase": phase, "label": labels[phase]}
    return table


def check_annotations(annotations: np.ndarray, table: dict, *, sample=None, source=None) -> dict:
    """Count the labelled voxels per class.

    Parameters
    ----------
    annotations : numpy.ndarray
        uint8 ``(z, y, x)``, 0 = unlabelled.
    table : dict
        Class table (:func:`class_table`).
    sample, source : str, optional

    Returns
    -------
    dict
        Class name -> labelled voxels. A value without a class, no labelled voxel or only one
        class raise InputError.
    """
    counts = np.bincount(annotations.ravel(), minlength=256)
    present = [int(v) for v in np.flatnonzero(counts) if v != UNLABELLED]
    unknown = [v for v in present if v not in table]
    if unknown:
        raise InputError("annotation holds a class value that is not in the class table",
                         sample=sample, source=source, field="annotations.classes",
                         expected=f"values {sorted(table)} (or 0 = unlabelled)",
                         found=unknown)
    if not present:
        raise InputError("annotation has no labelled voxels", sample=sample, source=source,
                         field="annotations.path",
                         expected="voxels labelled with class values " + str(sorted(table)),
                         found="only 0 (unlabelled)")
    per_class = {table[v]["name"]: int(counts[v]) for v in sorted(table)}
    missing = [name for name, n in per_class.items() if n == 0]
    if len(present) < 2:
        raise InputError("annotation labels only one class", sample=sample, source=source,
                         field="annotations.path", expected=">= 2 classes with labelled voxels",
                         found=per_class)
    if missing:
        log.warning("classes without labelled voxels (never predicted): %s", missing)
    return per_class


# --------------------------------------------------------------------------- phantoms
def _scribble_slices(nz: int, slice_fraction: float, rng) -> list[int]:
    """``max(1, floor(slice_fraction * nz))`` slices spread evenly over z (seeded jitter)."""
    n_slices = max(1, int(math.floor(slice_fraction * nz)))
    edges = np.linspace(0, nz, n_slices + 1)
    return sorted({int(min(nz - 1, math.floor(a + rng.uniform(0.25, 0.75) * (b - a))))
                   for a, b in zip(edges[:-1], edges[1:])})


def _draw_strokes(ann_z, mask, value, path, n_strokes, rng, stroke_length_px, width_px):
    """Paint ``n_strokes`` strokes along the longest 8-connected pieces of ``path`` (random
    among equals), each at most ``stroke_length_px`` long, widened and kept inside ``mask``."""
    comp, n = ndimage.label(path, structure=np.ones((3, 3), dtype=bool))
    if n == 0 or n_strokes == 0:
        return
    sizes = np.bincount(comp.ravel())[1:]
    # prefer long paths (a stroke follows a region), random among equals
    order = rng.permutation(n)
    order = order[np.argsort(-sizes[order], kind="stable")]
    for ci in order[:n_strokes]:
        pts = np.argwhere(comp == ci + 1)
        if pts.shape[0] > stroke_length_px:
            # a connected piece: the path pixels nearest a random start
            start = pts[rng.integers(pts.shape[0])]
            d = np.abs(pts - start).max(axis=1)
            pts = pts[np.argsort(d, kind="stable")[:stroke_length_px]]
        stroke = np.zeros_like(mask)
        stroke[pts[:, 0], pts[:, 1]] = True
        if width_px > 1:
            stroke = ndimage.binary_dilation(stroke, iterations=width_px // 2)
        stroke &= mask
        ann_z[stroke & (ann_z == 0)] = value


def phantom_scribbles(truth: np.ndarray, phases: dict, *, slice_fraction: float = 0.03,
                      strokes_per_class: int = 12, stroke_length_px: int = 80,
                      width_px: int = 3, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Sparse scribbles drawn from ground-truth labels, standing in for a user's strokes.

    On ``max(1, floor(slice_fraction * nz))`` evenly spread slices, per phase
    ``strokes_per_class`` strokes along the 2D medial axis (skeleton) and the inner edge of
    the phase, widened to ``width_px`` and kept inside it; ``INVALID`` truth voxels are never
    labelled.

    Parameters
    ----------
    truth : numpy.ndarray
        Ground-truth labels (z, y, x).
    phases : dict or PhaseTable
    slice_fraction : float
    strokes_per_class : int
    stroke_length_px : int
    width_px : int
    seed : int

    Returns
    -------
    annotations : numpy.ndarray
        uint8, class value = phase label + 1, 0 = unlabelled.
    classes : dict
        ``{name: {value, phase}}``.
    """
    from skimage.morphology import skeletonize

    rng = np.random.default_rng([int(seed), 21])
    ann = np.zeros(truth.shape, dtype=np.uint8)
    for z in _scribble_slices(truth.shape[0], slice_fraction, rng):
        sl = truth[z]
        for lab in phase_table(phases).labels.values():
            mask = (sl == lab)
            if not mask.any():
                continue
            # two kinds of strokes, as a user draws them: along the middle of a region
            # (medial axis) and tracing its edge just inside (the phase's boundary pixels)
            inner_edge = mask & ~ndimage.binary_erosion(mask, border_value=1)
            n_mid = (strokes_per_class + 1) // 2
            for path, n_strokes in ((skeletonize(mask), n_mid),
                                    (inner_edge, strokes_per_class - n_mid)):
                _draw_strokes(ann[z], mask, lab + 1, path, n_strokes, rng, stroke_length_px,
                              width_px)
    ann[truth == INVALID] = UNLABELLED
    return ann, phase_classes(phases)


def correction_strokes(annotations: np.ndarray, predicted: dict[int, np.ndarray],
                       truth: np.ndarray, phases: dict, *,
                       strokes_per_class: int = 12) -> np.ndarray:
    """A user's correction round on a phantom: paint over the largest errors.

    On each annotated slice z, the ``strokes_per_class`` largest 8-connected patches per phase
    where the labels differ from the truth are painted with their true phase (class = phase
    label + 1); voxels already annotated or ``INVALID`` in the truth are kept.

    Parameters
    ----------
    annotations : numpy.ndarray
        uint8 ``(z, y, x)``.
    predicted : dict
        ``{z: (Y, X) labels}`` of a first model on the annotated slices.
    truth : numpy.ndarray
    phases : dict or PhaseTable
    strokes_per_class : int

    Returns
    -------
    numpy.ndarray
        The new annotations.
    """
    out = annotations.copy()
    struct8 = np.ones((3, 3), dtype=bool)
    for z, labels in predicted.items():
        tz = truth[z]
        wrong = (labels != tz) & (tz != INVALID) & (out[z] == UNLABELLED)
        for lab in phase_table(phases).labels.values():
            comp, n = ndimage.label(wrong & (tz == lab), structure=struct8)
            if n == 0:
                continue
            sizes = np.bincount(comp.ravel())[1:]
            keep = np.zeros(n + 1, dtype=bool)
            keep[1 + np.argsort(-sizes, kind="stable")[:strokes_per_class]] = True
            out[z][keep[comp]] = lab + 1
    return out


def phantom_annotations(corrected, truth: np.ndarray, phases: dict, *, num_workers: int = 1,
                        sample=None, **params) -> tuple[np.ndarray, dict, dict]:
    """Annotations standing in for a user's on a phantom.

    :func:`phantom_scribbles` from the truth, then ``scribble_correction_rounds`` rounds of
    :func:`correction_strokes` (a forest trained on the annotations so far, its errors on the
    annotated slices painted over).

    Parameters
    ----------
    corrected : xarray.Dataset or xarray.DataArray
        corrected.zarr's dataset (or its stack).
    truth : numpy.ndarray
        Ground truth on the volume's grid (``INVALID`` = not scored).
    phases : dict or PhaseTable
    num_workers : int
    sample : str, optional
    **params
        Segment settings (schema ``stages.segment``).

    Returns
    -------
    annotations : numpy.ndarray
    classes : dict
        Class table ``{value: {name, phase, label}}``.
    info : dict
        ``scribble_voxels``, ``correction_voxels`` per round.

    References
    ----------
    Arganda-Carreras et al., Bioinformatics 33, 2424 (2017): the train / correct loop.
    """
    p = resolve_params(params)
    stack = segment_stack(corrected, p["channels"], sample)
    ann, table = phantom_scribbles(truth, phases, slice_fraction=p["scribble_slice_fraction"],
                                   strokes_per_class=p["scribble_strokes_per_class"],
                                   stroke_length_px=p["scribble_stroke_length_px"],
                                   width_px=p["scribble_width_px"], seed=p["seed"])
    classes = class_table(table, phases, sample=sample)
    zs = np.flatnonzero(np.any(ann != UNLABELLED, axis=(1, 2)))
    info = {"scribble_voxels": int(np.count_nonzero(ann)), "correction_voxels": []}
    for _ in range(int(p["scribble_correction_rounds"])):
        model = train_classifier(stack, ann, classes, p, n_jobs=num_workers)
        before = int(np.count_nonzero(ann))
        ann = correction_strokes(ann, predict_slices(stack, model, zs), truth, phases,
                                 strokes_per_class=int(p["scribble_strokes_per_class"]))
        info["correction_voxels"].append(int(np.count_nonzero(ann)) - before)
    return ann, classes, info
