"""The segmentation section: labels over the corrected volume (and a phantom's ground truth),
the summary of segmentation.json and the segment stage's QC figure."""
from __future__ import annotations

import logging

from voxelyte import plotting as vp
from voxelyte.contract import AXES, artefact
from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.html import (cell, figure_block, not_run, pretty, section, table_block)
from voxelyte.report.volumes import mid_planes, open_store

log = logging.getLogger(__name__)


def _labels_var(ds) -> str | None:
    name = artefact("labels").variable
    if name in ds:
        return name
    ints = [v for v in ds.data_vars if ds[v].dims == AXES and ds[v].dtype.kind in "ui"]
    return ints[0] if ints else None


def _corrected_planes(res: SampleResults) -> list | None:
    if "corrected" not in res.stores:
        return None
    try:
        corr = open_store(res.stores["corrected"])[artefact("corrected").variable]
        ch = corr.sel(channel=corr["channel"].values[0]) if "channel" in corr.dims else corr
        return [p[1] for p in mid_planes(ch)]
    except Exception as err:
        log.warning("%s: %s", res.name, err)
        return None


def label_rows(res: SampleResults, truth_ds) -> list[dict]:
    """Slice-figure rows of the segmented labels (over the corrected first channel when the
    shapes match) and of a phantom's ground-truth labels.

    Parameters
    ----------
    res : SampleResults
    truth_ds : xarray.Dataset or None

    Returns
    -------
    list of dict
        Rows for :func:`voxelyte.report.figures.slices_figure`.
    """
    rows = []
    if "labels" in res.stores:
        ds = open_store(res.stores["labels"])
        var = _labels_var(ds)
        if var is not None:
            under = _corrected_planes(res)
            planes = mid_planes(ds[var])
            ok = under is not None and all(u.shape == p[1].shape for u, p in zip(under, planes))
            rows.append({"title": "segmented", "planes": planes,
                         "kind": "overlay" if ok else "labels", "under": under if ok else None})
    truth_var = artefact("ground_truth").variable
    if truth_ds is not None and truth_var in truth_ds:
        rows.append({"title": "ground truth", "planes": mid_planes(truth_ds[truth_var]),
                     "kind": "labels"})
    return rows


def _summary_table(res: SampleResults, seg: dict) -> dict | None:
    src = res.source("segmentation")
    rows = [[pretty(k), cell(v, src, [k])] for k, v in seg.items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    for group in ("volume_fraction", "timings_s"):
        for k, v in (seg.get(group) or {}).items():
            if isinstance(v, (int, float)):
                label = (f"volume fraction {k}, segmented" if group == "volume_fraction"
                         else f"time {k.removesuffix('_s').replace('_', ' ')} (s)")
                rows.append([label, cell(v, src, [group, k])])
    return table_block(["", ""], rows, cls="kv", caption="Summary of segment/segmentation.json.")


def segmentation_section(res: SampleResults, truth_ds, colors: dict) -> dict:
    """The segmentation section.

    Parameters
    ----------
    res : SampleResults
    truth_ds : xarray.Dataset or None
        A phantom's ground truth (its labels are shown beside the segmentation).
    colors : dict
        Phase colours.

    Returns
    -------
    dict
        A section; for a phantom whose segment stage did not run, the ground-truth labels.
    """
    labels = {n: int(s["label"]) for n, s in res.phases().items()}
    rows = label_rows(res, truth_ds)
    uri = fg.slices_figure(rows, phase_labels=labels, colors=colors) if rows else None
    seg = res.json.get("segmentation")
    if "labels" not in res.stores and seg is None:
        missing = not_run("segment")
        if truth_ds is not None:
            missing += (" The descriptors of this phantom are computed on its ground-truth "
                        "labels, shown below.")
            return section("segmentation", "Segmentation", [
                figure_block(uri, "Ground-truth labels of the phantom (mid-planes).",
                             "ground-truth labels")], intro=missing)
        return section("segmentation", "Segmentation", [], missing=missing)
    blocks = [figure_block(uri, "Segmented labels over the corrected first channel (45 % "
                           "opacity) and, for phantoms, the ground truth in its own "
                           "(unregistered) frame; orthogonal mid-planes.", "segmentation overlay")]
    if seg is not None:
        blocks.append(_summary_table(res, seg))
    if "segment_qc" in res.files:
        blocks.append(figure_block(vp.compact_image_uri(res.files["segment_qc"]),
                                   "Segmentation QC figure written by the segment stage "
                                   f"({res.files['segment_qc'].name}).", "segmentation QC"))
    return section("segmentation", "Segmentation", blocks)
