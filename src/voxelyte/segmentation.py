"""Segmentation: corrected two-detector volume (channel, z, y, x) -> phase labels (z, y, x).

Two methods, chosen per sample (``stages.segment.method``):

* ``trainable`` (default; needs annotations): the trainable segmentation of Cooper et al. 2022
  (Fiji's Trainable Weka Segmentation on both detectors stacked) and Minnmann et al. 2024 (CNN
  features + random forest). Multiscale features of every channel
  (``skimage.feature.multiscale_basic_features``: Gaussian-smoothed intensity, gradient magnitude
  (edges) and Hessian eigenvalues (texture) at ``num_sigma`` scales from ``sigma_min_px`` to
  ``sigma_max_px``, per slice (``features_dim: 2d``) or in 3D) plus, in 2D mode, the smoothed
  intensity of the ``z_context`` neighbouring slices (pore shine-through is seen along +z) feed a
  random forest (scikit-learn) fitted once per sample on the sparsely annotated voxels
  (annotation 0 = unlabelled). Any number of classes, merged into phases by the class -> phase
  table afterwards (Cooper: "Pt at pore edge" + "Pt at depth" -> pore): the phase probability is
  the sum of its classes' forest probabilities; label = argmax, ``confidence`` = its value.
  Prediction runs chunk-wise over z (dask), whole slices per chunk (a 3D feature chunk is read
  with a halo of ``ceil(4 sigma_max)`` slices).
* ``unsupervised``: a linear depth trend of the phase levels is taken out of every channel
  first (``flatten_level_trend``, ``unsupervised_level_trend``), so that global thresholds hold
  on every slice; then multi-Otsu thresholds (``skimage.filters.threshold_multiotsu``) of the
  BSE channel separate the solid phases (brightest phase, middle phase); pores come from the SE
  (topography) channel, where they are darker than every solid (Otsu on its two lowest classes),
  OR the darkest BSE class. Global thresholds for more than two phases leave a false rim of the
  middle phase where the brightest and the darkest phase touch (Cooper et al. 2022): the blurred
  edge passes through the middle grey level. ``remove_middle_rim`` relabels middle-phase voxels
  that lie within ``rim_max_width_px`` of both outer phases and on a strong BSE gradient to the
  nearer outer phase (gradient-aware rim removal); up to ``rim_max_passes`` passes, the later
  ones only on voxels whose BSE lies outside the middle phase's band (median +-
  ``rim_middle_band_mad`` robust SD): the rim left where a thicker band was thinned. Then
  self-training (``self_train``, ``self_training_rounds``; 0 = thresholds only): a random
  forest on the trainable mode's features is fitted on voxels drawn from these labels (evenly
  spaced slices, confident voxels, thin middle-phase rims between the outer phases left out)
  and relabels the volume; its multiscale, multi-channel and neighbouring-slice view takes
  away most of the rim the removal leaves (true CAM-pore edges that read as the middle phase
  in both detectors) and sharpens the solid phases. Last, small middle-phase pieces touching
  both outer phases (``remove_rim_fragments``, ``rim_fragment_max_voxels``) go to the nearer
  outer phase: rim debris.

Post-processing (both methods, logged): islands (face-connected components) of a phase below
``min_island_um3`` (per phase or one value) take the majority label of their surroundings;
optional ``majority`` (per-voxel most frequent label in a (2r+1)^3 box) or ``median`` smoothing.

Labels are uint8 with the sample's phase table; ``confidence`` is uint8 = round(255 p), p the
probability of the chosen phase (unsupervised and self-trained: the last forest's probability;
thresholds only: 0.5 + 0.5 min(1, |v - t| / half the class gap), v the intensity, t the
nearest threshold: a heuristic certainty, not a probability).

Phantom samples: ``phantom_annotations`` stands in for a user: ``phantom_scribbles`` draws
sparse scribbles from the ground truth (a few strokes per class on <= 3 % of the slices, along
the medial axis and the edge of each phase, like a user's strokes in napari), then
``correction_strokes`` paints over the largest errors of a first model on the same slices (one
round of the train / correct loop of Fiji's Trainable Weka Segmentation or ilastik).
``truth_in_registered_frame`` brings the ground truth into the registered frame (each truth
slice shifted by the drift residual the registration left, nearest-neighbour, then cropped to
corrected.zarr's µm coords). Scores: on the ground-truth grid (``segment_on_truth_grid``: the
corrected volume moved onto the truth's grid by the known residual, annotated and segmented
there: the segmentation's own accuracy), on the registered frame (the stage's labels; the
sub-pixel rest of the registration error included) and on the plain frame (the truth only
cropped: all of it included).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import xarray as xr
from scipy import ndimage

from voxelyte.descriptors._common import _edt
from voxelyte.errors import InputError
from voxelyte.io import volume_voxel_size_um

log = logging.getLogger(__name__)

METHODS = ("trainable", "unsupervised")
ANNOTATION_FORMATS = ("tiff", "zarr", "npy")
#: Budget of one prediction task's float32 feature stack (GB): large slices get fewer slices per
#: task (``prediction_slices``), so segmentation memory does not grow with the slice size.
MAX_FEATURE_GB = 1.0
#: Defaults of ``segment`` (the schema block ``stages.segment`` mirrors them).
SEGMENT_DEFAULTS = {
    "method": "trainable",
    "channels": None,
    "features_dim": "2d",
    "sigma_min_px": 0.5,
    "sigma_max_px": 6.0,
    "num_sigma": 4,
    "intensity": True,
    "edges": True,
    "texture": True,
    "z_context": 2,
    "n_estimators": 24,
    "max_depth": 16,
    "min_samples_leaf": 2,
    "class_weight": "balanced",
    "max_training_voxels": 60000,
    "chunk_z": 16,
    "bse_channel": "BSE",
    "se_channel": "SE",
    "unsupervised_smoothing_px": 0.7,
    "unsupervised_level_trend": "linear",
    "se_pore_threshold_mad": 3.0,
    "bse_pore_threshold_mad": 3.0,
    "rim_max_width_px": 2,
    "rim_middle_band_mad": 2.0,
    "rim_max_passes": 3,
    "rim_fragment_max_voxels": 50,
    "self_training_rounds": 3,
    "self_training_slices": 24,
    "self_training_voxels": 30000,
    "self_training_min_voxels_per_phase": 2000,
    "self_training_min_confidence": 0.7,
    "self_training_skip_rim_px": 1.5,
    "min_island_um3": 0.0,
    "smoothing": "none",
    "smoothing_radius_px": 1,
    "scribble_slice_fraction": 0.03,
    "scribble_strokes_per_class": 12,
    "scribble_stroke_length_px": 80,
    "scribble_width_px": 3,
    "scribble_correction_rounds": 1,
    "seed": 0,
}
UNLABELLED = 0
INVALID = 255
#: Types a saved model may contain (skops.io.load refuses anything else).
TRUSTED_MODEL_TYPES = (
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.int64", "numpy.intp",
    "builtins.dict", "builtins.list", "builtins.str", "builtins.int", "builtins.float",
)


# --------------------------------------------------------------------------- parameters
def resolve_params(params: dict) -> dict:
    unknown = sorted(set(params) - set(SEGMENT_DEFAULTS))
    if unknown:
        raise InputError("unknown segment parameters", field="stages.segment",
                         expected=f"keys of {sorted(SEGMENT_DEFAULTS)}", found=unknown)
    p = {**SEGMENT_DEFAULTS, **params}
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


def phase_map(phases: dict) -> dict[str, int]:
    """Phase name -> label value from a sample's phase table (``{name: {label: v, ...}}`` or
    ``{name: v}``)."""
    return {name: int(v["label"] if isinstance(v, dict) else v) for name, v in phases.items()}


def phase_classes(phases: dict) -> dict[str, dict]:
    """One annotation class per phase, value = phase label + 1 (0 = unlabelled), in the
    sample file's ``annotations.classes`` form ``{name: {value, phase}}``."""
    return {name: {"value": lab + 1, "phase": name} for name, lab in phase_map(phases).items()}


def _channel_names(stack: xr.DataArray) -> list[str]:
    return [str(c) for c in stack.coords["channel"].values] if "channel" in stack.coords \
        else [str(i) for i in range(stack.sizes["channel"])]


def _corrected_stack(corrected: xr.Dataset | xr.DataArray, sample=None) -> xr.DataArray:
    stack = corrected["corrected"] if isinstance(corrected, xr.Dataset) else corrected
    if stack.dims == ("z", "y", "x"):
        stack = stack.expand_dims(channel=["image"])
    if stack.dims != ("channel", "z", "y", "x"):
        raise InputError("corrected volume has unexpected dimensions", sample=sample,
                         field="corrected", expected="(channel, z, y, x)", found=stack.dims)
    return stack


def _whole_slice_chunks(stack: xr.DataArray) -> xr.DataArray:
    """Dask-backed stacks rechunked to whole slices and all channels (per-slice features)."""
    if isinstance(stack.data, da.Array):
        return stack.copy(data=stack.data.rechunk({0: -1, 2: -1, 3: -1}))
    return stack


def _pick_channels(stack: xr.DataArray, channels, sample=None) -> xr.DataArray:
    if not channels:
        return stack
    names = _channel_names(stack)
    missing = [c for c in channels if c not in names]
    if missing:
        raise InputError("channel not in the corrected volume", sample=sample,
                         field="stages.segment.channels", expected=f"names from {names}",
                         found=missing)
    return stack.isel(channel=[names.index(c) for c in channels])


# --------------------------------------------------------------------------- annotations
def load_annotations(spec: dict, *, shape_zyx: tuple, phases: dict, sample: str | None = None,
                     source: str | None = None) -> tuple[np.ndarray, dict]:
    """Read a user's annotation volume and check it against the corrected volume and the
    class table.

    ``spec``: ``path`` (absolute or resolved), ``format`` (tiff | zarr | npy), ``dataset``
    (zarr: array / variable name), ``slices`` (z indices of the annotated slices when the
    file holds only those: shape (len(slices), Y, X)), ``classes``: class name ->
    ``{value: 1..254, phase: <phase name>}``. Returns (annotation uint8 (z, y, x), 0 =
    unlabelled; class table value -> {name, phase, label}). A value without a class, a file
    without labelled voxels, a shape that is not the corrected volume's, or a class whose
    phase is not in the phase table raise InputError."""
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
    try:
        if fmt == "tiff":
            import tifffile
            data = tifffile.imread(path)
        elif fmt == "npy":
            data = np.load(path, allow_pickle=False)
        else:
            import zarr
            node = zarr.open(str(path), mode="r")
            name = spec.get("dataset")
            if hasattr(node, "shape"):
                data = node[...]
            else:
                if name is None:
                    arrays = [k for k, _ in node.arrays()]
                    if len(arrays) != 1:
                        raise InputError("zarr annotation store holds several arrays",
                                         sample=sample, source=str(path),
                                         field="annotations.dataset",
                                         expected=f"one of {arrays}", found=None)
                    name = arrays[0]
                data = node[name][...]
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
    if data.ndim == 2:
        data = data[None]
    slices = spec.get("slices")
    shape_zyx = tuple(int(s) for s in shape_zyx)
    if slices is not None:
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
        data = full
    elif data.shape != shape_zyx:
        raise InputError("annotation shape does not match the corrected volume",
                         sample=sample, source=str(path), field="annotations.path",
                         expected=f"{shape_zyx} (corrected.zarr z, y, x)", found=data.shape)
    else:
        data = _as_uint8_labels(data, sample, path)
    table = class_table(spec.get("classes") or {}, phases, sample=sample, source=src)
    check_annotations(data, table, sample=sample, source=str(path))
    return data, table


def _as_uint8_labels(data: np.ndarray, sample, path) -> np.ndarray:
    if data.size and (data.min() < 0 or data.max() > 254):
        raise InputError("annotation values out of range", sample=sample, source=str(path),
                         field="annotations.path", expected="values 0 (unlabelled) .. 254",
                         found=[int(data.min()), int(data.max())])
    return data.astype(np.uint8)


def class_table(classes: dict, phases: dict, *, sample=None, source=None) -> dict[int, dict]:
    """``{class name: {value, phase}}`` -> ``{value: {name, phase, label}}``, checked: values
    1..254 and unique, phases in the phase table."""
    labels = phase_map(phases)
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
    """Labelled voxels per class; a value without a class or no labelled voxel raise."""
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


# --------------------------------------------------------------------------- features
def feature_names(channels: list[str], p: dict) -> list[str]:
    """Names of the feature columns, in the order ``slab_features`` returns them."""
    sigmas = np.logspace(np.log2(p["sigma_min_px"]), np.log2(p["sigma_max_px"]),
                         num=int(p["num_sigma"]), base=2, endpoint=True)
    ndim = 2 if p["features_dim"] == "2d" else 3
    names = []
    for ch in channels:
        for s in sigmas:
            if p["intensity"]:
                names.append(f"{ch} intensity s={s:.2f}")
            if p["edges"]:
                names.append(f"{ch} edges s={s:.2f}")
            if p["texture"]:
                names.extend(f"{ch} hessian eig{i} s={s:.2f}" for i in range(ndim))
    if ndim == 2:
        for ch in channels:
            names.extend(f"{ch} intensity z{k:+d}" for k in _z_offsets(p))
    return names


def _z_offsets(p: dict) -> list[int]:
    k = int(p["z_context"])
    return [o for o in range(-k, k + 1) if o != 0]


def _sigmas(p):
    return dict(sigma_min=p["sigma_min_px"], sigma_max=p["sigma_max_px"],
                num_sigma=int(p["num_sigma"]), intensity=p["intensity"], edges=p["edges"],
                texture=p["texture"])


def halo_slices(p: dict) -> int:
    """Slices of context a chunk needs on each side in z."""
    if p["features_dim"] == "3d":
        return int(math.ceil(4 * p["sigma_max_px"]))
    return int(p["z_context"])


def slab_features(slab: np.ndarray, p: dict, lead: int, n_out: int) -> np.ndarray:
    """Features (n_out, Y, X, F) float32 of slices ``lead .. lead + n_out`` of ``slab``
    (C, Z, Y, X float32; ``lead`` context slices before, context after as available)."""
    from skimage.feature import multiscale_basic_features

    slab = np.nan_to_num(np.asarray(slab, dtype=np.float32), nan=0.0)
    if p["features_dim"] == "3d":
        f = multiscale_basic_features(np.moveaxis(slab, 0, -1), channel_axis=-1, workers=1,
                                      **_sigmas(p))
        return np.ascontiguousarray(f[lead:lead + n_out], dtype=np.float32)
    nz = slab.shape[1]
    offsets = _z_offsets(p)
    sm = None
    if offsets:
        s = min(0.7, p["sigma_min_px"]) if p["sigma_min_px"] > 0 else 0.7
        sm = np.stack([np.stack([ndimage.gaussian_filter(slab[c, z], s)
                                 for z in range(nz)]) for c in range(slab.shape[0])])
    out = None
    for k, i in enumerate(range(lead, lead + n_out)):
        f = multiscale_basic_features(np.moveaxis(slab[:, i], 0, -1), channel_axis=-1,
                                      workers=1, **_sigmas(p))
        n_basic = f.shape[-1]
        if out is None:  # filled in place: no second copy of the chunk's features
            n_ctx = slab.shape[0] * len(offsets)
            out = np.empty((n_out, *f.shape[:2], n_basic + n_ctx), dtype=np.float32)
        out[k, ..., :n_basic] = f
        del f
        for j, (c, o) in enumerate((c, o) for c in range(slab.shape[0]) for o in offsets):
            out[k, ..., n_basic + j] = sm[c, min(max(i + o, 0), nz - 1)]
    return out


def _read_slab(data, z0: int, z1: int, halo: int) -> tuple[np.ndarray, int]:
    """Slices [z0 - halo, z1 + halo) of a (C, Z, Y, X) array (numpy or dask), clipped at the
    volume's ends, and the number of leading context slices."""
    nz = data.shape[1]
    a, b = max(0, z0 - halo), min(nz, z1 + halo)
    slab = data[:, a:b]
    if isinstance(slab, da.Array):
        slab = slab.compute(scheduler="synchronous")
    return np.asarray(slab, dtype=np.float32), z0 - a


# --------------------------------------------------------------------------- model
@dataclass
class TrainedModel:
    """A fitted forest with what it needs to be applied again."""
    forest: object
    class_values: list[int]            # forest classes (annotation values)
    class_labels: list[int]            # phase label of each class
    phase_labels: list[int]            # distinct phase labels, column order of the phase probs
    channels: list[str]
    params: dict                       # feature parameters
    n_training_voxels: dict = field(default_factory=dict)
    feature_importance: dict = field(default_factory=dict)

    def merge_matrix(self) -> np.ndarray:
        """(n_classes, n_phases) 0/1: phase probability = class probabilities @ M."""
        m = np.zeros((len(self.class_values), len(self.phase_labels)), dtype=np.float32)
        for i, lab in enumerate(self.class_labels):
            m[i, self.phase_labels.index(lab)] = 1.0
        return m


FEATURE_KEYS = ("features_dim", "sigma_min_px", "sigma_max_px", "num_sigma", "intensity",
                "edges", "texture", "z_context")


def train_classifier(stack: xr.DataArray, annotations: np.ndarray, table: dict, p: dict,
                     *, n_jobs: int = 1) -> TrainedModel:
    """Fit a random forest on the features of the annotated voxels (annotation != 0): only the
    annotated slices' features are computed. At most ``max_training_voxels`` voxels, drawn per
    class in proportion to the class counts with the seed (every class keeps >= 1 %)."""
    from sklearn.ensemble import RandomForestClassifier

    data = stack.data
    zs = np.flatnonzero(np.any(annotations != UNLABELLED, axis=(1, 2)))
    halo = halo_slices(p)
    rng = np.random.default_rng([int(p["seed"]), 11])
    counts = np.bincount(annotations.ravel(), minlength=256)
    counts[UNLABELLED] = 0
    total = int(counts.sum())
    cap = int(p["max_training_voxels"])
    keep_fraction = {v: 1.0 if total <= cap else max(cap * max(counts[v] / total, 0.01)
                                                      / counts[v], 0.0)
                     for v in table if counts[v]}
    X, y = [], []
    for z in zs:
        slab, lead = _read_slab(data, int(z), int(z) + 1, halo)
        f = slab_features(slab, p, lead, 1)[0]
        ann = annotations[z]
        for v, frac in keep_fraction.items():
            idx = np.flatnonzero(ann.ravel() == v)
            if frac < 1.0:
                idx = idx[rng.random(idx.size) < frac]
            X.append(f.reshape(-1, f.shape[-1])[idx])
            y.append(np.full(idx.size, v, dtype=np.uint8))
    X = np.concatenate(X)
    y = np.concatenate(y)
    forest = RandomForestClassifier(
        n_estimators=int(p["n_estimators"]), max_depth=p["max_depth"],
        min_samples_leaf=int(p["min_samples_leaf"]), max_features="sqrt",
        class_weight=p["class_weight"], random_state=int(p["seed"]), n_jobs=n_jobs)
    forest.fit(X, y)
    forest.set_params(n_jobs=1)  # prediction parallelises over chunks instead
    class_values = [int(v) for v in forest.classes_]
    class_labels = [table[v]["label"] for v in class_values]
    phase_labels = sorted(set(class_labels))
    names = feature_names(_channel_names(stack), p)
    importance = {n: float(w) for n, w in zip(names, forest.feature_importances_)}
    return TrainedModel(
        forest=forest, class_values=class_values, class_labels=class_labels,
        phase_labels=phase_labels, channels=_channel_names(stack),
        params={k: p[k] for k in FEATURE_KEYS},
        n_training_voxels={table[v]["name"]: int((y == v).sum()) for v in class_values},
        feature_importance=importance)


def _predict_chunk(data, model: TrainedModel, z0: int, z1: int, halo: int):
    slab, lead = _read_slab(data, z0, z1, halo)
    f = slab_features(slab, model.params, lead, z1 - z0)
    shape = f.shape[:3]
    merge = model.merge_matrix()
    probs = model.forest.predict_proba(f.reshape(-1, f.shape[-1])).astype(np.float32) @ merge
    best = probs.argmax(axis=1)
    labels = np.asarray(model.phase_labels, dtype=np.uint8)[best].reshape(shape)
    conf = np.rint(255 * probs[np.arange(best.size), best]).astype(np.uint8).reshape(shape)
    return labels, conf


def prediction_slices(chunk_z: int, shape_yx: tuple, n_features: int,
                      max_feature_gb: float) -> int:
    """Slices per prediction task: ``chunk_z``, fewer where one task's float32 feature stack
    (slices x Y x X x features x 4 B) would exceed ``max_feature_gb`` (at least one slice)."""
    per_slice_gb = shape_yx[0] * shape_yx[1] * n_features * 4 / 1e9
    return max(1, min(int(chunk_z), int(max_feature_gb // per_slice_gb) if per_slice_gb else
                      int(chunk_z)))


def predict(stack: xr.DataArray, model: TrainedModel, *, chunk_z: int = 16, num_workers: int = 1,
            max_feature_gb: float = MAX_FEATURE_GB) -> tuple[np.ndarray, np.ndarray]:
    """Apply a trained model chunk-wise over z (dask delayed tasks, ``num_workers`` threads):
    (labels uint8 (z, y, x), confidence uint8 = round(255 p)). A task's feature stack stays
    below ``max_feature_gb`` (``prediction_slices``), whatever the slice size."""
    data = stack.data
    nz, ny, nx = stack.shape[1:]
    halo = halo_slices(model.params)
    labels = np.empty((nz, ny, nx), dtype=np.uint8)
    conf = np.empty((nz, ny, nx), dtype=np.uint8)
    step = prediction_slices(chunk_z, (ny, nx), len(feature_names(model.channels, model.params)),
                             max_feature_gb)
    bounds = [(z, min(z + step, nz)) for z in range(0, nz, step)]
    tasks = [dask.delayed(_predict_chunk)(data, model, a, b, halo) for a, b in bounds]
    results = dask.compute(*tasks, scheduler="threads", num_workers=num_workers)
    for (a, b), (lab, cf) in zip(bounds, results):
        labels[a:b], conf[a:b] = lab, cf
    return labels, conf


def save_model(model: TrainedModel, path) -> None:
    """Save with skops (``skops.io.dump``): a zip of JSON schema + numpy arrays, loadable
    without unpickling arbitrary objects. Metadata (classes, channels, feature parameters) in
    a JSON sidecar ``<path>.json``."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sio.dump(model.forest, tmp)
    tmp.replace(path)
    meta = {"format": "skops", "class_values": model.class_values,
            "class_labels": model.class_labels, "phase_labels": model.phase_labels,
            "channels": model.channels, "params": model.params,
            "n_training_voxels": model.n_training_voxels}
    Path(str(path) + ".json").write_text(json.dumps(meta, indent=2))


def save_thresholds(thresholds: dict, path) -> None:
    """The unsupervised "model": its thresholds (a dict of numbers and text), in the same skops
    format as a forest, so every segmentation leaves one model file."""
    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sio.dump({"method": "unsupervised", **thresholds}, tmp)
    tmp.replace(path)


def load_model(path) -> TrainedModel:
    """Load a model written by ``save_model``; only the types in ``TRUSTED_MODEL_TYPES`` are
    accepted (anything else raises InputError, nothing is executed)."""
    import skops.io as sio

    path = Path(path)
    untrusted = sio.get_untrusted_types(file=path)
    bad = [t for t in untrusted if t not in TRUSTED_MODEL_TYPES]
    if bad:
        raise InputError("model file holds types that are not trusted", source=str(path),
                         expected=f"only {TRUSTED_MODEL_TYPES}", found=bad)
    forest = sio.load(path, trusted=untrusted)
    from sklearn.ensemble import RandomForestClassifier
    if not isinstance(forest, RandomForestClassifier):
        raise InputError("model file does not hold a random forest", source=str(path),
                         expected="RandomForestClassifier", found=type(forest).__name__)
    meta = json.loads(Path(str(path) + ".json").read_text())
    return TrainedModel(forest=forest, class_values=meta["class_values"],
                        class_labels=meta["class_labels"], phase_labels=meta["phase_labels"],
                        channels=meta["channels"], params=meta["params"],
                        n_training_voxels=meta.get("n_training_voxels", {}))


# --------------------------------------------------------------------------- unsupervised
def _sample_values(data: np.ndarray, n: int, rng) -> np.ndarray:
    flat = data.ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size > n:
        flat = flat[rng.choice(flat.size, n, replace=False)]
    return flat


def _robust_level(values: np.ndarray) -> tuple[float, float]:
    """(median, robust standard deviation 1.4826 MAD) of non-empty ``values``."""
    med = float(np.median(values))
    return med, 1.4826 * float(np.median(np.abs(values - med)))


def _outer_distances(labels: np.ndarray, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (voxels) from every voxel to the nearest ``low`` and the nearest
    ``high`` voxel of ``labels``: (d_low, d_high), 0 on the phase itself."""
    unit = (1.0,) * labels.ndim
    return _edt(labels != low, unit), _edt(labels != high, unit)


def remove_middle_rim(labels: np.ndarray, gradient: np.ndarray, *, low: int, middle: int,
                      high: int, bright: np.ndarray, threshold: float, max_width_px: int = 2,
                      gradient_threshold: float | None = None, max_iterations: int = 1,
                      middle_band: tuple[float, float] | None = None
                      ) -> tuple[np.ndarray, list[int]]:
    """Gradient-aware removal of the false middle-phase rim that a global threshold leaves
    between the darkest (``low``) and brightest (``high``) phase (Cooper et al. 2022: the
    blurred low-high edge passes through the middle grey level).

    A middle voxel belongs to a rim when the middle layer there is at most ``max_width_px``
    thick, ``t = d_low + d_high - 1 <= max_width_px + 0.5`` (``rim_thickness``), and it sits
    on an intensity gradient above ``gradient_threshold`` (default: the 25th percentile of the
    gradient over the middle phase: flat middle regions are real). It goes to the nearer outer
    phase; at equal distance to ``high`` if its intensity ``bright`` >= ``threshold``, else to
    ``low``. The first pass can leave a rim where a thicker middle band was thinned; later
    passes (up to ``max_iterations``) take only rim voxels whose intensity lies outside
    ``middle_band`` = (lo, hi) (not explained by the middle phase: a low-high mixture), so
    repeating does not erode real thin middle phase; without ``middle_band`` one pass only.
    Returns (labels, voxels relabelled per pass)."""
    out = labels.copy()
    if max_width_px < 1:
        return out, []
    if gradient_threshold is None and (out == middle).any():
        gradient_threshold = float(np.percentile(gradient[out == middle], 25))
    unexplained = None if middle_band is None else \
        (bright < middle_band[0]) | (bright > middle_band[1])
    passes = []
    for i in range(max_iterations if unexplained is not None else 1):
        mid = out == middle
        if not mid.any() or not (out == low).any() or not (out == high).any():
            break
        d_low, d_high = _outer_distances(out, low, high)
        rim = mid & (d_low + d_high - 1.0 <= max_width_px + 0.5) \
            & (gradient > gradient_threshold)
        if i > 0:
            rim &= unexplained
        n = int(rim.sum())
        if n == 0:
            break
        to_high = rim & ((d_high < d_low) | ((d_high == d_low) & (bright >= threshold)))
        out[to_high] = high
        out[rim & ~to_high] = low
        passes.append(n)
    return out, passes


def _small_components(mask: np.ndarray, max_voxels: int, pad: int):
    """For each face-connected component of ``mask`` with fewer than ``max_voxels`` voxels:
    (box: its bounding box grown by ``pad`` voxels, the component within the box, its
    face-neighbour shell within the box). The components are found once, before the first."""
    comp, n = ndimage.label(mask)
    if n == 0:
        return
    sizes = np.bincount(comp.ravel())
    boxes = ndimage.find_objects(comp)
    struct = ndimage.generate_binary_structure(mask.ndim, 1)
    for idx in np.flatnonzero(sizes[1:] < max_voxels) + 1:
        box = tuple(slice(max(b.start - pad, 0), b.stop + pad) for b in boxes[idx - 1])
        piece = comp[box] == idx
        yield box, piece, ndimage.binary_dilation(piece, struct) & ~piece


def remove_rim_fragments(labels: np.ndarray, *, low: int, middle: int, high: int,
                         max_voxels: int) -> tuple[np.ndarray, dict]:
    """Small isolated pieces of a false middle-phase rim: face-connected middle-phase
    components with fewer than ``max_voxels`` voxels that touch both outer phases (face
    neighbours). Each of their voxels goes to the nearer outer phase (Euclidean distance over
    the labels); at equal distance to the outer phase the fragment touches on more faces.
    Real middle phase between the outer phases is a continuous network or a particle far
    larger than a rim piece (the demo's solid electrolyte: a 2 um particle is ~4000 voxels at
    0.1 um), so only rim debris goes. Returns (labels, {fragments, voxels})."""
    out = labels.copy()
    if max_voxels < 2 or not (out == low).any() or not (out == high).any():
        return out, {"fragments": 0, "voxels": 0}
    n_frag = n_vox = 0
    for box, piece, shell in _small_components(out == middle, max_voxels, pad=4):
        around = out[box][shell]
        n_low, n_high = int((around == low).sum()), int((around == high).sum())
        if n_low == 0 or n_high == 0:
            continue
        d_low, d_high = (d[piece] for d in _outer_distances(out[box], low, high))
        tie = high if n_high >= n_low else low
        out[box][piece] = np.where(d_high < d_low, high, np.where(d_low < d_high, low, tie))
        n_frag += 1
        n_vox += int(piece.sum())
    return out, {"fragments": n_frag, "voxels": n_vox}


def _unsupervised_channels(stack: xr.DataArray, p: dict, sample=None) -> list[str]:
    """The stack's channel names, checked to hold ``bse_channel`` and ``se_channel``."""
    names = _channel_names(stack)
    for key in ("bse_channel", "se_channel"):
        if p[key] not in names:
            raise InputError("channel for unsupervised segmentation not found", sample=sample,
                             field=f"stages.segment.{key}", expected=f"one of {names}",
                             found=p[key])
    return names


def flatten_level_trend(stack: xr.DataArray, p: dict, *, sample=None
                        ) -> tuple[xr.DataArray, dict]:
    """Take a linear depth trend of the phase levels out of every channel, for the global
    thresholds of the unsupervised mode. The voxels are split once by Otsu on the smoothed
    BSE channel (bright class / the rest); per slice z and channel, the medians of both
    classes, ``hi_z`` and ``lo_z``, get a straight-line fit over z (``hi'_z``, ``lo'_z``), and
    each slice is mapped linearly so that its fitted levels become their medians over z:
    ``v' = lo_ref + (v - lo'_z) (hi_ref - lo_ref) / (hi'_z - lo'_z)``. Class medians, unlike
    the slice median, do not follow the composition of the slice, so a brightness drift the
    preprocess stage left (it corrects with slice medians) is removed while the phase
    fractions changing with depth are not mistaken for one. Channels or volumes without two
    populated classes on >= 2 slices are left as they are. Returns (the stack in memory,
    per-channel info: levels at the first and last slice before the correction)."""
    from skimage.filters import threshold_otsu

    names = _unsupervised_channels(stack, p, sample)
    values = np.array(stack.values, dtype=np.float32)
    s = float(p["unsupervised_smoothing_px"])
    bse = values[names.index(p["bse_channel"])]
    smooth = ndimage.gaussian_filter(bse, s) if s > 0 else bse
    rng = np.random.default_rng([int(p["seed"]), 14])
    bright = smooth >= float(threshold_otsu(_sample_values(smooth, 2_000_000, rng)))
    del smooth
    nz = values.shape[1]
    z = np.arange(nz, dtype=np.float64)
    info = {}
    for c, name in enumerate(names):
        hi, lo = np.full(nz, np.nan), np.full(nz, np.nan)
        for k in range(nz):
            v, b = values[c, k], bright[k]
            ok = np.isfinite(v)
            if (ok & b).sum() >= 100 and (ok & ~b).sum() >= 100:
                hi[k], lo[k] = np.median(v[ok & b]), np.median(v[ok & ~b])
        good = np.isfinite(hi) & np.isfinite(lo)
        if good.sum() < 2:
            info[name] = {"corrected": False, "reason": "fewer than 2 slices with both classes"}
            continue
        hi_fit = np.polyval(np.polyfit(z[good], hi[good], 1), z)
        lo_fit = np.polyval(np.polyfit(z[good], lo[good], 1), z)
        span = hi_fit - lo_fit
        if np.any(span <= 0):
            info[name] = {"corrected": False, "reason": "class levels cross over z"}
            continue
        hi_ref, lo_ref = float(np.median(hi_fit)), float(np.median(lo_fit))
        gain = ((hi_ref - lo_ref) / span).astype(np.float32)
        values[c] = lo_ref + (values[c] - lo_fit[:, None, None].astype(np.float32)) \
            * gain[:, None, None]
        info[name] = {"corrected": True,
                      "bright_class_level_first_last": [float(hi_fit[0]), float(hi_fit[-1])],
                      "other_class_level_first_last": [float(lo_fit[0]), float(lo_fit[-1])]}
    return stack.copy(data=values), info


def unsupervised_segment(stack: xr.DataArray, phases: dict, p: dict, *, phase_order=None,
                         sample=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Unsupervised segmentation of a BSE + SE volume into (darkest, middle, brightest) phases
    (default pore, SE, CAM).

    1. Both channels Gaussian-smoothed (``unsupervised_smoothing_px``).
    2. Solid phases: multi-Otsu on BSE with one class per solid phase (here 2: Otsu), middle
       below, brightest above the threshold. Pores do not form a BSE class of their own:
       shine-through makes them look like the material behind them.
    3. Pores from the SE (topography) channel, where a pore is a dark cavity (its solid edges
       are bright). The SE value is standardised against the SE level of its BSE class,
       ``r = (SE - median_class) / (1.4826 MAD_class)``; ``r < -se_pore_threshold_mad``
       marks pores. Middle-class voxels darker than
       ``median - bse_pore_threshold_mad * 1.4826 MAD`` of the middle class in BSE are pores
       too (the darkest BSE class: pores whose shine-through is attenuated; 0 = off).
    4. ``remove_middle_rim`` (gradient-aware) relabels the false middle-phase rim left where
       the brightest and the darkest phase meet; passes after the first take only voxels
       whose BSE lies outside the middle class's band (median +- ``rim_middle_band_mad``
       robust SD), the CAM-pore mixtures a thinned thicker band leaves.
    Returns (labels, confidence uint8, info)."""
    from skimage.filters import threshold_multiotsu

    names = _unsupervised_channels(stack, p, sample)
    labels_of = phase_map(phases)
    if phase_order is None:
        phase_order = ["pore", "SE", "CAM"] if {"pore", "SE", "CAM"} <= set(labels_of) \
            else sorted(labels_of, key=labels_of.get)
    if len(phase_order) != 3:
        raise InputError("unsupervised segmentation separates three phases", sample=sample,
                         field="phases", expected="3 phases (pore, middle, brightest)",
                         found=list(labels_of))
    low, middle, high = (labels_of[n] for n in phase_order)
    s = float(p["unsupervised_smoothing_px"])
    bse = np.asarray(stack.isel(channel=names.index(p["bse_channel"])).values, np.float32)
    se = np.asarray(stack.isel(channel=names.index(p["se_channel"])).values, np.float32)
    if s > 0:
        bse = ndimage.gaussian_filter(bse, s)
        se = ndimage.gaussian_filter(se, s)
    rng = np.random.default_rng([int(p["seed"]), 12])
    t_bse = float(threshold_multiotsu(_sample_values(bse, 2_000_000, rng), classes=2)[0])
    bright = bse >= t_bse
    r = np.empty_like(se)
    stats = {}
    for name, where in (("bright", bright), ("middle", ~bright)):
        vals = _sample_values(se[where], 2_000_000, rng)
        med, mad = _robust_level(vals) if vals.size else (0.0, 1.0)
        r[where] = (se[where] - med) / (mad or 1.0)
        stats[name] = {"se_median": med, "se_mad_scaled": mad}
    k_se = float(p["se_pore_threshold_mad"])
    pore = r < -k_se
    k_dark = float(p["bse_pore_threshold_mad"])
    dark_level = None
    if k_dark > 0 and (~bright).any():
        med, sd = _robust_level(_sample_values(bse[~bright], 2_000_000, rng))
        dark_level = med - k_dark * sd
        pore |= bse < dark_level
    labels = np.where(bright, high, middle).astype(np.uint8)
    labels[pore] = low
    # confidence: distance to the BSE threshold relative to half the gap of the class medians
    centres = [float(np.median(_sample_values(bse[w], 200_000, rng))) if w.any() else t_bse
               for w in (~bright, bright)]
    half_gap = abs(centres[1] - centres[0]) / 2 or 1.0
    conf = np.rint(255 * (0.5 + 0.5 * np.clip(np.abs(bse - t_bse) / half_gap, 0, 1)))
    conf = conf.astype(np.uint8)
    conf[pore] = np.rint(255 * (0.5 + 0.5 * np.clip((-r[pore] - k_se) / k_se, 0, 1)))
    gradient = ndimage.gaussian_gradient_magnitude(bse, 1.0)
    level_mid = 0.5 * (float(np.median(bse[labels == low])) if (labels == low).any() else 0.0) \
        + 0.5 * centres[1]
    # BSE band of the middle phase (median +- k robust SD): rim voxels outside it are low-high
    # mixtures, which the passes after the first may still take
    k_band = float(p["rim_middle_band_mad"])
    band = None
    if k_band > 0 and (labels == middle).any():
        med, sd = _robust_level(_sample_values(bse[labels == middle], 2_000_000, rng))
        band = (med - k_band * sd, med + k_band * sd)
    rim_before = rim_thickness(labels, low=low, middle=middle, high=high)
    labels, relabelled = remove_middle_rim(
        labels, gradient, low=low, middle=middle, high=high, bright=bse,
        threshold=float(level_mid), max_width_px=int(p["rim_max_width_px"]),
        max_iterations=int(p["rim_max_passes"]), middle_band=band)
    info = {"bse_threshold": t_bse, "se_class_levels": stats,
            "se_pore_threshold_mad": float(p["se_pore_threshold_mad"]),
            "bse_pore_level": dark_level,
            "phase_order_dark_to_bright": list(phase_order),
            "rim_threshold_bse": float(level_mid),
            "rim_middle_band_bse": None if band is None else [float(v) for v in band],
            "rim_voxels_relabelled": int(sum(relabelled)),
            "rim_voxels_relabelled_per_pass": relabelled,
            "sandwiched_middle_voxels_before": int(rim_before.size),
            "sandwiched_middle_voxels_after": int(rim_thickness(
                labels, low=low, middle=middle, high=high).size)}
    return labels, conf, info


def self_training_annotations(labels: np.ndarray, confidence: np.ndarray, *, low: int,
                              middle: int, high: int, p: dict) -> tuple[np.ndarray, dict]:
    """Training voxels for one self-training round, drawn from the current labels on
    ``self_training_slices`` slices spread evenly over z, among the voxels whose confidence is
    >= ``self_training_min_confidence`` and that are not middle phase in a thin rim between the
    outer phases (``t = d_low + d_high - 1 <= self_training_skip_rim_px``, ``rim_thickness``:
    the labels in question are not taught). Each phase gets ``self_training_voxels`` times its
    share of these candidates, at least ``self_training_min_voxels_per_phase`` (seeded draw):
    equal numbers per phase would over-teach a rare phase's uncertain edge (on the demo: pore
    over-called, SE IoU -0.04). Returns (annotations uint8 with value = label + 1,
    0 = unlabelled; counts)."""
    nz = labels.shape[0]
    zs = np.unique(np.linspace(0, nz - 1, min(nz, int(p["self_training_slices"])))
                   .round().astype(int))
    skip_px = float(p["self_training_skip_rim_px"])
    halo = int(math.ceil(skip_px)) + 1
    min_conf = 255.0 * float(p["self_training_min_confidence"])
    candidates = {lab: [] for lab in np.unique(labels).tolist()}
    skipped = 0
    for z in zs:
        a, b = max(0, z - halo), min(nz, z + halo + 1)
        lab = labels[a:b]
        ok = confidence[z] >= min_conf
        if skip_px > 0 and (lab == low).any() and (lab == high).any():
            d_low, d_high = (d[z - a] for d in _outer_distances(lab, low, high))
            rim = (labels[z] == middle) & (d_low + d_high - 1.0 <= skip_px)
            skipped += int(rim.sum())
            ok &= ~rim
        offset = z * labels[z].size
        for value in candidates:
            candidates[value].append(offset + np.flatnonzero(ok & (labels[z] == value)))
    rng = np.random.default_rng([int(p["seed"]), 13])
    annotations = np.zeros(labels.shape, dtype=np.uint8)
    pools = {value: np.concatenate(parts) for value, parts in candidates.items()}
    total = max(1, sum(idx.size for idx in pools.values()))
    picked = {}
    for value, idx in pools.items():
        n_max = max(int(p["self_training_min_voxels_per_phase"]),
                    round(int(p["self_training_voxels"]) * idx.size / total))
        if idx.size > n_max:
            idx = rng.choice(idx, n_max, replace=False)
        annotations.flat[idx] = value + 1
        picked[int(value)] = int(idx.size)
    return annotations, {"slices": int(zs.size), "voxels_per_label": picked,
                         "thin_rim_voxels_skipped": skipped}


def self_train(stack: xr.DataArray, labels: np.ndarray, confidence: np.ndarray, phases: dict,
               p: dict, *, low: int, middle: int, high: int, num_workers: int = 1
               ) -> tuple[np.ndarray, np.ndarray, TrainedModel | None, list[dict]]:
    """Self-training (pseudo-labelling): ``self_training_rounds`` times, a random forest with
    the trainable mode's features is fitted on voxels drawn from the current labels
    (``self_training_annotations``) and predicts the whole volume, which becomes the labels
    (Lee 2013, "Pseudo-label"; Cooper et al. 2022's trainable segmentation with the
    thresholds as the annotator). The forest sees every channel at several scales and the
    neighbouring slices, which the global thresholds do not: CAM-pore edges whose blur passes
    through the middle grey level and were taught only away from thin rims come out as CAM
    or pore. Returns (labels, confidence, last model or None, per-round info)."""
    labels_of = phase_map(phases)
    names_of = {v: n for n, v in labels_of.items()}
    table = class_table(phase_classes(phases), phases)
    model, rounds = None, []
    for r in range(int(p["self_training_rounds"])):
        ann, drawn = self_training_annotations(labels, confidence, low=low, middle=middle,
                                               high=high, p={**p, "seed": int(p["seed"]) + r})
        if len({v for v, n in drawn["voxels_per_label"].items() if n}) < 2:
            break
        model = train_classifier(stack, ann, {v: t for v, t in table.items()
                                              if drawn["voxels_per_label"].get(v - 1)},
                                 {**p, "seed": int(p["seed"]) + r}, n_jobs=num_workers)
        new, confidence = predict(stack, model, chunk_z=int(p["chunk_z"]),
                                  num_workers=num_workers)
        rounds.append({"round": r + 1, **drawn,
                       "voxels_per_label": {names_of[v]: n for v, n in
                                            drawn["voxels_per_label"].items()},
                       "changed_voxels": int(np.count_nonzero(new != labels))})
        log.info("self-training round %d: %d voxels changed", r + 1, rounds[-1]["changed_voxels"])
        labels = new
    return labels, confidence, model, rounds


def _distance_outside_px(shape: tuple, z0: int, z1: int, nz: int) -> np.ndarray:
    """Distance (voxels) from each voxel of slices ``z0:z1`` of a (nz, ...) volume to the
    nearest voxel outside the volume: ``min over axes of min(i + 1, n - i)``."""
    near = None
    for axis, n in enumerate((nz, *shape[1:])):
        i = np.arange(z0, z1) if axis == 0 else np.arange(n)
        d = np.minimum(i + 1, n - i).astype(np.float32)
        d = d.reshape([-1 if k == axis else 1 for k in range(len(shape))])
        near = d if near is None else np.minimum(near, d)
    return np.broadcast_to(near, (z1 - z0, *shape[1:]))


def rim_thickness(labels: np.ndarray, *, low: int, middle: int, high: int,
                  truth: np.ndarray | None = None, reach_px: float = 3.0,
                  slab_z: int = 64, exclude_unresolved: bool = True) -> np.ndarray:
    """Thickness (voxels) of the middle-phase rim at each middle voxel lying between the outer
    phases: ``t = d_low + d_high - 1`` (Euclidean distances to the nearest ``low`` and ``high``
    voxel of ``labels``, both <= ``reach_px``): 1 for a one-voxel rim (1.41 across a corner),
    2 for a two-voxel rim. With ``truth``, only voxels at a true low-high contact count: the
    truth has both ``low`` and ``high`` but no ``middle`` voxel in their 3x3x3 neighbourhood
    (any middle label there is a false rim). ``t`` is measured within the ball of radius
    ``r = max(d_low, d_high)`` around the voxel; with ``exclude_unresolved`` (default) voxels
    whose measurement is not resolved are left out: near the volume's faces (``r`` beyond
    the nearest voxel outside the volume: an outer-phase voxel may lie just outside, so ``t``
    is only an upper bound) and, with ``truth``, where the cube of half-width ``ceil(r)``
    holding that ball (the 3x3x3 neighbourhood for ``r = 1``) has true middle phase: there
    the labels' middle layer may be a real middle-phase boundary placed a voxel off at a
    low-middle-high triple line (e.g. across a one-voxel pore crevice between SE and CAM),
    not a rim at a low-high contact. Computed in z-slabs of ``slab_z`` slices with a
    halo of ``ceil(reach_px) + 1`` slices: exact (a distance <= reach_px never leaves the halo),
    and memory stays bounded for any volume."""
    nz = labels.shape[0]
    halo = int(math.ceil(reach_px)) + 1
    cube = np.ones((3,) * labels.ndim, dtype=bool)
    found = []
    for z0 in range(0, nz, int(slab_z)):
        a, b = max(0, z0 - halo), min(nz, z0 + int(slab_z) + halo)
        core = slice(z0 - a, z0 - a + min(int(slab_z), nz - z0))
        lab = labels[a:b]
        mid = lab == middle
        if not mid[core].any() or not (lab == low).any() or not (lab == high).any():
            continue
        d_low, d_high = _outer_distances(lab, low, high)
        sel = (mid & (d_low <= reach_px) & (d_high <= reach_px))[core]
        ball = np.maximum(d_low[core], d_high[core])
        if exclude_unresolved:
            sel &= ball <= _distance_outside_px(labels.shape, z0, z0 + sel.shape[0], nz)
        if truth is not None:
            t = truth[a:b]
            sel &= ~ndimage.binary_dilation(t == middle, cube)[core] & (t[core] != INVALID)
            sel &= ndimage.binary_dilation(t == low, cube)[core]
            sel &= ndimage.binary_dilation(t == high, cube)[core]
            if exclude_unresolved and (t == middle).any():
                reach = ndimage.distance_transform_cdt(t != middle, metric="chessboard")
                sel &= reach[core] > np.ceil(ball - 1e-6)
        found.append((d_low[core] + d_high[core] - 1.0)[sel])
    return np.concatenate(found) if found else np.zeros(0)


# --------------------------------------------------------------------------- post-processing
def min_island_voxels(min_island_um3, phases: dict, voxel_size_um) -> dict[int, int]:
    """Minimum island size per phase label in voxels: ``ceil(V_min / (vz vy vx))``."""
    voxel_um3 = float(np.prod(voxel_size_um))
    labels = phase_map(phases)
    if isinstance(min_island_um3, dict):
        unknown = sorted(set(min_island_um3) - set(labels))
        if unknown:
            raise InputError("minimum island size given for a phase not in the phase table",
                             field="stages.segment.min_island_um3",
                             expected="phases " + ", ".join(labels), found=unknown)
        values = {labels[n]: float(v) for n, v in min_island_um3.items()}
    else:
        values = {v: float(min_island_um3 or 0.0) for v in labels.values()}
    return {lab: int(math.ceil(v / voxel_um3 - 1e-9)) for lab, v in values.items() if v > 0}


def remove_small_islands(labels: np.ndarray, min_voxels: dict[int, int]) -> tuple[np.ndarray, dict]:
    """Face-connected components of phase ``v`` with fewer than ``min_voxels[v]`` voxels take
    the most frequent label among their face neighbours outside the island (phases in label
    order; a relabelled island may merge into a neighbour). Returns (labels, {label: (islands,
    voxels) relabelled})."""
    out = labels.copy()
    report = {}
    for value in sorted(min_voxels):
        n_min = min_voxels[value]
        if n_min <= 1:
            continue
        n_islands = n_vox = 0
        for box, island, shell in _small_components(out == value, n_min, pad=1):
            n_islands += 1
            neighbours = out[box][shell]
            neighbours = neighbours[neighbours != value]
            if neighbours.size == 0:
                continue
            out[box][island] = np.bincount(neighbours).argmax()
            n_vox += int(island.sum())
        report[int(value)] = {"islands": n_islands, "voxels": n_vox}
    return out, report


def smooth_labels(labels: np.ndarray, method: str = "majority", radius_px: int = 1) -> np.ndarray:
    """``majority``: each voxel takes the most frequent label in its (2r+1)^3 box (ties keep
    the voxel's label); ``median``: median filter of the label values (only meaningful when the
    label order follows a physical order); ``none``: unchanged."""
    if method == "none" or radius_px < 1:
        return labels
    size = 2 * int(radius_px) + 1
    if method == "median":
        return ndimage.median_filter(labels, size=size, mode="nearest")
    if method != "majority":
        raise InputError("unknown smoothing", field="stages.segment.smoothing",
                         expected="none, majority or median", found=method)
    values = np.unique(labels)
    best = np.zeros(labels.shape, dtype=np.float32)
    out = labels.copy()
    own = np.zeros(labels.shape, dtype=np.float32)
    counts = {}
    for v in values:
        c = ndimage.uniform_filter((labels == v).astype(np.float32), size=size, mode="nearest")
        counts[int(v)] = c
        own[labels == v] = c[labels == v]
    for v, c in counts.items():
        win = c > best + 1e-6
        out[win] = v
        best = np.maximum(best, c)
    keep = own >= best - 1e-6
    out[keep] = labels[keep]
    return out


# --------------------------------------------------------------------------- phantoms
def _truth_indices(truth: xr.Dataset, coords: dict) -> dict[str, np.ndarray]:
    """Index of each of ``coords``' z, y, x (µm) on the ground-truth grid."""
    index = {}
    for axis in ("z", "y", "x"):
        t = np.asarray(truth[axis].values, dtype=np.float64)
        c = np.asarray(coords[axis], dtype=np.float64)
        step = t[1] - t[0] if t.size > 1 else 1.0
        idx = np.rint((c - t[0]) / step).astype(int)
        if idx.min() < 0 or idx.max() >= t.size or np.abs(t[idx] - c).max() > 0.01 * abs(step):
            raise InputError("corrected volume coords are not on the ground-truth grid",
                             field=axis, expected="coords of the ground truth",
                             found=[float(c.min()), float(c.max())])
        index[axis] = idx
    return index


def registration_residual_px(truth: xr.Dataset, estimated_drift_px: np.ndarray,
                             coords: dict) -> np.ndarray:
    """Drift the registration left in each slice of the corrected volume, ``d_z - e_z`` px
    ((z, 2) dy, dx; d the true drift of the phantom, e the estimated one): the registered slice
    shows the truth shifted by it."""
    true = np.stack([np.asarray(truth["drift_dy_px"].values),
                     np.asarray(truth["drift_dx_px"].values)], axis=1)
    est = np.asarray(estimated_drift_px, dtype=np.float64)
    if est.shape != true.shape:
        raise InputError("drift table does not match the ground truth", field="drift",
                         expected=f"{true.shape[0]} slices", found=est.shape[0])
    return (true - est)[_truth_indices(truth, coords)["z"]]


def truth_in_registered_frame(truth: xr.Dataset, estimated_drift_px: np.ndarray,
                              coords: dict) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth labels in the registered frame and in the plain frame, both on ``coords``
    (corrected.zarr's z, y, x in µm).

    Registration shifted raw slice z by ``-e_z`` (e the estimated drift), the raw slice being
    the truth shifted by ``+d_z`` (``voxelyte.phantom.DRIFT_CONVENTION``): the registered slice
    shows the truth shifted by ``d_z - e_z`` (``registration_residual_px``). Each truth slice
    is shifted by that residual (nearest neighbour: the sub-pixel rest stays; voxels from
    outside the truth become 255 = not scored), then the corrected volume's coords are
    picked. Plain frame: the truth at the same coords, not shifted. Returns (registered-frame
    truth, plain-frame truth), uint8."""
    labels = np.asarray(truth["labels"].values)
    residual = registration_residual_px(truth, estimated_drift_px, coords)
    index = _truth_indices(truth, coords)
    reg = np.empty((index["z"].size, index["y"].size, index["x"].size), dtype=np.uint8)
    for i, z in enumerate(index["z"]):
        moved = ndimage.shift(labels[z], residual[i], order=0, mode="constant", cval=INVALID)
        reg[i] = moved[np.ix_(index["y"], index["x"])]
    plain = labels[np.ix_(index["z"], index["y"], index["x"])]
    return reg, plain


def phantom_scribbles(truth: np.ndarray, phases: dict, *, slice_fraction: float = 0.03,
                      strokes_per_class: int = 12, stroke_length_px: int = 80,
                      width_px: int = 3, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Sparse scribble annotations drawn from ground-truth labels (standing in for a user's
    napari strokes): on ``max(1, floor(slice_fraction * nz))`` evenly spread slices (seeded
    jitter), for each phase ``strokes_per_class`` strokes of at most ``stroke_length_px``
    pixels along the 2D medial axis (skeleton) of the phase, widened to ``width_px`` but kept
    inside the phase; truth voxels marked 255 (outside the scored frame) are never labelled.
    Class values are phase label + 1 (0 = unlabelled). Returns (annotations uint8, class table
    {name: {value, phase}})."""
    from skimage.morphology import skeletonize

    labels_of = phase_map(phases)
    nz = truth.shape[0]
    n_slices = max(1, int(math.floor(slice_fraction * nz)))
    rng = np.random.default_rng([int(seed), 21])
    edges = np.linspace(0, nz, n_slices + 1)
    zs = sorted({int(min(nz - 1, math.floor(a + rng.uniform(0.25, 0.75) * (b - a))))
                 for a, b in zip(edges[:-1], edges[1:])})
    ann = np.zeros(truth.shape, dtype=np.uint8)
    struct8 = np.ones((3, 3), dtype=bool)
    for z in zs:
        sl = truth[z]
        for name, lab in labels_of.items():
            mask = (sl == lab)
            if not mask.any():
                continue
            # two kinds of strokes, as a user draws them: along the middle of a region
            # (medial axis) and tracing its edge just inside (the phase's boundary pixels)
            inner_edge = mask & ~ndimage.binary_erosion(mask, border_value=1)
            n_mid = (strokes_per_class + 1) // 2
            for path, n_strokes in ((skeletonize(mask), n_mid),
                                    (inner_edge, strokes_per_class - n_mid)):
                comp, n = ndimage.label(path, structure=struct8)
                if n == 0 or n_strokes == 0:
                    continue
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
                    ann[z][stroke & (ann[z] == 0)] = lab + 1
    ann[truth == INVALID] = UNLABELLED
    return ann, phase_classes(phases)


def correction_strokes(annotations: np.ndarray, predicted: dict[int, np.ndarray],
                       truth: np.ndarray, phases: dict, *,
                       strokes_per_class: int = 12) -> np.ndarray:
    """A user's correction round on phantoms (the trainable-segmentation workflow of Fiji's
    Trainable Weka Segmentation or ilastik: train, look at the result, paint over what is
    wrong, train again): on each annotated slice z (``predicted[z]``: the first model's labels
    there), the ``strokes_per_class`` largest 8-connected patches where the labels differ
    from the truth are painted with their true phase (class = phase label + 1), per phase;
    voxels already annotated or outside the truth (255) are kept. No new slices are
    annotated. Returns the new annotations."""
    out = annotations.copy()
    struct8 = np.ones((3, 3), dtype=bool)
    for z, labels in predicted.items():
        tz = truth[z]
        wrong = (labels != tz) & (tz != INVALID) & (out[z] == UNLABELLED)
        for lab in phase_map(phases).values():
            comp, n = ndimage.label(wrong & (tz == lab), structure=struct8)
            if n == 0:
                continue
            sizes = np.bincount(comp.ravel())[1:]
            keep = np.zeros(n + 1, dtype=bool)
            keep[1 + np.argsort(-sizes, kind="stable")[:strokes_per_class]] = True
            out[z][keep[comp]] = lab + 1
    return out


def predict_slices(stack: xr.DataArray, model: TrainedModel, zs) -> dict[int, np.ndarray]:
    """Labels of single slices ``zs`` (each with its z context), {z: (Y, X) uint8}."""
    halo = halo_slices(model.params)
    out = {}
    for z in zs:
        z = int(z)
        labels, _ = _predict_chunk(stack.data, model, z, z + 1, halo)
        out[z] = labels[0]
    return out


def phantom_annotations(corrected, truth: np.ndarray, phases: dict, *, num_workers: int = 1,
                        sample=None, **params) -> tuple[np.ndarray, dict, dict]:
    """Annotations standing in for a user's on a phantom: ``phantom_scribbles`` from the truth
    (registered frame), then ``scribble_correction_rounds`` rounds of ``correction_strokes``
    (a forest trained on the annotations so far, its errors on the annotated slices painted
    over; ``scribble_strokes_per_class`` patches per phase and slice). Returns (annotations,
    class table {value: {name, phase, label}}, info)."""
    p = resolve_params(params)
    stack = _whole_slice_chunks(_pick_channels(_corrected_stack(corrected, sample),
                                               p["channels"], sample))
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


def score(labels: np.ndarray, truth: np.ndarray, phases: dict) -> dict:
    """IoU per phase, confusion matrix (rows truth, columns prediction; counts and row-
    normalised), volume fractions and their errors (percentage points) on the voxels where the
    truth is valid (!= 255)."""
    labels_of = phase_map(phases)
    names = sorted(labels_of, key=labels_of.get)
    k = max(labels_of.values()) + 1
    cm_full = np.zeros(k * k, dtype=np.int64)
    for z0 in range(0, truth.shape[0], 32):  # slab by slab: bounded memory for big volumes
        tz, pz = np.asarray(truth[z0:z0 + 32]), np.asarray(labels[z0:z0 + 32])
        valid = tz != INVALID
        cm_full += np.bincount(tz[valid].astype(np.int64) * k
                               + np.minimum(pz[valid], k - 1).astype(np.int64),
                               minlength=k * k)[:k * k]
    cm_full = cm_full.reshape(k, k)
    vals = [labels_of[n] for n in names]
    cm = cm_full[np.ix_(vals, vals)]
    n = int(cm_full.sum())
    iou, vf_pred, vf_true, vf_err = {}, {}, {}, {}
    for i, name in enumerate(names):
        tp = cm[i, i]
        union = cm[i, :].sum() + cm[:, i].sum() - tp
        iou[name] = float(tp / union) if union else float("nan")
        vf_true[name] = float(cm[i, :].sum() / n)
        vf_pred[name] = float(cm[:, i].sum() / n)
        vf_err[name] = 100.0 * (vf_pred[name] - vf_true[name])
    rows = cm.sum(axis=1, keepdims=True)
    return {"phases": names, "iou": iou, "confusion_matrix": cm.tolist(),
            "confusion_matrix_row_normalised": (cm / np.maximum(rows, 1)).round(6).tolist(),
            "volume_fraction_truth": vf_true, "volume_fraction_predicted": vf_pred,
            "volume_fraction_error_pp": vf_err, "voxels_scored": n}


def move_to_truth_grid(corrected: xr.Dataset, residual_px: np.ndarray, *, sample=None
                       ) -> tuple[xr.Dataset, np.ndarray]:
    """corrected.zarr's volume moved onto the ground-truth grid of a phantom: slice z of every
    channel shifted in-plane by ``-residual_px[z]`` (``registration_residual_px``; cubic
    spline, ``scipy.ndimage.shift`` order 3: the rendered images are blurred, i.e. nearly
    band-limited, so the resampling keeps their detail). Returns (the moved dataset, ``inside``
    (z, y, x) bool: voxels whose source lies wholly inside the image and is finite)."""
    stack = _corrected_stack(corrected, sample)
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
    """The segmentation's own accuracy on a phantom, the registration error taken out: the
    corrected volume is moved onto the ground-truth grid (``move_to_truth_grid``), annotated
    there as the workflow annotates phantoms (``phantom_annotations``, trainable) and
    segmented with the same settings (``segment``), then scored against the plain-frame truth
    (``truth_in_registered_frame``). Voxels moved in from outside the image are not scored.

    A registration leaves each slice offset from the truth's voxel grid by a random sub-pixel
    amount; the voxelised truth cannot be resampled onto such a grid without ambiguity at every
    boundary (on the demo's BM03, a constant half-pixel offset alone lowers the pore IoU of its
    1-2 voxel crevices from 0.868 to 0.787), so the labels are compared where the truth is
    exact. Returns (labels on the truth
    grid, the truth with ``INVALID`` outside, score dict with ``phantom_annotations``)."""
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


# --------------------------------------------------------------------------- the stage
def volume_fractions(labels: np.ndarray, phases: dict) -> dict:
    counts = np.bincount(labels.ravel(), minlength=256)
    return {name: float(counts[v] / labels.size) for name, v in phase_map(phases).items()}


def segment(corrected: xr.Dataset, *, phases: dict, annotations: np.ndarray | None = None,
            classes: dict | None = None, sample: str | None = None, num_workers: int = 1,
            **params) -> tuple[xr.Dataset, dict, TrainedModel | None]:
    """The segment stage: corrected.zarr's dataset -> (Dataset ``labels`` uint8 and
    ``confidence`` uint8 (z, y, x) with the corrected coords, info dict, trained model or None).

    ``annotations`` (uint8 (z, y, x), 0 unlabelled) and ``classes`` (value -> {name, phase,
    label}, ``class_table``) are needed by ``method: trainable``. ``params``: keys of
    ``SEGMENT_DEFAULTS``."""
    p = resolve_params(params)
    labels_of = phase_map(phases)
    stack = _pick_channels(_corrected_stack(corrected, sample), p["channels"], sample)
    voxel = volume_voxel_size_um(corrected)
    timings = {}
    info: dict = {"method": p["method"], "channels": _channel_names(stack)}
    model = None
    t0 = time.perf_counter()
    if p["method"] == "trainable":
        if annotations is None or not classes:
            raise InputError("trainable segmentation needs annotations", sample=sample,
                             field="annotations",
                             expected="an 'annotations' entry (path, format, classes) in the "
                                      "sample file, or stages.segment.method: unsupervised",
                             found=None)
        if annotations.shape != tuple(stack.shape[1:]):
            raise InputError("annotation shape does not match the corrected volume",
                             sample=sample, field="annotations",
                             expected=tuple(stack.shape[1:]), found=annotations.shape)
        per_class = check_annotations(annotations, classes, sample=sample)
        stack = _whole_slice_chunks(stack)
        model = train_classifier(stack, annotations, classes, p, n_jobs=num_workers)
        timings["train_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        labels, conf = predict(stack, model, chunk_z=int(p["chunk_z"]),
                               num_workers=num_workers)
        timings["predict_s"] = time.perf_counter() - t1
        info.update({
            "classes": {v["name"]: {"value": int(k), "phase": v["phase"]}
                        for k, v in classes.items()},
            "annotated_voxels": per_class,
            "annotated_slices": int(np.any(annotations != 0, axis=(1, 2)).sum()),
            "annotated_fraction": float(np.count_nonzero(annotations) / annotations.size),
            "training_voxels": model.n_training_voxels,
            "features": feature_names(model.channels, p),
            "feature_importance_top10": dict(sorted(model.feature_importance.items(),
                                                    key=lambda kv: -kv[1])[:10]),
            "forest": {k: p[k] for k in ("n_estimators", "max_depth", "min_samples_leaf",
                                         "class_weight", "seed")},
        })
    else:
        levels = None
        if p["unsupervised_level_trend"] == "linear":
            stack, levels = flatten_level_trend(stack, p, sample=sample)
        labels, conf, extra = unsupervised_segment(stack, phases, p, sample=sample)
        timings["threshold_s"] = time.perf_counter() - t0
        extra["level_trend"] = levels
        info["unsupervised"] = extra
        low, middle, high = (labels_of[n] for n in extra["phase_order_dark_to_bright"])
        if int(p["self_training_rounds"]) > 0:
            t1 = time.perf_counter()
            info["volume_fraction_thresholds"] = volume_fractions(labels, phases)
            labels, conf, model, rounds = self_train(
                _whole_slice_chunks(stack), labels, conf, phases, p, low=low, middle=middle,
                high=high, num_workers=num_workers)
            timings["self_training_s"] = time.perf_counter() - t1
            extra["self_training"] = {
                "rounds": rounds,
                "sandwiched_middle_voxels_after": int(rim_thickness(
                    labels, low=low, middle=middle, high=high).size),
                **{k: p[k] for k in ("self_training_slices", "self_training_voxels",
                                     "self_training_min_voxels_per_phase",
                                     "self_training_min_confidence",
                                     "self_training_skip_rim_px")}}
        before, t3 = labels, time.perf_counter()
        labels, extra["rim_fragments"] = remove_rim_fragments(
            labels, low=low, middle=middle, high=high,
            max_voxels=int(p["rim_fragment_max_voxels"]))
        moved = labels != before
        conf[moved] = 255 - conf[moved]    # at most 1 - p(middle)
        timings["rim_fragments_s"] = time.perf_counter() - t3
        extra["rim_fragments"]["max_voxels"] = int(p["rim_fragment_max_voxels"])
        log.info("rim fragments: %d pieces, %d voxels relabelled",
                 extra["rim_fragments"]["fragments"], extra["rim_fragments"]["voxels"])
    info["volume_fraction_raw"] = volume_fractions(labels, phases)

    t2 = time.perf_counter()
    min_vox = min_island_voxels(p["min_island_um3"], phases, voxel)
    names_of = {v: n for n, v in labels_of.items()}
    labels, islands = remove_small_islands(labels, min_vox)
    info["islands_removed"] = {names_of.get(k, str(k)): dict(v, min_voxels=min_vox[k])
                               for k, v in islands.items()}
    for name, v in info["islands_removed"].items():
        log.info("islands of %s below %d voxels: %d islands, %d voxels relabelled", name,
                 v["min_voxels"], v["islands"], v["voxels"])
    if p["smoothing"] != "none":
        before = labels
        labels = smooth_labels(labels, p["smoothing"], int(p["smoothing_radius_px"]))
        info["smoothing_changed_voxels"] = int(np.count_nonzero(before != labels))
        log.info("%s smoothing (r = %d px) changed %d voxels", p["smoothing"],
                 p["smoothing_radius_px"], info["smoothing_changed_voxels"])
    timings["postprocess_s"] = time.perf_counter() - t2
    info["volume_fraction"] = volume_fractions(labels, phases)
    info["timings_s"] = timings
    info["phase_map"] = labels_of

    coords = {d: stack.coords[d] for d in ("z", "y", "x")}
    ds = xr.Dataset(
        {"labels": (("z", "y", "x"), labels,
                    {"description": "phase label per voxel (uint8); phases: name -> label",
                     "phases": labels_of}),
         "confidence": (("z", "y", "x"), conf,
                        {"description": "certainty of the chosen phase, uint8: p = value / 255 "
                                        "(trainable: summed random-forest probability of the "
                                        "phase; unsupervised: the self-trained forest's, or "
                                        "a threshold-distance heuristic without "
                                        "self-training)"})},
        coords=coords,
        attrs={"phases": labels_of, "voxel_size_um": list(voxel), "method": p["method"],
               "sample": sample or corrected.attrs.get("sample", "")})
    for d in ("z", "y", "x"):
        ds[d].attrs["units"] = "um"
    chunk_z = int(p["chunk_z"])
    ds = ds.chunk({"z": chunk_z, "y": -1, "x": -1})
    return ds, info, model


# --------------------------------------------------------------------------- QC
def qc_figure(corrected: xr.Dataset, labels: xr.Dataset, info: dict, path, *,
              truth: np.ndarray | None = None) -> None:
    """QC figure (PNG): orthogonal slices (xy, xz, yz through the centre) of each channel and
    of the labels drawn over the first channel, per-phase volume fractions, confidence
    histogram. With ``truth``, the truth's central xy slice beside the labels'."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    stack = _corrected_stack(corrected)
    names = _channel_names(stack)
    lab = labels["labels"]
    conf = np.asarray(labels["confidence"].values)
    nz, ny, nx = lab.shape
    cuts = {"xy": dict(z=nz // 2), "xz": dict(y=ny // 2), "yz": dict(x=nx // 2)}
    phases = info["phase_map"]
    order = sorted(phases, key=phases.get)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    lut = np.zeros((256, 4))
    for i, name in enumerate(order):
        lut[phases[name]] = matplotlib.colors.to_rgba(colours[i % len(colours)], 0.45)
    n_rows = len(names) + 1 + (truth is not None)
    fig, axes = plt.subplots(n_rows, 4, figsize=(16, 3.6 * n_rows))
    for r, ch in enumerate(names):
        for c, (cut, sel) in enumerate(cuts.items()):
            img = np.asarray(stack.isel(channel=r, **sel).values, dtype=np.float32)
            axes[r, c].imshow(img, cmap="gray", interpolation="nearest", aspect="auto")
            axes[r, c].set_title(f"{ch} {cut}")
    first = names[0]
    for c, (cut, sel) in enumerate(cuts.items()):
        img = np.asarray(stack.isel(channel=0, **sel).values, dtype=np.float32)
        axes[len(names), c].imshow(img, cmap="gray", interpolation="nearest", aspect="auto")
        axes[len(names), c].imshow(lut[np.asarray(lab.isel(**sel).values)],
                                   interpolation="nearest", aspect="auto")
        axes[len(names), c].set_title(f"labels over {first} {cut}")
    if truth is not None:
        tz = truth[nz // 2].astype(np.int64)
        axes[-1, 0].imshow(lut[np.minimum(tz, 255)][..., :3], interpolation="nearest")
        axes[-1, 0].set_title("ground truth xy (registered frame)")
        axes[-1, 1].imshow(lut[np.asarray(lab.isel(z=nz // 2).values)][..., :3],
                           interpolation="nearest")
        axes[-1, 1].set_title("labels xy")
        err = (np.asarray(lab.isel(z=nz // 2).values) != truth[nz // 2]) \
            & (truth[nz // 2] != INVALID)
        axes[-1, 2].imshow(err, cmap="gray_r", interpolation="nearest")
        axes[-1, 2].set_title("misclassified xy")
        axes[-1, 3].axis("off")
    ax = axes[0, 3]
    vf = info["volume_fraction"]
    ax.bar(order, [vf[n] for n in order], color=[colours[i % 6] for i in range(len(order))])
    if "score_registered_frame" in info:
        tv = info["score_registered_frame"]["volume_fraction_truth"]
        ax.plot(order, [tv[n] for n in order], "k_", markersize=30, label="truth")
        ax.legend()
    ax.set_ylabel("volume fraction")
    ax.set_title("volume fractions")
    ax = axes[1, 3] if n_rows > 1 else axes[0, 3]
    ax.hist(conf.ravel() / 255.0, bins=50, range=(0, 1), color="0.4")
    ax.set_xlabel("confidence")
    ax.set_ylabel("voxels")
    ax.set_yscale("log")
    ax.set_title("confidence histogram")
    for r in range(2, n_rows - (truth is not None)):
        axes[r, 3].axis("off")
    fig.suptitle(f"segmentation ({info['method']})")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
