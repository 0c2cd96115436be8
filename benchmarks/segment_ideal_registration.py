"""Segmentation in isolation: the demo phantoms segmented after an ideal registration.

In the workflow, a phantom's segmentation is scored after the real registration, whose
residual (0.5-1.5 px standard deviation on the demo, a slow random walk of slice-to-slice
phase correlation) stays in the registered-frame score; the ground-truth-grid score moves the
corrected volume back by it (``evaluate.segment_on_truth_grid``). Here each phantom's ``raw.zarr``
is registered with its ground-truth drift instead (``register.apply_drift``: the stage's
cubic interpolation and automatic crop), corrected with the sample's preprocess settings, then
annotated and segmented exactly as the workflow does (``phantom_annotations``: scribbles on
<= 3 % of the slices + one correction round; ``segment`` with the sample's settings) and scored
against the ground truth, which is then on the image grid: the segmentation's own accuracy
with shine-through, noise, shading and curtains present and no registration error.

Needs a finished demo run (``make run``: raw.zarr, drift.csv and the phantom's ground truth of
every sample). Prints one line per sample and writes a JSON record (IoU, confusion matrix,
volume-fraction errors, the workflow's truth-grid score beside it).

    .venv/bin/python benchmarks/segment_ideal_registration.py \
        [--config config/config.yaml] [--samples BM10 BM03 BM01] [--threads 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def ideal_registration_score(sample, sample_dir: Path, threads: int = 2) -> dict:
    """Register the sample's raw stack (in ``sample_dir``) with its true drift, preprocess,
    annotate, segment and score (see the module docstring)."""
    import pandas as pd

    from voxelyte import contract, evaluate, preprocess, register, segment

    raw = contract.open_volume(sample_dir / "raw.zarr", sample=sample.name)
    truth = contract.open_volume(sample_dir / "phantom" / "ground_truth.zarr", sample=sample.name)
    true_drift = np.stack([truth["drift_dy_px"].values, truth["drift_dx_px"].values], axis=1)
    # the workflow's drift table with the true translation in place of the estimate
    table = pd.read_csv(sample_dir / "drift.csv")
    table = table.drop(columns=[c for c in register.AFFINE_COLUMNS if c in table])
    table["dy_px"], table["dx_px"] = true_drift[:, 0], true_drift[:, 1]
    settings = sample.stages["register"]
    registered = register.apply_drift(
        raw["raw"], table, crop_border=settings["crop_border"],
        interpolation_order=settings["interpolation_order"]).rename("registered").to_dataset()
    registered.attrs = dict(raw.attrs)
    corrected = preprocess.preprocess(registered, **sample.stages["preprocess"]).compute()
    stack = corrected["corrected"]
    coords = {axis: stack.coords[axis].values for axis in ("z", "y", "x")}
    truth_reg, _ = evaluate.truth_in_registered_frame(truth, true_drift, coords)
    phases = sample.config["phases"]
    stage = dict(sample.stages["segment"])
    t0 = time.perf_counter()
    annotations, classes, made = segment.phantom_annotations(
        corrected, truth_reg, phases, num_workers=threads, sample=sample.name, **stage)
    labels, info, _ = segment.segment(
        corrected, phases=phases, annotations=annotations, classes=classes,
        sample=sample.name, num_workers=threads, **stage)
    seconds = time.perf_counter() - t0
    predicted = np.asarray(labels["labels"].values)
    return {"sample": sample.name, "score_ideal_registration": evaluate.score(
        predicted, truth_reg, phases), "phantom_annotations": made,
        "annotated_slices": info.get("annotated_slices"), "segment_s": round(seconds, 1)}


def main() -> None:
    from voxelyte import config as vxconfig

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--samples", nargs="*", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON record (default: print only)")
    args = ap.parse_args()
    study = vxconfig.load_study(args.config, workdir=Path("."))
    names = args.samples or [n for n, s in study.samples.items() if s.phantom is not None]
    records = []
    for name in names:
        rec = ideal_registration_score(study.samples[name], study.sample_dir(name),
                                       threads=args.threads)
        evaluation = json.loads((study.sample_dir(name) / "evaluate" / "evaluation.json")
                                .read_text())
        workflow = evaluation["segmentation"].get("score_truth_grid", {})
        rec["workflow_score_truth_grid_iou"] = workflow.get("iou")
        records.append(rec)
        iou = rec["score_ideal_registration"]["iou"]
        err = rec["score_ideal_registration"]["volume_fraction_error_pp"]
        print(f"{name}: ideal registration IoU " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                              iou.items())
              + "; volume-fraction error (pp) " + ", ".join(f"{k} {v:+.2f}" for k, v in
                                                            err.items())
              + "; workflow truth grid " + ", ".join(
                  f"{k} {v:.3f}" for k, v in (rec["workflow_score_truth_grid_iou"] or {}).items())
              + f"; {rec['segment_s']} s", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
