"""Study and sample configuration: load, validate against the JSON schemas, fill defaults.

A study config (``config/config.yaml``) names the study, where results go, and its samples
(name -> sample file). A sample file (``config/samples/<name>.yaml``) describes one sample.
Stage parameters merge as: schema defaults < study ``stages`` < sample ``stages``.

Every problem raises :class:`voxelyte.errors.InputError` naming the file and the field, with what
was expected and what was found.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import InputError
from .ingest import FOLDER_FORMATS

SCHEMA_NAMES = ("config", "sample")
#: Label convention of generated phantoms (voxelyte.phantom writes these labels).
PHANTOM_PHASES = {"pore": 0, "CAM": 1, "SE": 2}
PHANTOM_CHANNELS = ("BSE", "SE")


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    """The JSON schema ``<name>.schema.yaml`` shipped with the package (also in workflow/schemas).

    Parameters
    ----------
    name : str
        Schema name, one of ``SCHEMA_NAMES`` (``'config'`` or ``'sample'``).

    Returns
    -------
    dict
        The parsed schema (cached; do not modify). An unknown name raises KeyError.
    """
    if name not in SCHEMA_NAMES:
        raise KeyError(f"unknown schema {name!r}; known: {SCHEMA_NAMES}")
    text = resources.files("voxelyte").joinpath("schemas", f"{name}.schema.yaml").read_text()
    return yaml.safe_load(text)


def schema_path(name: str) -> Path:
    """Filesystem path of a packaged schema (for Snakemake's ``validate``).

    Parameters
    ----------
    name : str
        Schema name, e.g. ``'config'`` or ``'sample'``.

    Returns
    -------
    Path
        Path of ``schemas/<name>.schema.yaml`` inside the installed package.
    """
    return Path(str(resources.files("voxelyte").joinpath("schemas", f"{name}.schema.yaml")))


# --------------------------------------------------------------------------- validation
def _with_defaults(validator_class):
    """A validator class that fills ``default`` values of absent properties while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_FILLING_VALIDATOR = _with_defaults(jsonschema.Draft7Validator)


def _describe_expected(error: jsonschema.ValidationError) -> str:
    """Human wording of what the schema wanted at the failing field."""
    kind, value, schema = error.validator, error.validator_value, error.schema
    if kind == "type":
        return f"a value of type {value}"
    if kind == "enum":
        return "one of " + ", ".join(repr(v) for v in value)
    if kind == "const":
        return repr(value)
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bounds = []
        if "minimum" in schema:
            bounds.append(f">= {schema['minimum']}")
        if "exclusiveMinimum" in schema:
            bounds.append(f"> {schema['exclusiveMinimum']}")
        if "maximum" in schema:
            bounds.append(f"<= {schema['maximum']}")
        if "exclusiveMaximum" in schema:
            bounds.append(f"< {schema['exclusiveMaximum']}")
        return "a number " + " and ".join(bounds)
    if kind in ("minItems", "maxItems"):
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        count = f"{lo}" if lo == hi else f"{lo or 0}..{hi if hi is not None else 'any'}"
        return f"a list of {count} items"
    if kind == "minLength":
        return "a non-empty text"
    if kind == "minProperties":
        return f"at least {value} entries"
    if kind == "pattern":
        return f"text matching {value}"
    if kind == "oneOf":
        forms = []
        for sub in value:
            if "const" in sub:
                forms.append(repr(sub["const"]))
            elif sub.get("type") == "number" and ("minimum" in sub or "maximum" in sub):
                forms.append(f"a number in [{sub.get('minimum', '-inf')}, {sub.get('maximum', 'inf')}]")
            else:
                forms.append(f"a value of type {sub.get('type', 'any')}")
        return " or ".join(forms)
    return error.message


def _field_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


def validate(instance: Any, schema: dict, *, source: str, sample: str | None = None,
             fill_defaults: bool = True) -> Any:
    """Validate ``instance`` against ``schema``, filling defaults in place when asked.

    Parameters
    ----------
    instance : any
        The data to check (e.g. a loaded YAML mapping); modified in place when filling defaults.
    schema : dict
        A Draft-7 JSON schema.
    source : str
        File the data came from, named in errors.
    sample : str, optional
        Sample name, named in errors.
    fill_defaults : bool
        Fill the ``default`` of every absent property while validating.

    Returns
    -------
    any
        ``instance`` (defaults filled). The first failing field raises one :class:`InputError`
        naming ``source`` and the field, with what was expected and what was found.
    """
    validator_class = _FILLING_VALIDATOR if fill_defaults else jsonschema.Draft7Validator
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(instance))
    if error is None:
        return instance
    while error.parent is not None and error.parent.validator in ("oneOf", "anyOf"):
        error = error.parent  # name every allowed form, not just the closest one
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        key = unknown[0] if unknown else "?"
        raise InputError(f"unknown key '{key}'", sample=sample, source=source,
                         field=_field_path(path + [key]),
                         expected="one of " + ", ".join(allowed) if allowed else "no keys",
                         found=key)
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        raise InputError("required field is missing", sample=sample, source=source,
                         field=_field_path(path + [missing]))
    if error.validator == "propertyNames":
        raise InputError("invalid name", sample=sample, source=source, field=_field_path(path),
                         expected=_describe_expected(error.context[0]) if error.context else "a valid name",
                         found=error.instance)
    raise InputError("invalid value", sample=sample, source=source, field=_field_path(path),
                     expected=_describe_expected(error), found=error.instance)


def load_yaml(path: str | Path, *, sample: str | None = None) -> dict:
    """Read a YAML mapping.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    sample : str, optional
        Sample name, named in errors.

    Returns
    -------
    dict
        The mapping (an empty file gives ``{}``). A missing file, bad syntax or a non-mapping
        raise InputError.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", sample=sample, source=str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", sample=sample, source=str(path)) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("top level must be a mapping", sample=sample, source=str(path),
                         expected="a mapping of keys", found=type(data).__name__)
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged in recursively (override wins).

    Parameters
    ----------
    base : dict
        The mapping to start from (not modified).
    override : dict
        Values that replace those of ``base``; nested mappings are merged key by key.

    Returns
    -------
    dict
        A deep copy holding the merged values.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_defaults() -> dict:
    """Every stage's parameters with only schema defaults.

    Returns
    -------
    dict
        Stage name -> parameters, as :func:`resolve_stages` gives them for empty input.
    """
    return resolve_stages({}, {}, source="<defaults>")


def phantom_schema() -> dict:
    """The schema of a sample file's ``phantom`` section, standalone.

    Returns
    -------
    dict
        The ``phantom`` definition of the sample schema with the schema's ``definitions``.
    """
    definitions = load_schema("sample")["definitions"]
    return dict(definitions["phantom"], definitions=definitions)


def phantom_defaults() -> dict:
    """Phantom parameters with only schema defaults.

    Returns
    -------
    dict
        The ``phantom`` section as validation fills it from an empty mapping.
    """
    return validate({}, phantom_schema(), source="<defaults>")


def resolve_stages(study_stages: dict, sample_stages: dict, *, source: str,
                   sample: str | None = None) -> dict:
    """Merge study and sample stage parameters over the schema defaults and validate the result.

    Order of precedence: schema defaults < ``study_stages`` < ``sample_stages``.

    Parameters
    ----------
    study_stages : dict
        The study config's ``stages``.
    sample_stages : dict
        The sample file's ``stages``.
    source : str
        File named in errors.
    sample : str, optional
        Sample name, named in errors.

    Returns
    -------
    dict
        Stage name -> validated parameters, every stage present, defaults filled.
    """
    definitions = load_schema("sample")["definitions"]
    schema = dict(definitions["stages"], definitions=definitions)
    merged = deep_merge(study_stages, sample_stages)
    for stage in schema["properties"]:
        merged.setdefault(stage, {})
    return validate(merged, schema, source=source, sample=sample)


# --------------------------------------------------------------------------- data classes
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

    @property
    def phases(self) -> dict:
        return self.config["phases"]


@dataclass
class Study:
    name: str
    results_dir: Path
    config: dict
    samples: dict[str, Sample] = field(default_factory=dict)

    def sample_dir(self, sample: str) -> Path:
        return self.results_dir / self.name / sample

    @property
    def study_dir(self) -> Path:
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
    if phantom is not None and "inputs" in cfg:
        raise InputError("give either 'inputs' (real data) or 'phantom' (generated), not both",
                         sample=name, source=source, field="inputs")
    if phantom is None and "inputs" not in cfg:
        raise InputError("required field is missing (or give 'phantom' to generate the stack)",
                         sample=name, source=source, field="inputs")

    _check_phases(cfg, name, source)
    _check_nominal(cfg, name, source)
    _check_crop(cfg, name, source)
    _check_annotations(cfg, name, source)
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
    else:
        inputs = _resolve_inputs(cfg["inputs"], path.parent, name, source, check_files)
        voxel = cfg.get("voxel_size_um") or None

    stages = resolve_stages(study_stages or {}, user_stages, source=source, sample=name)
    # resources say where and how a rule runs, not what it computes: not hashed (no rerun)
    hashed = {k: v for k, v in cfg.items() if k not in ("stages", "resources")}
    hashed["stages"] = stages
    return Sample(name=name, source=path, config=cfg, inputs=inputs, voxel_size_um=voxel,
                  stages=stages, phantom=phantom, config_hash=config_hash(hashed))


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


def _resolve_inputs(channels: list[dict], base: Path, name: str, source: str,
                    check_files: bool) -> list[dict]:
    resolved, names = [], set()
    for i, channel in enumerate(channels):
        where = f"inputs[{i}]"
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
