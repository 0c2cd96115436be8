"""Gather what exists of a sample's results folder: the registered artefacts (JSON summaries,
tables, stores, figures), provenance records and benchmarks.

Every artefact is optional: a stage that did not run leaves its entry out and the report says
so. Paths come from the artefact registry (:data:`voxelyte.contract.ARTEFACTS`); nothing here
recomputes a stage's numbers.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from voxelyte.contract import ARTEFACTS, artefact_path
from voxelyte.provenance import read_benchmark

log = logging.getLogger(__name__)

#: Pipeline stages (rule names) in order, with the title the report gives them.
STAGES = {
    "phantom": "Ground-truth phantom",
    "ingest": "Ingest",
    "ingest_labels": "Ingest of a segmented label volume",
    "register": "Registration (drift correction)",
    "preprocess": "Preprocessing (shading, curtaining, contrast)",
    "segment": "Segmentation",
    "evaluate": "Evaluation against the ground truth",
    "descriptors": "Microstructure descriptors",
    "transport": "Transport (tortuosity, conductivity)",
    "ssrm": "Simulated SSRM",
}

#: Stages that do not apply to a sample by the way it enters (``SampleResults.entry``).
NOT_APPLICABLE = {"labels": ("phantom", "ingest", "register", "preprocess", "segment",
                             "evaluate"),
                  "images": ("phantom", "evaluate", "ingest_labels"),
                  "phantom": ("ingest_labels",)}


def read_json(path) -> Any | None:
    """A JSON document, or None when absent or unreadable (logged).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    object or None
        The parsed document. ``Infinity`` / ``NaN`` literals of result trees written before the
        strict-JSON convention are still read (as floats).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        log.warning("cannot read %s: %s", path, err)
        return None


def store_exists(path) -> bool:
    """Whether ``path`` holds a complete zarr store.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool
        True when the store's root metadata (written last by the atomic writer) exists.
    """
    path = Path(path)
    return (path / "zarr.json").is_file() or (path / ".zgroup").is_file()


@dataclass
class SampleResults:
    """What exists of one sample's results, by artefact key (absent = that stage did not run).

    Attributes: ``json`` (artefact key -> document), ``stores`` and ``files`` (artefact key ->
    existing path), ``tables`` (descriptor table name -> DataFrame), ``drift`` (drift.csv),
    ``records`` / ``benchmarks`` (rule -> provenance record / benchmark row), ``config`` (the
    sample file).
    """

    name: str
    folder: Path
    config: dict = field(default_factory=dict)
    json: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    drift: pd.DataFrame | None = None
    stores: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    benchmarks: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    @property
    def descriptors(self) -> dict | None:
        """descriptors.json, or None.

        Returns
        -------
        dict or None
            The parsed descriptors document of the sample; None when it was not written or
            could not be read.
        """
        return self.json.get("descriptors")

    def source(self, key: str) -> str:
        """Path of artefact ``key`` relative to the study folder (``<sample>/<path>``), as the
        report's cells name their source.

        Parameters
        ----------
        key : str
            An artefact key of ``ARTEFACTS`` (KeyError otherwise); the file need not exist.

        Returns
        -------
        str
            ``"<sample name>/<artefact path>"`` with forward slashes.
        """
        return f"{self.name}/{ARTEFACTS[key].path}"

    @property
    def entry(self) -> str:
        """How the sample entered the workflow.

        Returns
        -------
        str
            ``"labels"`` (a segmented label volume), ``"phantom"`` (a generated phantom) or
            ``"images"`` (image stacks).
        """
        if self.config.get("labels") or "ingest_labels" in self.records:
            return "labels"
        if self.config.get("phantom") or any(
                k in self.json or k in self.stores
                for k in ("phantom_summary", "ground_truth", "evaluation")):
            return "phantom"
        return "images"

    def applies(self, stage: str) -> bool:
        """Whether ``stage`` is part of this sample's pipeline (not run is not failed).

        Parameters
        ----------
        stage : str
            A key of ``STAGES``.

        Returns
        -------
        bool
        """
        return self.ran(stage) or stage not in NOT_APPLICABLE[self.entry]

    def ran(self, stage: str) -> bool:
        """Whether ``stage`` ran: its provenance record or one of its artefacts exists.

        Parameters
        ----------
        stage : str
            A stage (rule) name, e.g. 'segment' or 'transport'.

        Returns
        -------
        bool
            True if a provenance record of the stage was collected or any artefact it writes
            exists in the sample folder (for a stage that does not apply to the sample's entry,
            only its record counts: a label volume's labels.zarr is not the segment stage's).
        """
        if stage in self.records:
            return True
        if stage in NOT_APPLICABLE[self.entry]:
            return False
        return any(art.stage == stage and artefact_path(self.folder, key).exists()
                   for key, art in ARTEFACTS.items())

    def phases(self) -> dict[str, dict]:
        """Phase table {name: spec with 'label'} from the sample config, else the ground truth.

        Returns
        -------
        dict of str to dict
            ``{phase name: spec}``, each spec a copy with at least an int ``label``; without
            phases in the config, the phantom summary's phases labelled 0, 1, ... in its
            order; empty if neither is available.
        """
        table = self.config.get("phases") or {}
        if table:
            return {n: (dict(s) if isinstance(s, dict) else {"label": int(s)})
                    for n, s in table.items()}
        gt = self.json.get("phantom_summary") or {}
        return {n: {"label": i} for i, n in enumerate(gt.get("volume_fraction", {}))}


def _read_table(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:
        log.warning("cannot read %s: %s", path, err)
        return None


def _sample_config(folder: Path, config: dict | None) -> dict:
    if config is None:
        written = artefact_path(folder, "phantom_sample_file")
        if written.is_file():
            import yaml

            config = yaml.safe_load(written.read_text()) or {}
    return dict(config or {})


def _collect_artefacts(res: SampleResults) -> None:
    """Fill ``res`` with every registered artefact that exists (report outputs excepted)."""
    for key, art in ARTEFACTS.items():
        if art.stage == "report":
            continue
        path = artefact_path(res.folder, key)
        if art.is_store:
            if store_exists(path):
                res.stores[key] = path
        elif path.suffix == ".json":
            doc = read_json(path)
            if doc is not None:
                res.json[key] = doc
        elif path.suffix == ".png" and path.is_file():
            res.files[key] = path
        elif key == "drift_table" and path.is_file():
            res.drift = _read_table(path)
        elif key == "descriptor_tables" and path.is_dir():
            for csv in sorted(path.glob("*.csv")):
                table = _read_table(csv)
                if table is not None:
                    res.tables[csv.stem] = table


def _collect_provenance(res: SampleResults, benchmarks_dir) -> None:
    prov_dir = res.folder / "provenance"
    if prov_dir.is_dir():
        for path in sorted(prov_dir.glob("*.json")):
            record = read_json(path)
            if isinstance(record, dict) and (record.get("rule") or path.stem) != "report":
                res.records[record.get("rule") or path.stem] = record
    bench_dir = Path(benchmarks_dir) if benchmarks_dir else res.folder.parent / "benchmarks"
    for rule in list(res.records) + [r for r in STAGES if r not in res.records]:
        row = read_benchmark(bench_dir / rule / f"{res.name}.tsv")
        if row is not None:
            res.benchmarks[rule] = row


def collect_sample(folder, *, name: str | None = None, config: dict | None = None,
                   benchmarks_dir=None) -> SampleResults:
    """Everything that exists for a sample.

    Parameters
    ----------
    folder : str or Path
        The sample's results folder (``results/<study>/<sample>``).
    name : str, optional
        Sample name (default: the folder's name).
    config : dict, optional
        The sample file's content (default: the phantom's written ``phantom/sample.yaml`` when
        present).
    benchmarks_dir : str or Path, optional
        ``results/<study>/benchmarks`` (default: beside the sample folder).

    Returns
    -------
    SampleResults
    """
    folder = Path(folder)
    res = SampleResults(name=name or folder.name, folder=folder,
                        config=_sample_config(folder, config))
    _collect_artefacts(res)
    _collect_provenance(res, benchmarks_dir)
    return res
