"""Provenance records: what made an artefact, from which inputs, with which code and parameters.

One JSON record per rule run (``<sample>/provenance/<rule>.json``) holds the rule, the sha256 of
every input file (zarr stores and folders hash over their files in sorted order), the parameters,
the sample-config hash, voxelyte's version and git commit, key package versions and the UTC time.
Zarr artefacts carry the same record in their attributes. :func:`gather` joins all records of a
study, with Snakemake's per-rule benchmark figures (time, memory), into one ``provenance.json``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import __version__
from .contract import to_jsonable, write_json_atomic

KEY_PACKAGES = ("numpy", "scipy", "scikit-image", "porespy", "edt", "xarray", "zarr", "dask",
                "tifffile", "h5py", "scikit-learn", "matplotlib", "snakemake", "pyyaml")
_CHUNK_BYTES = 1 << 22


def sha256_file(path: str | Path) -> str:
    """sha256 of one file's content, read in 4 MiB blocks.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a folder (e.g. a zarr store).

    A folder hashes every file's relative path and content in sorted order, so the same tree
    always gives the same hash.

    Parameters
    ----------
    path : str or Path
        A file or folder; anything else raises FileNotFoundError.

    Returns
    -------
    str
        Hexadecimal digest.
    """
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise FileNotFoundError(f"cannot hash {path}: no such file or folder")
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(file)))
    return digest.hexdigest()


def package_versions(names: Iterable[str] = KEY_PACKAGES) -> dict[str, str]:
    """Versions of Python and of the given packages.

    Parameters
    ----------
    names : iterable of str
        Distribution names (default ``KEY_PACKAGES``).

    Returns
    -------
    dict
        ``"python"`` and each name -> version string (``"not installed"`` when absent).
    """
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_state(repo_dir: str | Path | None = None) -> dict[str, Any]:
    """Commit hash and whether the work tree has uncommitted changes.

    Parameters
    ----------
    repo_dir : str or Path, optional
        The repository (default: the one holding this package's source).

    Returns
    -------
    dict
        ``{"commit": str, "dirty": bool}``; both None if not a git repo (or git is missing).
        Untracked files do not count as changes.
    """
    repo_dir = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo_dir), *args], capture_output=True,
                                  text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def make_record(*, rule: str, sample: str | None, inputs: Mapping[str, Any] | Iterable[Any],
                outputs: Iterable[Any], params: Mapping[str, Any] | None = None,
                config_hash: str | None = None, repo_dir: str | Path | None = None) -> dict:
    """A provenance record for one rule run.

    Parameters
    ----------
    rule : str
        The rule name.
    sample : str or None
        The sample wildcard (None for study-wide rules).
    inputs : mapping or iterable
        Names -> paths (a value may be a list of paths), or a list of paths; each is hashed with
        :func:`sha256_path`.
    outputs : iterable
        Output paths (recorded, not hashed).
    params : mapping, optional
        The rule's parameters (converted with :func:`to_jsonable`).
    config_hash : str, optional
        sha256 of the part of the sample config the rule reads (recorded as
        ``sample_config_sha256``).
    repo_dir : str or Path, optional
        Repository for :func:`git_state`.

    Returns
    -------
    dict
        rule, sample, inputs (name, path, sha256), outputs, params, sample_config_sha256,
        voxelyte_version, git, packages, host and created_utc (UTC, ISO 8601).
    """
    items = inputs.items() if isinstance(inputs, Mapping) else ((str(p), p) for p in inputs)
    hashed = []
    for name, value in items:
        for path in (value if isinstance(value, (list, tuple)) else [value]):
            hashed.append({"name": name, "path": str(path), "sha256": sha256_path(path)})
    return {
        "rule": rule,
        "sample": sample,
        "inputs": hashed,
        "outputs": [str(p) for p in outputs],
        "params": to_jsonable(params or {}),
        "sample_config_sha256": config_hash,
        "voxelyte_version": __version__,
        "git": git_state(repo_dir),
        "packages": package_versions(),
        "host": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def read_benchmark(path: str | Path) -> dict[str, Any] | None:
    """Snakemake's benchmark TSV (one row per repeat) as a dict of the first row, numbers parsed.

    Parameters
    ----------
    path : str or Path
        The benchmark file.

    Returns
    -------
    dict or None
        Column -> value (float where it parses); None for a missing or empty file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return None
    out: dict[str, Any] = {}
    for key, value in rows[0].items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            out[key] = value
    return out


def gather(records: Iterable[str | Path], benchmarks: Mapping[str, str | Path], *, study: str,
           out_path: str | Path, study_config: Mapping[str, Any] | None = None,
           samples: Mapping[str, Any] | None = None) -> dict:
    """Join per-rule records and benchmark figures of a study into one document.

    Parameters
    ----------
    records : iterable of str or Path
        The per-rule provenance JSON files.
    benchmarks : mapping
        ``{"<rule>/<sample>": tsv path}`` (:func:`read_benchmark`).
    study : str
        The study name.
    out_path : str or Path
        Where the document is written atomically.
    study_config : mapping, optional
        The validated study config.
    samples : mapping, optional
        Per sample its file and the sha256 of its whole validated config.

    Returns
    -------
    dict
        The document written: study, study_config, samples, voxelyte_version, git, packages,
        created_utc and the runs (each with its ``benchmark``), sorted by sample and rule.
    """
    runs = [json.loads(Path(p).read_text()) for p in records]
    figures = {key: read_benchmark(path) for key, path in benchmarks.items()}
    for run in runs:
        run["benchmark"] = figures.get(f"{run['rule']}/{run['sample']}")
    doc = {
        "study": study,
        "study_config": to_jsonable(study_config or {}),
        "samples": to_jsonable(samples or {}),
        "voxelyte_version": __version__,
        "git": git_state(),
        "packages": package_versions(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runs": sorted(runs, key=lambda r: (str(r.get("sample")), r["rule"])),
    }
    write_json_atomic(doc, out_path)
    return doc
