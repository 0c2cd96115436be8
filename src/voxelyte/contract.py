"""The data contract every stage shares: axes, voxel sizes, the phase table, label arrays, volume
fractions, the channel-stack view, JSON conversion, atomic writers and the artefact registry.

Conventions (see the README's *Data contract*):

- Volumes are ``(z, y, x)``; multi-channel stacks ``(channel, z, y, x)``; lengths in µm.
- Labels are integer arrays, one value per phase; the phase table maps names to label values and
  material data (density g cm⁻³, ``sigma_electronic_S_cm``, ``sigma_ionic_S_cm``, ``role``).
- JSON: numpy values become Python values and **every non-finite float (NaN, ±inf) becomes
  ``null``**; a document says what a ``null`` means beside it (e.g. ``percolating: false`` next to
  a null tortuosity factor). Files are strict JSON (no ``Infinity`` literals).
- Every file or store is written to a temporary sibling and renamed into place, so a path only
  ever holds a complete artefact.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from voxelyte.errors import InputError

#: Array axes of a volume, in storage order.
AXES = ("z", "y", "x")
#: Phase roles: what a phase does in the cell (drives stage defaults, never the phase's name).
ROLES = ("active_material", "electrolyte", "pore", "binder", "infiltrant", "other")
#: Role of a phase whose table entry gives none, by its name (the demo's names).
_ROLE_BY_NAME = {"pore": "pore", "cam": "active_material", "se": "electrolyte",
                 "cbd": "binder", "binder": "binder"}
CONDUCTIVITY_KINDS = ("electronic", "ionic")


# --------------------------------------------------------------------------- axes and voxels
def axis_index(axis) -> int:
    """Index (0, 1, 2) of an axis given by name (``'z'``, ``'y'``, ``'x'``) or index.

    Parameters
    ----------
    axis : str or int
        Axis name or index.

    Returns
    -------
    int
        The axis index in ``AXES``.
    """
    if axis in AXES:
        return AXES.index(axis)
    if axis in (0, 1, 2):
        return int(axis)
    raise InputError("unknown axis", field="axis", expected="one of z, y, x", found=axis)


def voxel_size_um(voxel_size) -> tuple[float, float, float]:
    """Voxel size (dz, dy, dx) in µm, checked.

    Parameters
    ----------
    voxel_size : sequence of 3 numbers or dict {z, y, x}
        Voxel edge lengths in µm (anisotropic allowed).

    Returns
    -------
    tuple of float
        ``(dz, dy, dx)``, each finite and > 0.
    """
    if isinstance(voxel_size, dict):
        voxel_size = tuple(voxel_size.get(a) for a in AXES)
    try:
        v = tuple(float(s) for s in voxel_size)
    except (TypeError, ValueError):
        v = ()
    if len(v) != 3 or not all(math.isfinite(s) and s > 0 for s in v):
        raise InputError("voxel size must be three positive numbers (z, y, x) in µm",
                         field="voxel_size_um", expected="(dz, dy, dx) > 0", found=voxel_size)
    return v


def volume_voxel_size_um(volume, axes=AXES) -> tuple[float, ...]:
    """Voxel size (µm) along ``axes`` of a volume written by a voxelyte stage.

    Parameters
    ----------
    volume : xarray.DataArray or xarray.Dataset
        A stage's volume: its ``voxel_size_um`` attribute [vz, vy, vx], else the spacing of its µm
        coordinates.
    axes : sequence of str
        Axes to report.

    Returns
    -------
    tuple of float
        Voxel size in µm per requested axis; neither attribute nor coordinates raise InputError.
    """
    sizes = volume.attrs.get("voxel_size_um")
    if isinstance(sizes, (list, tuple, np.ndarray)) and len(sizes) == 3:
        return tuple(float(sizes[AXES.index(axis)]) for axis in axes)
    out = []
    for axis in axes:
        coord = volume.coords.get(axis)
        if coord is None or coord.size < 2:
            raise InputError("volume has no voxel size", field="voxel_size_um",
                             expected="attrs voxel_size_um [vz, vy, vx] or µm coords",
                             found=f"no attribute and no {axis} coordinate spacing")
        out.append(abs(float(coord[1] - coord[0])))
    return tuple(out)


def as_channel_stack(stack):
    """A ``(channel, z, y, x)`` view of an image stack.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` or a single ``(z, y, x)`` volume (one channel named "image").

    Returns
    -------
    xarray.DataArray
        Dimensions ``(channel, z, y, x)``; other dimensions raise InputError.
    """
    if stack.dims == ("z", "y", "x"):
        stack = stack.expand_dims(channel=["image"])
    if stack.dims != ("channel", "z", "y", "x"):
        raise InputError("stack has unexpected dimensions", field="dims",
                         expected="(channel, z, y, x) or (z, y, x)", found=stack.dims)
    return stack


# --------------------------------------------------------------------------- phase table
class PhaseTable(Mapping):
    """The sample's phases: name -> spec dict with an int ``label`` and material data.

    A read-only mapping (``table[name]["label"]``), built from the sample file's ``phases``
    (``{name: {label: int, ...}}`` or ``{name: int}``) and checked: non-empty, labels
    non-negative integers, unique.

    Parameters
    ----------
    phases : dict or PhaseTable
        The phase table of the sample file.
    """

    def __init__(self, phases):
        if isinstance(phases, PhaseTable):
            phases = phases._specs
        if not isinstance(phases, dict) or not phases:
            raise InputError("phase table is empty", field="phases",
                             expected="{name: {label: int, ...}}", found=phases)
        specs, seen = {}, {}
        for name, spec in phases.items():
            spec = spec if isinstance(spec, dict) else {"label": spec}
            label = spec.get("label")
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 0:
                raise InputError("phase label must be a non-negative integer",
                                 field=f"phases.{name}.label", expected="int >= 0", found=label)
            if int(label) in seen:
                raise InputError(f"label {label} used by phases '{seen[int(label)]}' and '{name}'",
                                 field=f"phases.{name}.label", expected="unique labels",
                                 found=label)
            seen[int(label)] = name
            specs[str(name)] = dict(spec, label=int(label))
        self._specs = specs

    def __getitem__(self, name):
        return self._specs[name]

    def __iter__(self):
        return iter(self._specs)

    def __len__(self):
        return len(self._specs)

    def __repr__(self):
        return f"PhaseTable({self._specs!r})"

    @property
    def labels(self) -> dict[str, int]:
        """Phase name -> label value."""
        return {name: spec["label"] for name, spec in self._specs.items()}

    def role(self, name: str) -> str:
        """The phase's role (``ROLES``): its ``role`` entry, else inferred from common names
        (pore, CAM, SE, CBD), else ``'other'``."""
        return self._specs[name].get("role") or _ROLE_BY_NAME.get(name.lower(), "other")

    def with_role(self, role: str) -> list[str]:
        """Names of the phases with this role, in table order."""
        return [name for name in self._specs if self.role(name) == role]

    def conductivities_S_cm(self, kind: str, *, sample: str | None = None) -> dict[str, float]:
        """Bulk conductivity (S cm⁻¹) of every phase for ``kind`` ('electronic' or 'ionic'),
        checked: present, finite and >= 0."""
        if kind not in CONDUCTIVITY_KINDS:
            raise InputError("unknown conduction kind", sample=sample, field="kind",
                             expected=" or ".join(CONDUCTIVITY_KINDS), found=kind)
        key = f"sigma_{kind}_S_cm"
        bulk = {}
        for name, spec in self._specs.items():
            value = spec.get(key)
            if value is None:
                raise InputError("phase conductivity missing", sample=sample,
                                 field=f"phases.{name}.{key}",
                                 expected="a conductivity in S cm⁻¹ (>= 0)", found=None)
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise InputError("phase conductivity must be finite and >= 0", sample=sample,
                                 field=f"phases.{name}.{key}", expected=">= 0 S cm⁻¹",
                                 found=value)
            bulk[name] = value
        return bulk

    def conductivity_lut(self, kind: str, *, size: int = 0, insulating_ratio: float = 0.0,
                         sample: str | None = None) -> np.ndarray:
        """Conductivity per label value (S cm⁻¹, float64) for ``kind``.

        Parameters
        ----------
        kind : {'electronic', 'ionic'}
        size : int
            Minimum length of the table (e.g. ``labels.max() + 1``).
        insulating_ratio : float
            Phases below ``insulating_ratio`` × the best conductor are set to 0 (insulating).
        sample : str, optional
            Named in errors.

        Returns
        -------
        numpy.ndarray
            ``lut[label] = σ``; label values of no phase hold 0.
        """
        bulk = self.conductivities_S_cm(kind, sample=sample)
        lut = np.zeros(max(int(size), max(self.labels.values()) + 1))
        for name, value in bulk.items():
            lut[self._specs[name]["label"]] = value
        top = lut.max(initial=0.0)
        if insulating_ratio:
            lut[lut < insulating_ratio * top] = 0.0
        return lut

    def check_labels(self, labels, *, sample: str | None = None) -> None:
        """Raise InputError if ``labels`` hold a value that no phase has."""
        unknown = np.setdiff1d(np.unique(np.asarray(labels)), list(self.labels.values()))
        if unknown.size:
            raise InputError("labels not in the phase table", sample=sample, field="phases",
                             expected=f"labels {sorted(self.labels.values())}",
                             found=unknown.tolist())

    def conductivity_field(self, labels, kind: str, *, floor_S_cm: float = 0.0,
                           insulating_ratio: float = 0.0, sample: str | None = None) -> np.ndarray:
        """Voxel conductivity σ(z, y, x) in S cm⁻¹ from labels (float64).

        Parameters
        ----------
        labels : array_like of int
        kind : {'electronic', 'ionic'}
        floor_S_cm : float
            Voxels below it (e.g. pore at 0) are raised to it.
        insulating_ratio : float
            See :meth:`conductivity_lut`.
        sample : str, optional

        Returns
        -------
        numpy.ndarray
        """
        lab = np.asarray(labels)
        lut = self.conductivity_lut(kind, size=int(lab.max(initial=0)) + 1,
                                    insulating_ratio=insulating_ratio, sample=sample)
        self.check_labels(lab, sample=sample)
        sigma = lut[lab]
        if floor_S_cm and floor_S_cm > 0:
            sigma = np.maximum(sigma, float(floor_S_cm))
        return sigma


def phase_table(phases) -> PhaseTable:
    """The checked :class:`PhaseTable` of a sample file's ``phases`` entry.

    Parameters
    ----------
    phases : dict or PhaseTable
        ``{name: {label: int, ...}}`` or ``{name: int}``; a PhaseTable is returned as it is.

    Returns
    -------
    PhaseTable
    """
    return phases if isinstance(phases, PhaseTable) else PhaseTable(phases)


# --------------------------------------------------------------------------- label arrays
def volume_shape(labels) -> tuple[int, int, int]:
    """Shape ``(nz, ny, nx)`` of a non-empty 3D array (numpy, dask or xarray).

    Parameters
    ----------
    labels : array_like
        The volume.

    Returns
    -------
    tuple of int
        ``(nz, ny, nx)``; anything but a non-empty 3D array raises InputError.
    """
    shape = tuple(int(s) for s in np.shape(labels)) if not hasattr(labels, "shape") \
        else tuple(int(s) for s in labels.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError("labels must be a non-empty 3D array (z, y, x)", field="labels",
                         expected="3 dimensions", found=shape)
    return shape


def label_data(labels):
    """The underlying numpy / dask array of numpy, dask or xarray integer labels (no copy).

    Parameters
    ----------
    labels : array_like of int
        numpy, dask or xarray labels.

    Returns
    -------
    numpy.ndarray or dask.array.Array
        The data, not loaded; a non-integer dtype raises InputError.
    """
    data = getattr(labels, "data", labels) if hasattr(labels, "dims") else labels
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.integer):
        raise InputError("labels must be an integer array", field="labels",
                         expected="integer dtype", found=str(data.dtype))
    return data


def load_labels(labels) -> np.ndarray:
    """Integer labels of numpy, dask or xarray input as one numpy array in memory.

    Parameters
    ----------
    labels : array_like of int
        numpy, dask or xarray labels.

    Returns
    -------
    numpy.ndarray
        The whole volume (numpy input is returned without a copy).
    """
    data = label_data(labels)
    return data if isinstance(data, np.ndarray) else np.asarray(data.compute()
                                                                if hasattr(data, "compute") else data)


def iter_blocks(labels, axis: int = 0, size: int = 64, start: int = 0, stop: int | None = None,
                step: int = 1):
    """Blocks of planes along one axis; dask / xarray input is read block by block.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    axis : int
        Axis index along which to cut blocks.
    size : int
        Planes per block (rounded down to a multiple of ``step``, at least ``step``).
    start, stop : int
        Plane range (``stop`` None: to the end).
    step : int
        Keep every step-th plane (block starts are multiples of ``step``).

    Yields
    ------
    tuple of (int, numpy.ndarray)
        ``(first index, numpy block)``.
    """
    data = label_data(labels)
    n = data.shape[axis] if stop is None else stop
    size = max(step, size - size % step)
    for a in range(start, n, size):
        b = min(a + size, n)
        index = [slice(None)] * 3
        index[axis] = slice(a, b, step)
        block = data[tuple(index)]
        if not isinstance(block, np.ndarray):
            block = np.asarray(block.compute() if hasattr(block, "compute") else block)
        yield a, block


def volume_fractions(labels, phases, *, slab_voxels: int = 64,
                     unassigned: bool = False) -> dict[str, float]:
    """Voxel-count volume fraction of every phase, φ_i = N_i / N.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray; read in slabs of ``slab_voxels`` planes.
    phases : dict or PhaseTable
        The sample's phase table.
    slab_voxels : int
        Planes read at a time (memory).
    unassigned : bool
        Add the key ``"unassigned"``: the fraction of voxels whose label is in no phase.

    Returns
    -------
    dict
        Phase name -> volume fraction. Label values of no phase count in N only.

    References
    ----------
    Minnmann et al., J. Electrochem. Soc. (2024): volume fractions by voxel counting.
    """
    table = phase_table(phases)
    shape = volume_shape(labels)
    counts = np.zeros(256, dtype=np.int64)
    for _, block in iter_blocks(labels, 0, slab_voxels):
        bc = np.bincount(block.ravel().astype(np.int64, copy=False))
        if bc.size > counts.size:
            counts = np.pad(counts, (0, bc.size - counts.size))
        counts[:bc.size] += bc
    total = float(math.prod(shape))
    out = {name: float(counts[spec["label"]] / total) if spec["label"] < counts.size else 0.0
           for name, spec in table.items()}
    if unassigned:
        out["unassigned"] = float(max(0.0, 1.0 - sum(out.values())))
    return out


def distance_um(mask: np.ndarray, voxel) -> np.ndarray:
    """Euclidean distance (µm) of each True voxel to the nearest False voxel.

    The box boundary is not background. Exact anisotropic EDT (``edt`` package).

    Parameters
    ----------
    mask : numpy.ndarray of bool, (z, y, x)
        The phase.
    voxel : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.

    Returns
    -------
    numpy.ndarray of float32
        Distance in µm (0 outside the mask). Without any background, every voxel holds the box
        extent (largest n · voxel size).

    References
    ----------
    Felzenszwalb & Huttenlocher 2012, Theory Comput. 8, 415 (distance transform).
    """
    import edt

    if mask.all():                       # no background at all: distance = the box extent
        return np.full(mask.shape, max(n * v for n, v in zip(mask.shape, voxel)), np.float32)
    return edt.edt(np.ascontiguousarray(mask), anisotropy=tuple(voxel), black_border=False,
                   parallel=1)


# --------------------------------------------------------------------------- JSON
def to_jsonable(value: Any) -> Any:
    """A strict-JSON copy of ``value``.

    Mappings -> dicts with str keys; lists, tuples and arrays -> lists; numpy scalars -> Python
    numbers; paths -> str; **non-finite floats (NaN, ±inf) -> None** (JSON ``null``); other
    objects -> ``str(value)``.

    Parameters
    ----------
    value : any
        The value to convert (recursively).

    Returns
    -------
    JSON-serialisable value
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


# --------------------------------------------------------------------------- atomic writers
def atomic_write(path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place.

    Parameters
    ----------
    path : str or Path
        The file to write (parent folders are created).
    write : callable
        Writes the file at the path it is given.

    Returns
    -------
    Path
        ``path``; on failure the temporary file is removed and ``path`` is unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(text: str, path) -> Path:
    """Write text (UTF-8) atomically (:func:`atomic_write`).

    Parameters
    ----------
    text : str
        The content.
    path : str or Path
        The file to write.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(data: Any, path) -> Path:
    """Write ``to_jsonable(data)`` as indented strict JSON atomically.

    Parameters
    ----------
    data : any
        Converted with :func:`to_jsonable` (non-finite floats -> ``null``).
    path : str or Path
        The file to write.

    Returns
    -------
    Path
        ``path``.
    """
    text = json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(text, path)


def write_zarr_atomic(ds, path, *, num_workers: int = 1) -> None:
    """Write an xarray Dataset to the zarr store ``path`` (consolidated metadata) atomically.

    ``path`` only ever holds a complete store: write into ``<path>.tmp-<random>``, then replace.
    Dask-backed variables are computed chunk by chunk with the threaded scheduler limited to
    ``num_workers``; their dask chunks define the zarr chunks, and the in-memory dtypes are
    written (encodings inherited from an opened store are dropped). On failure the temporary
    store is removed and nothing at ``path`` changes.

    Parameters
    ----------
    ds : xarray.Dataset
        The data to write.
    path : str or Path
        The store (a folder); an existing store or file there is replaced.
    num_workers : int
        Threads for dask and zarr.
    """
    import dask
    import zarr

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{secrets.token_hex(6)}")
    ds = ds.copy(deep=False)
    for variable in ds.variables.values():
        variable.encoding = {}
    try:
        with dask.config.set(scheduler="threads", num_workers=num_workers), \
                zarr.config.set({"threading.max_workers": num_workers}), \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not")
            ds.to_zarr(tmp, mode="w-", consolidated=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    elif final.exists() or final.is_symlink():
        final.unlink()
    os.replace(tmp, final)


def open_volume(path, *, sample: str | None = None):
    """Open a zarr volume store lazily (dask chunks = stored chunks).

    Parameters
    ----------
    path : str or Path
        The store (a folder).
    sample : str, optional
        Named in errors.

    Returns
    -------
    xarray.Dataset
        A missing or unreadable store raises InputError naming the path.
    """
    import xarray as xr

    store = Path(path)
    if not store.is_dir():
        raise InputError("volume store not found", sample=sample, source=str(store),
                         expected="a zarr store written by an earlier stage",
                         found="a file" if store.exists() else "nothing")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
            return xr.open_zarr(store, chunks={}, consolidated=None)
    except Exception as err:
        raise InputError(f"not a readable zarr store ({type(err).__name__}: {err})",
                         sample=sample, source=str(store),
                         expected="a zarr store written by an earlier stage",
                         found="a missing or corrupt store") from err


# --------------------------------------------------------------------------- artefact registry
@dataclass(frozen=True)
class Artefact:
    """One stage output: its path relative to the sample folder, the stage (rule) that writes it
    and, for zarr stores, the main variable."""

    path: str
    stage: str
    variable: str | None = None

    @property
    def is_store(self) -> bool:
        return self.path.endswith(".zarr")


#: Every per-sample artefact, by key. Rules declare their outputs from it and the report reads it.
ARTEFACTS: dict[str, Artefact] = {
    "phantom_bse": Artefact("phantom/BSE.tif", "phantom"),
    "phantom_se": Artefact("phantom/SE.tif", "phantom"),
    "ground_truth": Artefact("phantom/ground_truth.zarr", "phantom", "labels"),
    "phantom_summary": Artefact("phantom/phantom.json", "phantom"),
    "phantom_sample_file": Artefact("phantom/sample.yaml", "phantom"),
    "raw": Artefact("raw.zarr", "ingest", "raw"),
    "registered": Artefact("registered.zarr", "register", "registered"),
    "drift_table": Artefact("drift.csv", "register"),
    "drift_qc": Artefact("qc/drift.png", "register"),
    "corrected": Artefact("corrected.zarr", "preprocess", "corrected"),
    "labels": Artefact("labels.zarr", "segment", "labels"),
    "segmentation": Artefact("segment/segmentation.json", "segment"),
    "segment_qc": Artefact("segment/qc_segmentation.png", "segment"),
    "segment_model": Artefact("segment/model.skops", "segment"),
    "evaluation": Artefact("evaluate/evaluation.json", "evaluate"),
    "evaluation_qc": Artefact("evaluate/qc_evaluation.png", "evaluate"),
    "descriptors": Artefact("descriptors/descriptors.json", "descriptors"),
    "descriptor_tables": Artefact("descriptors", "descriptors"),
    "transport": Artefact("transport/transport.json", "transport"),
    "flux": Artefact("transport/flux.zarr", "transport", "flux"),
    "ssrm_map": Artefact("ssrm.zarr", "ssrm", "resistance_ohm"),
    "ssrm": Artefact("ssrm.json", "ssrm"),
    "report": Artefact("report.html", "report"),
    "report_summary": Artefact("report.json", "report"),
}


def artefact(key: str) -> Artefact:
    """The registered artefact ``key``.

    Parameters
    ----------
    key : str
        A key of ``ARTEFACTS``.

    Returns
    -------
    Artefact
        An unknown key raises KeyError naming the known keys.
    """
    try:
        return ARTEFACTS[key]
    except KeyError:
        raise KeyError(f"unknown artefact '{key}' (known: {', '.join(ARTEFACTS)})") from None


def artefact_path(sample_dir, key: str) -> Path:
    """Path of artefact ``key`` in a sample's results folder.

    Parameters
    ----------
    sample_dir : str or Path
        The sample's results folder.
    key : str
        A key of ``ARTEFACTS``.

    Returns
    -------
    Path
        ``sample_dir / artefact(key).path``.
    """
    return Path(sample_dir) / artefact(key).path
