# Segment: corrected.zarr -> labels.zarr (phase labels + confidence), trainable random forest
# on multiscale features or unsupervised thresholds + self-training (voxelyte.segment).
# Phantom samples with the trainable method train on scribbles drawn from their ground truth in
# the registered frame (hence the ground truth and drift inputs); the evaluate rule scores them.
from pathlib import Path as _SegPath

STAGE_RULES["segment"] = IMAGE_SAMPLES


def segment_inputs(wildcards):
    s = sample_of(wildcards)
    inputs = {"corrected": artefact_of("corrected", wildcards)}
    if s.phantom is not None:
        if s.stages["segment"]["method"] == "trainable":
            inputs["truth"] = artefact_of("ground_truth", wildcards)
            inputs["drift"] = artefact_of("drift_table", wildcards)
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
        labels=artefact_output("labels"),
        summary=artefact_output("segmentation"),
        qc=artefact_output("segment_qc"),
        model=artefact_output("segment_model"),
        record=provenance_record("segment"),
    params:
        stage=lambda w: sample_of(w).stages["segment"],
        phases=lambda w: sample_of(w).config["phases"],
        annotations=lambda w: (
            dict(sample_of(w).config["annotations"], path=str(annotation_file(sample_of(w))))
            if sample_of(w).config.get("annotations") else None),
        config_hash=rule_config_hash("segment", "phases", "annotations"),
    wildcard_constraints:
        sample=one_of(IMAGE_SAMPLES),
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
