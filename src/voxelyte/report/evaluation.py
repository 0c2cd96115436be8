"""The evaluation section of a phantom: the scores the evaluate stage wrote
(evaluate/evaluation.json) — drift error, IoU, volume fractions and confusion on three frames,
the false SE rim — beside the measured and true volume fractions."""
from __future__ import annotations

from voxelyte import plotting as vp
from voxelyte.report import figures as fg
from voxelyte.report.collect import SampleResults
from voxelyte.report.html import (cell, dig, figure_block, fmt, phase_cell, pretty, section,
                                  table_block)

#: evaluation.json's segmentation scores, in the order the report shows them.
SCORE_FRAMES = {
    "score_truth_grid": "ground-truth grid (the segmentation's own accuracy: the corrected "
                        "volume moved onto the truth's grid by the registration's sub-pixel "
                        "residual, annotated and segmented there)",
    "score_registered_frame": "registered frame (truth shifted to the nearest voxel: the "
                              "sub-pixel rest of the registration error included)",
    "score_plain_frame": "plain frame (registration error included)",
}
#: The drift-error numbers of evaluation.json's "registration" block.
DRIFT_ERROR_KEYS = ("drift_error_rms_px", "drift_error_max_px", "drift_error_rms_um",
                    "drift_error_max_um", "drift_error_slices")


def iou(res: SampleResults) -> dict:
    """IoU per phase on the ground-truth grid.

    Parameters
    ----------
    res : SampleResults

    Returns
    -------
    dict
        Phase -> IoU (evaluation.json ``segmentation.score_truth_grid.iou``); empty when the
        evaluate stage did not run.
    """
    values = dig(res.json, "evaluation", "segmentation", "score_truth_grid", "iou") or {}
    return {p: v for p, v in values.items() if isinstance(v, (int, float))}


def _summary_rows(res: SampleResults) -> list[list]:
    src = res.source("evaluation")
    ev = res.json.get("evaluation") or {}
    score = ev.get("registration")
    rows = []
    if score:
        rows += [[pretty(k), cell(score[k], src, ["registration", k])] for k in DRIFT_ERROR_KEYS]
    else:
        rows.append(["drift error", "— (registration did not run)"])
    truth = dig(res.json, "phantom_summary", "volume_fraction") or {}
    d = res.descriptors or {}
    for p, v in truth.items():
        m = d.get(f"volume_fraction_{p}")
        note = f" ({d.get('labels_source')})" if m is not None else ""
        rows.append([f"volume fraction {p}: measured / ground truth", f"{fmt(m)} / {fmt(v)}{note}"])
    path = ["segmentation", "score_truth_grid", "iou"]
    values = iou(res)
    rows += [[f"IoU {p}", cell(v, src, [*path, p])] for p, v in values.items()]
    if not values:
        rows.append(["IoU per phase", "— (evaluate did not run)"])
    for k, v in (ev.get("timings_s") or {}).items():
        if isinstance(v, (int, float)):
            rows.append([f"time {k.removesuffix('_s').replace('_', ' ')} (s)",
                         cell(v, src, ["timings_s", k])])
    return rows


def _confusion_table(matrix: list, names: list, src: str, path: list) -> dict | None:
    rows = [[str(names[i]), *[cell(v, src, [*path, i, j]) for j, v in enumerate(r)]]
            for i, r in enumerate(matrix)]
    return table_block(["true \\ predicted", *[str(n) for n in names]], rows,
                       caption="Confusion matrix against the ground truth, fraction of each true "
                       "phase's voxels (rows: true phase, columns: segmented phase).")


def _frame_tables(res: SampleResults, colors: dict) -> list:
    src = res.source("evaluation")
    seg = dig(res.json, "evaluation", "segmentation") or {}
    blocks = []
    for key, title in SCORE_FRAMES.items():
        sc = seg.get(key)
        if not isinstance(sc, dict):
            continue
        base = ["segmentation", key]
        rows = [[phase_cell(p, colors)] + [
            cell(dig(sc, k, p), src, [*base, k, p]) if dig(sc, k, p) is not None else "—"
            for k in ("iou", "volume_fraction_predicted", "volume_fraction_truth",
                      "volume_fraction_error_pp")]
            for p in sc.get("phases") or list(sc.get("iou") or {})]
        blocks.append(table_block(["phase", "IoU", "volume fraction segmented",
                                   "volume fraction truth", "error (pp)"], rows,
                                  caption=f"Scores against the ground truth, {title}."))
        matrix = sc.get("confusion_matrix_row_normalised")
        if isinstance(matrix, list):
            names = sc.get("phases") or list(range(len(matrix)))
            blocks.append(_confusion_table(matrix, names, src,
                                           [*base, "confusion_matrix_row_normalised"]))
    return blocks


def _rim_table(res: SampleResults) -> dict | None:
    src = res.source("evaluation")
    rim = dig(res.json, "evaluation", "segmentation", "false_se_rim_at_true_cam_pore_contacts")
    if not isinstance(rim, dict):
        return None
    path = ["segmentation", "false_se_rim_at_true_cam_pore_contacts"]
    rows = [[f"{frame.replace('_', ' ')}: {pretty(k)}", cell(v, src, [*path, frame, k])]
            for frame, values in rim.items() if isinstance(values, dict)
            for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    caption = "False SE rim at true CAM–pore contacts"
    if isinstance(rim.get("definition"), str):
        caption += f": {rim['definition']}"
    return table_block(["", ""], rows, cls="kv", caption=caption + ".")


def evaluation_section(res: SampleResults, colors: dict) -> dict:
    """The evaluation section of a phantom sample.

    Parameters
    ----------
    res : SampleResults
    colors : dict
        Phase colours.

    Returns
    -------
    dict
        A section with the drift error, volume fractions measured / true, IoU figure and
        tables per scoring frame, confusion matrices, the false SE rim and the evaluate
        stage's QC figure.
    """
    scoring = dig(res.json, "evaluation", "segmentation", "scoring")
    values = iou(res)
    blocks = [
        table_block(["score", "value"], _summary_rows(res), cls="kv",
                    caption="Drift error: registration's drift minus the phantom's true drift, "
                    "RMS and maximum of the in-plane error over the valid slices; IoU on the "
                    "ground-truth grid (evaluate/evaluation.json)."),
        figure_block(fg.iou_figure({res.name: values}, colors) if values else None,
                     "Intersection over union of each phase with the ground truth, on the "
                     "ground-truth grid (evaluation.json).", "IoU per phase"),
        *_frame_tables(res, colors),
        _rim_table(res)]
    if isinstance(scoring, str):
        blocks.append({"type": "text", "text": scoring})
    if "evaluation_qc" in res.files:
        blocks.append(figure_block(vp.compact_image_uri(res.files["evaluation_qc"]),
                                   "Evaluation QC figure written by the evaluate stage "
                                   f"({res.files['evaluation_qc'].name}).", "evaluation QC"))
    return section("evaluation", "Evaluation against the ground truth", blocks)
