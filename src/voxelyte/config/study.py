"""Study and sample files: load, check cross-references, resolve paths and stage settings."""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxelyte.config.schema import load_schema, load_yaml, resolve_stages, validate
from voxelyte.errors import InputError
from voxelyte.ingest import FOLDER_FORMATS

#: Label convention of generated phantoms (voxelyte.phantom writes these labels).
PHANTOM_PHASES = {"pore": 0, "CAM": 1, "SE": 2}
PHANTOM_CHANNELS = ("BSE", "SE")
#: The ways a sample enters: image stacks, a segmented label volume, or a generated phantom.
ENTRIES = ("inputs", "labels", "phantom")


@dataclass
class Sample:
    """One validated sample: its config (defaults filled) plus resolved, derived values."""
    name: str
    source: Path                      # the sample file
    config: dict                      # validated sample file content, defaults filled
    inputs: list[dict]                # channels with absolute ``path`` (phantom: files to generate)
    voxel_size_um: dict | None        # sample-file voxel size per axis (None: from file metadata)
    stages: dict                      # merged stage parameters
    phantom: dict | None              # phantom parameters, or None for real data
    config_hash: str = ""
    labels: dict | None = None        # a label-volume entry: file spec with absolute ``path``
                                      # and ``values`` {file value: phase name}, else None

    @property
    def phases(self) -> dict:
        """The sample file's phase table.

        Returns
        -------
        dict
            ``{phase name: {label: int, role, sigma_*_S_cm, ...}}`` as validated (defaults
            filled); wrap it in :class:`voxelyte.contract.PhaseTable` for lookups.
        """
        return self.config["phases"]


@dataclass
class Study:
    name: str
    results_dir: Path
    config: dict
    samples: dict[str, Sample] = field(default_factory=dict)

    def sample_dir(self, sample: str) -> Path:
        """The results folder of one sample of the study.

        Parameters
        ----------
        sample : str
            Sample name (a key of ``samples``); the name is not checked.

        Returns
        -------
        Path
            ``results_dir / <study name> / <sample>``, where the stages write its artefacts.
        """
        return self.results_dir / self.name / sample

    @property
    def study_dir(self) -> Path:
        """The results folder of the study.

        Returns
        -------
        Path
            ``results_dir / <study name>``: holds one folder per sample and the study-level
            outputs.
        """
        return self.results_dir / self.name


def config_hash(data: Any) -> str:
    """sha256 of the canonical JSON of a config mapping.

    Parameters
    ----------
    data : any
        A config mapping; keys sorted, compact separators, non-JSON values as ``str``.

    Returns
    -------
    str
        Hexadecimal sha256 digest.
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- loading
def load_sample(path: str | Path, *, name: str | None = None, study_stages: dict | None = None,
                phantom_dir: str | Path | None = None, check_files: bool = True) -> Sample:
    """Load and validate one sample file.

    Parameters
    ----------
    path : str or Path
        The sample file; relative input paths are resolved against its folder.
    name : str, optional
        Sample name (default: the file's stem).
    study_stages : dict, optional
        The study's stage parameters (the sample file's ``stages`` win over them).
    phantom_dir : str or Path, optional
        Where a phantom sample's generated stacks go (required for phantom samples).
    check_files : bool
        Check that every input file or folder exists.

    Returns
    -------
    Sample
        The validated config (defaults filled), absolute inputs, voxel size, merged stage
        parameters, phantom parameters and the config hash (``resources`` are not hashed: they
        say where and how a rule runs, not what it computes). Problems raise InputError.
    """
    path = Path(path)
    name = name or path.stem
    source = str(path)
    raw = load_yaml(path, sample=name)
    user_stages = copy.deepcopy(raw.get("stages", {}))
    cfg = validate(raw, load_schema("sample"), source=source, sample=name)

    phantom = cfg.get("phantom")
    entries = [key for key in ENTRIES if cfg.get(key) is not None]
    if len(entries) != 1:
        raise InputError("give exactly one of 'inputs' (image stacks), 'labels' (a segmented "
                         "volume) or 'phantom' (generated)", sample=name, source=source,
                         field=entries[-1] if entries else "inputs",
                         expected="one of inputs, labels, phantom",
                         found=", ".join(entries) if entries else "none")

    _check_phases(cfg, name, source)
    _check_nominal(cfg, name, source)
    _check_crop(cfg, name, source)
    _check_annotations(cfg, name, source)
    labels = None
    if cfg.get("measured", {}).get("table"):
        cfg["measured"] = measured_from_table(cfg["measured"], base=path.parent, sample=name,
                                              source=source)

    if phantom is not None:
        if phantom_dir is None:
            raise ValueError(f"sample '{name}' is a phantom: load_sample needs phantom_dir")
        inputs = [{"name": ch, "format": "tiff", "path": Path(phantom_dir) / f"{ch}.tif",
                   "pattern": "*.tif*", "byte_order": "little", "header_bytes": 0}
                  for ch in PHANTOM_CHANNELS]
        voxel = {ax: phantom["voxel_size_um"] for ax in "zyx"}
        given = cfg.get("voxel_size_um", {})
        for ax, value in given.items():
            if abs(value - phantom["voxel_size_um"]) > 1e-9:
                raise InputError("a phantom's voxel size is set by phantom.voxel_size_um",
                                 sample=name, source=source, field=f"voxel_size_um.{ax}",
                                 expected=phantom["voxel_size_um"], found=value)
    elif "labels" in cfg:
        inputs, voxel = [], cfg.get("voxel_size_um") or None
        labels = _resolve_label_file(cfg, path.parent, name, source, check_files)
    else:
        inputs = _resolve_inputs(cfg["inputs"], path.parent, name, source, check_files)
        voxel = cfg.get("voxel_size_um") or None

    stages = resolve_stages(study_stages or {}, user_stages, source=source, sample=name)
    # resources say where and how a rule runs, not what it computes: not hashed (no rerun)
    hashed = {k: v for k, v in cfg.items() if k not in ("stages", "resources")}
    hashed["stages"] = stages
    return Sample(name=name, source=path, config=cfg, inputs=inputs, voxel_size_um=voxel,
                  stages=stages, phantom=phantom, config_hash=config_hash(hashed),
                  labels=labels)


def measured_from_table(measured: dict, *, base: Path, sample: str, source: str) -> dict:
    """The sample's measured values, filled from a literature table.

    Parameters
    ----------
    measured : dict
        The sample file's ``measured`` with ``table`` (YAML path, relative to ``base``) and
        ``entry``; values given next to them win over the table's.
    base : Path
        The sample file's folder.
    sample, source : str
        Named in errors.

    Returns
    -------
    dict
        ``measured`` without ``table`` / ``entry``, with the entry's values and ``reference``
        (the table's ``source`` unless given).
    """
    table_path = Path(measured["table"])
    table_path = table_path if table_path.is_absolute() else base / table_path
    table = load_yaml(table_path, sample=sample)
    entries = table.get("entries")
    if not isinstance(entries, dict) or measured["entry"] not in entries:
        raise InputError("entry not in the literature table", sample=sample, source=source,
                         field="measured.entry",
                         expected=f"one of {sorted(entries) if isinstance(entries, dict) else []}"
                                  f" in {table_path}", found=measured["entry"])
    given = {k: v for k, v in measured.items() if k not in ("table", "entry")}
    out = dict(entries[measured["entry"]], **given)
    if table.get("source") and "reference" not in given:
        out["reference"] = str(table["source"])
    schema = dict(load_schema("sample")["properties"]["measured"])
    validate(out, schema, source=str(table_path), sample=sample, fill_defaults=False)
    return out


def _check_phases(cfg: dict, name: str, source: str) -> None:
    seen: dict[int, str] = {}
    for phase, data in cfg["phases"].items():
        label = data["label"]
        if label in seen:
            raise InputError("two phases share one label value", sample=name, source=source,
                             field=f"phases.{phase}.label",
                             expected=f"a label other than {label} (used by '{seen[label]}')",
                             found=label)
        seen[label] = phase
    if cfg.get("phantom") is not None:
        found = {p: d["label"] for p, d in cfg["phases"].items()}
        if found != PHANTOM_PHASES:
            raise InputError("a phantom sample uses the phantom label convention", sample=name,
                             source=source, field="phases", expected=PHANTOM_PHASES, found=found)


def _check_nominal(cfg: dict, name: str, source: str) -> None:
    for kind in ("volume_fraction", "mass_fraction"):
        fractions = cfg.get("nominal_composition", {}).get(kind, {})
        for phase in fractions:
            if phase not in cfg["phases"]:
                raise InputError("fraction given for a phase not in the phase table", sample=name,
                                 source=source, field=f"nominal_composition.{kind}.{phase}",
                                 expected="one of " + ", ".join(cfg["phases"]), found=phase)
        total = sum(fractions.values())
        if total > 1.0 + 1e-6:
            raise InputError("fractions add up to more than 1", sample=name, source=source,
                             field=f"nominal_composition.{kind}", expected="a sum <= 1",
                             found=round(total, 6))


def _check_annotations(cfg: dict, name: str, source: str) -> None:
    """Annotation classes: unique values, phases from the phase table; not for phantoms (they
    get generated scribbles in the registered frame). The file itself is read by the segment
    stage (it may be drawn after the first run, on corrected.zarr)."""
    spec = cfg.get("annotations")
    if spec is None:
        return
    if cfg.get("phantom") is not None:
        raise InputError("a phantom sample gets generated scribble annotations", sample=name,
                         source=source, field="annotations",
                         expected="no 'annotations' for a phantom sample", found=spec["path"])
    seen: dict[int, str] = {}
    for cls, entry in spec["classes"].items():
        if entry["phase"] not in cfg["phases"]:
            raise InputError("class mapped to a phase not in the phase table", sample=name,
                             source=source, field=f"annotations.classes.{cls}.phase",
                             expected="one of " + ", ".join(cfg["phases"]), found=entry["phase"])
        if entry["value"] in seen:
            raise InputError("two classes share one value", sample=name, source=source,
                             field=f"annotations.classes.{cls}.value",
                             expected=f"a value other than {entry['value']} (used by "
                                      f"'{seen[entry['value']]}')", found=entry["value"])
        seen[entry["value"]] = cls


def _check_crop(cfg: dict, name: str, source: str) -> None:
    for axis, (start, stop) in cfg.get("crop", {}).items():
        if start >= stop:
            raise InputError("empty crop range", sample=name, source=source, field=f"crop.{axis}",
                             expected="[start, stop] with start < stop", found=[start, stop])


def _resolve_label_file(cfg: dict, base: Path, name: str, source: str,
                        check_files: bool) -> dict:
    """The sample's ``labels`` entry with an absolute path and ``values`` as {int: phase}."""
    spec = cfg["labels"]
    values = {}
    for key, phase in spec["values"].items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            value = -1
        if value < 0 or str(key).strip() != str(value):
            raise InputError("label file values must be non-negative integers", sample=name,
                             source=source, field=f"labels.values.{key}",
                             expected="an integer value of the label file", found=key)
        if phase not in cfg["phases"]:
            raise InputError("label file value maps to an unknown phase", sample=name,
                             source=source, field=f"labels.values.{key}",
                             expected=f"one of {sorted(cfg['phases'])}", found=phase)
        values[value] = phase
    resolved = _resolve_inputs([dict(spec, name="labels")], base, name, source, check_files,
                               field="labels")[0]
    resolved.pop("name")
    return dict(resolved, values=values)


def _resolve_inputs(channels: list[dict], base: Path, name: str, source: str,
                    check_files: bool, field: str = "inputs") -> list[dict]:
    resolved, names = [], set()
    for i, channel in enumerate(channels):
        where = f"{field}[{i}]" if field == "inputs" else field
        if channel["name"] in names:
            raise InputError("channel name used twice", sample=name, source=source,
                             field=f"{where}.name", expected="unique channel names",
                             found=channel["name"])
        names.add(channel["name"])
        fmt = channel["format"]
        if fmt == "hdf5" and "dataset" not in channel:
            raise InputError("an HDF5 input needs the dataset path inside the file", sample=name,
                             source=source, field=f"{where}.dataset")
        if fmt == "raw":
            for key in ("shape_zyx", "dtype"):
                if key not in channel:
                    raise InputError("a raw binary input needs its shape and dtype", sample=name,
                                     source=source, field=f"{where}.{key}")
        full = Path(channel["path"]).expanduser()
        full = full if full.is_absolute() else (base / full)
        full = Path(full.resolve())
        if check_files:
            want_dir = fmt in FOLDER_FORMATS
            ok = full.is_dir() if want_dir else full.is_file()
            if not ok:
                found = ("a file" if full.is_file() else "a folder" if full.is_dir()
                         else "nothing")
                raise InputError("input not found", sample=name, source=source,
                                 field=f"{where}.path",
                                 expected=f"an existing {'folder' if want_dir else 'file'} {full}",
                                 found=found)
        resolved.append(dict(channel, path=full))
    return resolved


def load_study(config: dict | str | Path, *, workdir: str | Path = ".",
               source: str = "config/config.yaml", check_files: bool = True) -> Study:
    """Validate a study config and load every sample file it names.

    Parameters
    ----------
    config : dict or str or Path
        The study config: a mapping (e.g. Snakemake's ``config``) or a YAML path.
    workdir : str or Path
        Relative paths (results folder, sample files) are relative to it.
    source : str
        File named in errors when ``config`` is a mapping.
    check_files : bool
        Check that every sample's input files exist.

    Returns
    -------
    Study
        The validated study with every :class:`Sample` loaded (phantom stacks go to
        ``<results_dir>/<study>/<sample>/phantom``).
    """
    workdir = Path(workdir)
    if isinstance(config, (str, Path)):
        source = str(config)
        config = load_yaml(config)
    cfg = validate(copy.deepcopy(config), load_schema("config"), source=source)
    # study-wide stage parameters: same schema as a sample's, checked without filling defaults
    definitions = load_schema("sample")["definitions"]
    wrapper = {"type": "object", "properties": {"stages": definitions["stages"]},
               "definitions": definitions}
    validate({"stages": copy.deepcopy(cfg["stages"])}, wrapper, source=source,
             fill_defaults=False)
    results_dir = Path(cfg["results_dir"])
    results_dir = results_dir if results_dir.is_absolute() else workdir / results_dir
    study = Study(name=cfg["study"], results_dir=results_dir, config=cfg)
    for name, sample_file in cfg["samples"].items():
        sample_path = Path(sample_file)
        sample_path = sample_path if sample_path.is_absolute() else workdir / sample_path
        if not sample_path.is_file():
            raise InputError("sample file not found", source=source, field=f"samples.{name}",
                             expected="an existing sample file", found=str(sample_path))
        study.samples[name] = load_sample(
            sample_path, name=name, study_stages=cfg["stages"],
            phantom_dir=study.sample_dir(name) / "phantom", check_files=check_files)
    return study
