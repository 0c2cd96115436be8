"""The JSON schemas of study and sample files: loading, validation with defaults, merging."""
from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from voxelyte.errors import InputError

SCHEMA_NAMES = ("config", "sample")


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
