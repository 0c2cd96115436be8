# Segment: corrected.zarr -> labels.zarr (phase labels + confidence), trainable random forest
# on multiscale features or unsupervised multi-Otsu (voxelyte.segmentation).
# Phantom samples train on scribbles generated from their ground truth in the registered frame
# and are scored against it.
from pathlib import Path as _SegPath

STAGE_RULES["segment"] = SAMPLES


def segment_inputs(wildcards):
    s = sample_of(wildcards)
    inputs = {"corrected": zarr_output("corrected.zarr").format(sample=wildcards.sample)}
    if s.phantom is not None:
        inputs["truth"] = zarr_output("phantom", "ground_truth.zarr").format(
            sample=wildcards.sample)
        inputs["drift"] = sample_path("drift.csv").format(sample=wildcards.sample)
    else:
        path = annotation_file(s)
        if path is not None and path.exists():  # missing: the script names it (drawn later)
            inputs["annotations"] = str(path)
    return inputs


def annotation_file(s):
    spec = s.config.get("annotations")
    if not spec:
        return None
    path = _SegPath(spec["path"]).expanduser()
    return path if path.is_absolute() else (_SegPath(s.source).parent / path).resolve()


rule segment:
    input:
        unpack(segment_inputs),
    output:
        labels=zarr_output("labels.zarr"),
        summary=sample_path("segment", "segmentation.json"),
        qc=sample_path("segment", "qc_segmentation.png"),
        model=sample_path("segment", "model.skops"),
        record=provenance_record("segment"),
    params:
        stage=lambda w: sample_of(w).stages["segment"],
        phases=lambda w: sample_of(w).config["phases"],
        annotations=lambda w: (
            dict(sample_of(w).config["annotations"], path=str(annotation_file(sample_of(w))))
            if sample_of(w).config.get("annotations") else None),
        is_phantom=lambda w: sample_of(w).phantom is not None,
        config_hash=rule_config_hash("segment", "phases", "annotations"),
    wildcard_constraints:
        sample=one_of(SAMPLES),
    log:
        log_path("segment"),
    benchmark:
        benchmark_path("segment")
    threads: rule_threads("segment", 2)
    resources:
        mem_mb=rule_mem_mb("segment", 1000, 40),
        runtime=rule_runtime_min("segment", 2, 0.2),
    script:
        "../scripts/segment.py"
