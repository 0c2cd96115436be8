"""Snakemake adapter: segment corrected.zarr into labels.zarr (voxelyte.segmentation)."""
import time
from pathlib import Path

import numpy as np
import pandas as pd

from voxelyte import io, scripting, segmentation


def main(smk, log):
    sample = smk.wildcards.sample
    in_store = Path(smk.input.corrected).parent      # inputs/outputs name the stores' zarr.json
    out_store = Path(smk.output.labels).parent
    corrected = io.open_volume(in_store, sample=sample)
    stage = dict(smk.params.stage)
    phases = smk.params.phases
    stack = corrected["corrected"]
    shape = tuple(stack.shape[1:])
    inputs = {"corrected": in_store}
    annotations = classes = truth_reg = truth_plain = residual = made = None

    if smk.params.is_phantom:
        truth_store = Path(smk.input.truth).parent
        drift = pd.read_csv(smk.input.drift)[["dy_px", "dx_px"]].to_numpy()
        truth = io.open_volume(truth_store, sample=sample)
        coords = {axis: stack.coords[axis].values for axis in ("z", "y", "x")}
        truth_reg, truth_plain = segmentation.truth_in_registered_frame(truth, drift, coords)
        residual = segmentation.registration_residual_px(truth, drift, coords)
        inputs.update(truth=truth_store, drift=smk.input.drift)
        if stage["method"] == "trainable":
            annotations, classes, made = segmentation.phantom_annotations(
                corrected, truth_reg, phases, num_workers=smk.threads, sample=sample, **stage)
            log.info("%s: phantom scribbles on %d slices, %d voxels (registered frame), "
                     "correction strokes %s voxels", sample,
                     int(np.any(annotations > 0, axis=(1, 2)).sum()), made["scribble_voxels"],
                     made["correction_voxels"])
    elif smk.params.annotations and stage["method"] == "trainable":
        spec = smk.params.annotations
        annotations, classes = segmentation.load_annotations(
            spec, shape_zyx=shape, phases=phases, sample=sample)
        inputs["annotations"] = spec["path"]

    labels, info, model = segmentation.segment(
        corrected, phases=phases, annotations=annotations, classes=classes, sample=sample,
        num_workers=smk.threads, **stage)
    info = {"sample": sample, **info}
    if made is not None:
        info["phantom_annotations"] = made
    if truth_reg is not None:
        predicted = np.asarray(labels["labels"].values)
        t0 = time.perf_counter()
        grid_labels, grid_truth, info["score_truth_grid"] = segmentation.segment_on_truth_grid(
            corrected, truth_plain, residual, phases, num_workers=smk.threads, sample=sample,
            **stage)
        info["timings_s"]["truth_grid_scoring_s"] = time.perf_counter() - t0
        info["score_registered_frame"] = segmentation.score(predicted, truth_reg, phases)
        info["score_plain_frame"] = segmentation.score(predicted, truth_plain, phases)
        info["scoring"] = (
            "score_truth_grid: the segmentation's own accuracy: the corrected volume moved "
            "in-plane onto the ground-truth grid by minus the drift residual the registration "
            "left (true - estimated, sub-pixel, cubic spline), annotated there as the stage's "
            "volume was and segmented with the same settings. score_registered_frame: the "
            "stage's labels against each ground-truth slice shifted by the residual to the "
            "nearest voxel (the sub-pixel rest of the registration error, up to 0.5 voxel, "
            "stays in the score). score_plain_frame: the truth only cropped (all of the "
            "registration error included). Voxels from outside the truth or image are not "
            "scored.")
        lab = segmentation.phase_map(phases)
        if {"pore", "SE", "CAM"} <= set(lab):
            rims = {}
            for frame, (seg_labels, truth_labels) in (
                    ("truth_grid", (grid_labels, grid_truth)),
                    ("registered_frame", (predicted, truth_reg))):
                kw = dict(low=lab["pore"], middle=lab["SE"], high=lab["CAM"],
                          truth=truth_labels)
                rim = segmentation.rim_thickness(seg_labels, **kw)
                every = segmentation.rim_thickness(seg_labels, exclude_unresolved=False, **kw)
                rims[frame] = {
                    "voxels": int(rim.size),
                    "max_thickness_voxels": float(rim.max()) if rim.size else 0.0,
                    "voxels_thicker_than_1": int((rim > 1.5).sum()),
                    "voxels_2_thick": int(((rim > 1.5) & (rim <= 2.5)).sum()),
                    "voxels_thicker_than_1_unresolved_included": int((every > 1.5).sum())}
            info["false_se_rim_at_true_cam_pore_contacts"] = {
                **rims,
                "definition": "SE voxels between CAM and pore (both within 3 voxels) where the "
                              "truth has no SE in the 3x3x3 neighbourhood; thickness "
                              "t = d_pore + d_CAM - 1 (1: one voxel, 1.41: across a corner); "
                              "unresolved voxels left out: r = max(d_pore, d_CAM) beyond the "
                              "volume's faces, or true SE in the cube of half-width ceil(r) "
                              "(triple lines); on the truth grid and in the registered frame "
                              "(as the scores)"}
        for frame in ("score_truth_grid", "score_registered_frame", "score_plain_frame"):
            if frame in info:
                s = info[frame]
                log.info("%s: %s: IoU %s; volume-fraction error (pp) %s", sample, frame,
                         {k: round(v, 4) for k, v in s["iou"].items()},
                         {k: round(v, 3) for k, v in s["volume_fraction_error_pp"].items()})
    log.info("%s: %s segmentation, volume fractions %s, timings %s", sample, info["method"],
             {k: round(v, 4) for k, v in info["volume_fraction"].items()}, info["timings_s"])

    Path(smk.output.summary).parent.mkdir(parents=True, exist_ok=True)
    if model is not None:
        segmentation.save_model(model, smk.output.model)
    else:
        segmentation.save_thresholds(info.get("unsupervised", {}), smk.output.model)
    segmentation.qc_figure(corrected, labels, info, smk.output.qc, truth=truth_reg)
    record = scripting.stage_record(
        smk, inputs=inputs,
        outputs=[out_store, smk.output.summary, smk.output.qc, smk.output.model],
        params=dict(stage, annotations=smk.params.annotations))
    scripting.save_results(smk, labels, out_store, record, info)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
