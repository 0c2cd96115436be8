"""The artefact registry: path and variable of every stage output."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Artefact:
    """One stage output: its path relative to the sample folder, the stage (rule) that writes it
    and, for zarr stores, the main variable."""

    path: str
    stage: str
    variable: str | None = None

    @property
    def is_store(self) -> bool:
        """Whether the artefact is a zarr store (a folder) rather than a single file.

        Returns
        -------
        bool
            True when ``path`` ends in ``.zarr``.
        """
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
