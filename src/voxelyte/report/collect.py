"""Gather what exists of a sample's results folder: JSON summaries, tables, stores, provenance.

Every artefact is optional: a stage that did not run leaves its entry ``None`` (or empty) and the
report says so. Nothing here recomputes a stage's numbers; the only derived figures are the
phantom scores that no stage writes (drift error against the ground-truth drift), made in
:mod:`voxelyte.report.scores`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from voxelyte.provenance import read_benchmark

log = logging.getLogger(__name__)

#: Pipeline stages in order: rule name -> (title, what it writes, relative to the sample folder).
STAGES = {
    "phantom": ("Ground-truth phantom", "phantom/phantom.json"),
    "ingest": ("Ingest", "raw.zarr"),
    "register": ("Registration (drift correction)", "drift.csv"),
    "preprocess": ("Preprocessing (shading, curtaining, contrast)", "corrected.zarr"),
    "segment": ("Segmentation", "labels.zarr"),
    "descriptors": ("Microstructure descriptors", "descriptors/descriptors.json"),
    "transport": ("Transport (tortuosity, conductivity)", "transport/transport.json"),
    "ssrm": ("Simulated SSRM", "ssrm.json"),
}
#: JSON summaries (relative paths) the report reads verbatim.
JSON_ARTEFACTS = {"phantom": "phantom/phantom.json",
                  "descriptors": "descriptors/descriptors.json",
                  "segmentation": "segment/segmentation.json",
                  "transport": "transport/transport.json",
                  "ssrm": "ssrm.json"}
#: Zarr stores the report takes slices from.
STORES = {"raw": "raw.zarr", "registered": "registered.zarr", "corrected": "corrected.zarr",
          "labels": "labels.zarr", "ground_truth": "phantom/ground_truth.zarr",
          "flux": "transport/flux.zarr", "ssrm": "ssrm.zarr"}


def read_json(path: Path) -> Any | None:
    """A JSON file, or None when absent or unreadable (logged). Infinity/NaN literals allowed."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.warning("cannot read %s: %s", path, err)
        return None


def store_exists(path: Path) -> bool:
    """A complete zarr store (its root ``zarr.json`` written last by write_zarr_atomic)."""
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


@dataclass
class SampleResults:
    """What exists of one sample's results (``None``/empty = that stage did not run)."""

    name: str
    folder: Path
    config: dict = field(default_factory=dict)          # the sample file (as loaded)
    json: dict = field(default_factory=dict)            # key of JSON_ARTEFACTS -> document
    tables: dict = field(default_factory=dict)          # descriptor table name -> DataFrame
    drift: pd.DataFrame | None = None
    stores: dict = field(default_factory=dict)          # key of STORES -> path (existing only)
    records: dict = field(default_factory=dict)         # rule -> provenance record
    benchmarks: dict = field(default_factory=dict)      # rule -> benchmark row
    files: dict = field(default_factory=dict)           # other files: 'segment_qc', 'drift_qc'

    @property
    def descriptors(self) -> dict | None:
        return self.json.get("descriptors")

    def ran(self, stage: str) -> bool:
        """A stage ran when its provenance record or its main artefact exists."""
        if stage in self.records:
            return True
        rel = STAGES.get(stage, (None, None))[1]
        return rel is not None and (self.folder / rel).exists()

    def phases(self) -> dict[str, dict]:
        """Phase table {name: spec with 'label'} from the sample config, else the ground truth."""
        table = self.config.get("phases") or {}
        if table:
            return {n: (dict(s) if isinstance(s, dict) else {"label": int(s)})
                    for n, s in table.items()}
        gt = self.json.get("phantom") or {}
        return {n: {"label": i} for i, n in enumerate(gt.get("volume_fraction", {}))}


def _read_table(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        log.warning("cannot read %s: %s", path, err)
        return None


def collect_sample(folder, *, name: str | None = None, config: dict | None = None,
                   benchmarks_dir=None) -> SampleResults:
    """Everything that exists for a sample under ``folder`` (results/<study>/<sample>).
    ``config``: the sample file's content (else ``phantom/sample.yaml`` when present);
    ``benchmarks_dir``: results/<study>/benchmarks (default: beside the sample folder)."""
    folder = Path(folder)
    res = SampleResults(name=name or folder.name, folder=folder)
    if config is None:
        written = folder / "phantom" / "sample.yaml"
        if written.is_file():
            import yaml

            config = yaml.safe_load(written.read_text()) or {}
    res.config = dict(config or {})
    for key, rel in JSON_ARTEFACTS.items():
        doc = read_json(folder / rel)
        if doc is not None:
            res.json[key] = doc
    desc_dir = folder / "descriptors"
    if desc_dir.is_dir():
        for csv in sorted(desc_dir.glob("*.csv")):
            table = _read_table(csv)
            if table is not None:
                res.tables[csv.stem] = table
    if (folder / "drift.csv").is_file():
        res.drift = _read_table(folder / "drift.csv")
    for key, rel in STORES.items():
        if store_exists(folder / rel):
            res.stores[key] = folder / rel
    for key, rel in {"drift_qc": "qc/drift.png"}.items():
        if (folder / rel).is_file():
            res.files[key] = folder / rel
    seg_pngs = sorted((folder / "segment").glob("*.png")) + sorted((folder / "qc").glob("seg*.png"))
    if seg_pngs:
        res.files["segment_qc"] = seg_pngs[0]
    prov_dir = folder / "provenance"
    if prov_dir.is_dir():
        for path in sorted(prov_dir.glob("*.json")):
            record = read_json(path)
            if isinstance(record, dict) and (record.get("rule") or path.stem) != "report":
                res.records[record.get("rule") or path.stem] = record
    bench_dir = Path(benchmarks_dir) if benchmarks_dir else folder.parent / "benchmarks"
    for rule in list(res.records) + [r for r in STAGES if r not in res.records]:
        row = read_benchmark(bench_dir / rule / f"{res.name}.tsv")
        if row is not None:
            res.benchmarks[rule] = row
    return res
