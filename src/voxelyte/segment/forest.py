"""The random forest of the trainable segmentation: train on annotated voxels, predict chunk-wise
over z, save and load (skops, trusted types only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from voxelyte.contract import atomic_write, write_json_atomic
from voxelyte.errors import InputError
from voxelyte.segment.features import (FEATURE_KEYS, feature_names, halo_slices, read_slab,
                                       slab_features)
from voxelyte.segment.settings import UNLABELLED, channel_names

#: Budget of one prediction task's float32 feature stack (GB): large slices get fewer slices per
#: task (``prediction_slices``), so segmentation memory does not grow with the slice size.
MAX_FEATURE_GB = 1.0
#: Types a saved model may contain (skops.io.load refuses anything else).
TRUSTED_MODEL_TYPES = (
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.int64", "numpy.intp",
    "builtins.dict", "builtins.list", "builtins.str", "builtins.int", "builtins.float",
)


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
        """(n_classes, n_phases) 0/1: phase probability = class probabilities @ M.

        Returns
        -------
        numpy.ndarray
            float32 (len(class_values), len(phase_labels)): row i holds a single 1 in the
            column of ``class_labels[i]`` within ``phase_labels``, so annotation classes of one
            phase add up to that phase's probability.
        """
        m = np.zeros((len(self.class_values), len(self.phase_labels)), dtype=np.float32)
        for i, lab in enumerate(self.class_labels):
            m[i, self.phase_labels.index(lab)] = 1.0
        return m


def _training_set(data, annotations: np.ndarray, table: dict, p: dict):
    """Features and class values of the annotated voxels, at most ``max_training_voxels`` drawn
    per class in proportion to the class counts (every class keeps >= 1 %)."""
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
        slab, lead = read_slab(data, int(z), int(z) + 1, halo)
        f = slab_features(slab, p, lead, 1)[0]
        ann = annotations[z]
        for v, frac in keep_fraction.items():
            idx = np.flatnonzero(ann.ravel() == v)
            if frac < 1.0:
                idx = idx[rng.random(idx.size) < frac]
            X.append(f.reshape(-1, f.shape[-1])[idx])
            y.append(np.full(idx.size, v, dtype=np.uint8))
    return np.concatenate(X), np.concatenate(y)


def train_classifier(stack: xr.DataArray, annotations: np.ndarray, table: dict, p: dict,
                     *, n_jobs: int = 1) -> TrainedModel:
    """Fit a random forest on the features of the annotated voxels (annotation != 0).

    Only the annotated slices' features are computed; at most ``max_training_voxels`` voxels,
    drawn per class in proportion to the class counts with the seed (every class keeps >= 1 %).

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.
    annotations : numpy.ndarray
        uint8 ``(z, y, x)``, 0 = unlabelled.
    table : dict
        Class table ``{value: {name, phase, label}}`` (:func:`class_table`).
    p : dict
        Segment settings.
    n_jobs : int
        Threads of the fit.

    Returns
    -------
    TrainedModel

    References
    ----------
    Breiman, Mach. Learn. 45, 5 (2001): random forests. Arganda-Carreras et al.,
    Bioinformatics 33, 2424 (2017): trainable segmentation.
    """
    from sklearn.ensemble import RandomForestClassifier

    X, y = _training_set(stack.data, annotations, table, p)
    forest = RandomForestClassifier(
        n_estimators=int(p["n_estimators"]), max_depth=p["max_depth"],
        min_samples_leaf=int(p["min_samples_leaf"]), max_features="sqrt",
        class_weight=p["class_weight"], random_state=int(p["seed"]), n_jobs=n_jobs)
    forest.fit(X, y)
    forest.set_params(n_jobs=1)  # prediction parallelises over chunks instead
    class_values = [int(v) for v in forest.classes_]
    class_labels = [table[v]["label"] for v in class_values]
    phase_labels = sorted(set(class_labels))
    names = feature_names(channel_names(stack), p)
    importance = {n: float(w) for n, w in zip(names, forest.feature_importances_)}
    return TrainedModel(
        forest=forest, class_values=class_values, class_labels=class_labels,
        phase_labels=phase_labels, channels=channel_names(stack),
        params={k: p[k] for k in FEATURE_KEYS},
        n_training_voxels={table[v]["name"]: int((y == v).sum()) for v in class_values},
        feature_importance=importance)


def _predict_chunk(data, model: TrainedModel, z0: int, z1: int, halo: int):
    slab, lead = read_slab(data, z0, z1, halo)
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
    """Slices per prediction task.

    Parameters
    ----------
    chunk_z : int
        Slices wanted per task.
    shape_yx : tuple of int
        Slice shape.
    n_features : int
        Feature columns.
    max_feature_gb : float
        Budget of one task's float32 feature stack (slices x Y x X x features x 4 B).

    Returns
    -------
    int
        ``chunk_z``, fewer where the budget would be exceeded (at least one slice).
    """
    per_slice_gb = shape_yx[0] * shape_yx[1] * n_features * 4 / 1e9
    return max(1, min(int(chunk_z), int(max_feature_gb // per_slice_gb) if per_slice_gb else
                      int(chunk_z)))


def predict(stack: xr.DataArray, model: TrainedModel, *, chunk_z: int = 16, num_workers: int = 1,
            max_feature_gb: float = MAX_FEATURE_GB) -> tuple[np.ndarray, np.ndarray]:
    """Apply a trained model chunk-wise over z (dask delayed tasks on ``num_workers`` threads).

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.
    model : TrainedModel
    chunk_z : int
        Slices per task (fewer where the feature budget demands: :func:`prediction_slices`).
    num_workers : int
    max_feature_gb : float

    Returns
    -------
    labels : numpy.ndarray
        uint8 ``(z, y, x)``: the phase of highest summed class probability.
    confidence : numpy.ndarray
        uint8 ``round(255 p)``, p that probability.
    """
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


def predict_slices(stack: xr.DataArray, model: TrainedModel, zs) -> dict[int, np.ndarray]:
    """Labels of single slices, each with its z context.

    Parameters
    ----------
    stack : xarray.DataArray
    model : TrainedModel
    zs : iterable of int

    Returns
    -------
    dict
        ``{z: (Y, X) uint8}``.
    """
    halo = halo_slices(model.params)
    out = {}
    for z in zs:
        z = int(z)
        labels, _ = _predict_chunk(stack.data, model, z, z + 1, halo)
        out[z] = labels[0]
    return out


def save_model(model: TrainedModel, path) -> None:
    """Save a model with skops (a zip of JSON schema + numpy arrays, no pickled objects).

    Parameters
    ----------
    model : TrainedModel
    path : str or Path
        The forest; its metadata (classes, channels, feature parameters) go to the JSON
        sidecar ``<path>.json``.

    Returns
    -------
    None
    """
    import skops.io as sio

    atomic_write(path, lambda tmp: sio.dump(model.forest, tmp))
    meta = {"format": "skops", "class_values": model.class_values,
            "class_labels": model.class_labels, "phase_labels": model.phase_labels,
            "channels": model.channels, "params": model.params,
            "n_training_voxels": model.n_training_voxels}
    write_json_atomic(meta, str(path) + ".json")


def save_thresholds(thresholds: dict, path) -> None:
    """Save the unsupervised "model", its thresholds, in the skops format of a forest.

    Parameters
    ----------
    thresholds : dict
        Numbers and text (the ``unsupervised`` info of the stage).
    path : str or Path

    Returns
    -------
    None
    """
    import skops.io as sio

    atomic_write(path, lambda tmp: sio.dump({"method": "unsupervised", **thresholds}, tmp))


def load_model(path) -> TrainedModel:
    """Load a model written by :func:`save_model`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    TrainedModel
        Only the types in ``TRUSTED_MODEL_TYPES`` are accepted; anything else raises
        InputError and nothing is executed.
    """
    import json

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
