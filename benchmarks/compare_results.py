"""Compare two result trees (e.g. the demo study before and after a refactor).

Every zarr store's arrays are compared bit for bit (values, dtype, shape; NaN equal to NaN), every
JSON document number by number, every CSV cell by cell. Run times, timestamps, provenance
hashes of code and host facts are left out (they differ between any two runs). Prints each
difference and a count; exits 1 when anything differs.

    python benchmarks/compare_results.py results_before/demo results/demo
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

#: JSON keys whose values differ between any two runs (times, dates, hashes of code and host).
VOLATILE_KEY = re.compile(
    r"(^|_)(time|times|timings?|seconds|created|date|now|host|git|packages|commit|dirty|"
    r"voxelyte_version|sha256|config_sha256|duration|elapsed|wall)(_|$)|_s$|^s$|time_s|"
    r"timings_s|max_rss|cpu_time|io_in|io_out|mean_load|h:m:s", re.IGNORECASE)
#: Files that carry no numbers of the science (figures, logs, pages, benchmark tables, models).
SKIP_SUFFIXES = {".png", ".jpg", ".html", ".log", ".tsv", ".skops", ".tif", ".yaml"}


def _compare_json(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if VOLATILE_KEY.search(str(a.get("name", ""))) and a.get("name") == b.get("name"):
            return                # a named entry of a table that is a time (report key numbers)
        for key in sorted(set(a) | set(b), key=str):
            if VOLATILE_KEY.search(str(key)):
                continue
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key in b else 'before'}")
                continue
            _compare_json(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: list length {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            _compare_json(x, y, f"{where}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif a != b or type(a) is not type(b) and not (isinstance(a, (int, float))
                                                    and isinstance(b, (int, float))):
        out.append(f"{where}: {a!r} vs {b!r}")


def _load_json(path: Path):
    return json.loads(path.read_text(), parse_constant=lambda c: float(c))


def _compare_store(a: Path, b: Path, where: str, out: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        da, db = xr.open_zarr(a, chunks=None), xr.open_zarr(b, chunks=None)
    _compare_datasets(da, db, where, out)


def _compare_datasets(da, db, where: str, out: list[str]) -> None:
    names_a, names_b = set(da.variables), set(db.variables)
    for name in sorted(names_a ^ names_b):
        out.append(f"{where}:{name}: only in {'after' if name in names_b else 'before'}")
    for name in sorted(n for n in names_a & names_b if not VOLATILE_KEY.search(str(n))):
        x, y = np.asarray(da[name].values), np.asarray(db[name].values)
        if x.dtype != y.dtype or x.shape != y.shape:
            out.append(f"{where}:{name}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
        elif not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            n = int(np.sum(~((x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind in "fc"
                             else x == y)))
            out.append(f"{where}:{name}: {n} of {x.size} values differ")
    attrs_a = {k: v for k, v in da.attrs.items() if k != "provenance"}
    attrs_b = {k: v for k, v in db.attrs.items() if k != "provenance"}
    _compare_json(json.loads(json.dumps(attrs_a, default=str)),
                  json.loads(json.dumps(attrs_b, default=str)), f"{where}:attrs", out)


def _compare_netcdf(a: Path, b: Path, where: str, out: list[str]) -> None:
    with xr.open_dataset(a) as x, xr.open_dataset(b) as y:
        _compare_datasets(x, y, where, out)


def _compare_csv(a: Path, b: Path, where: str, out: list[str]) -> None:
    x, y = pd.read_csv(a), pd.read_csv(b)
    if list(x.columns) != list(y.columns) or x.shape != y.shape:
        out.append(f"{where}: columns/shape {list(x.columns)} {x.shape} vs "
                   f"{list(y.columns)} {y.shape}")
        return
    keep = [c for c in x.columns if not VOLATILE_KEY.search(str(c))]
    if not x[keep].equals(y[keep]):
        out.append(f"{where}: cells differ")


def _artefacts(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        parts = rel.parts
        if any(p.endswith(".zarr") for p in parts[:-1]) or any(
                p in ("logs", "benchmarks", "provenance") or p.startswith(".") for p in parts):
            continue
        if path.is_dir() and path.suffix == ".zarr":
            found[str(rel)] = path
        elif path.is_file() and path.suffix not in SKIP_SUFFIXES and \
                not str(rel).endswith("provenance.json"):
            found[str(rel)] = path
    return found


def compare_trees(before: Path, after: Path) -> list[str]:
    """Differences between two result trees, one line each (empty: identical)."""
    out: list[str] = []
    a, b = _artefacts(Path(before)), _artefacts(Path(after))
    for rel in sorted(set(a) ^ set(b)):
        out.append(f"{rel}: only in {'after' if rel in b else 'before'}")
    for rel in sorted(set(a) & set(b)):
        if rel.endswith(".zarr"):
            _compare_store(a[rel], b[rel], rel, out)
        elif rel.endswith(".json"):
            _compare_json(_load_json(a[rel]), _load_json(b[rel]), rel, out)
        elif rel.endswith(".nc"):
            _compare_netcdf(a[rel], b[rel], rel, out)
        elif rel.endswith(".csv"):
            _compare_csv(a[rel], b[rel], rel, out)
        elif a[rel].read_bytes() != b[rel].read_bytes():
            out.append(f"{rel}: bytes differ")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    diffs = compare_trees(args.before, args.after)
    for line in diffs:
        print(line)
    print(f"{len(diffs)} differences "
          f"({len(_artefacts(args.before))} / {len(_artefacts(args.after))} artefacts compared)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
