# Evaluate (phantoms only): the registration's drift and the segmentation scored against the
# phantom's ground truth: on the ground-truth grid (the corrected volume moved onto it and
# segmented again with the sample's segment settings), in the registered and in the plain
# frame (voxelyte.evaluate).
STAGE_RULES["evaluate"] = PHANTOM_SAMPLES


rule evaluate:
    input:
        corrected=artefact_output("corrected"),
        labels=artefact_output("labels"),
        ground_truth=artefact_output("ground_truth"),
        drift_table=artefact_output("drift_table"),
    output:
        evaluation=artefact_output("evaluation"),
        qc=artefact_output("evaluation_qc"),
        record=provenance_record("evaluate"),
    params:
        stage=lambda w: sample_of(w).stages["segment"],
        phases=lambda w: sample_of(w).config["phases"],
        config_hash=rule_config_hash("segment", "phases"),
    wildcard_constraints:
        sample=one_of(PHANTOM_SAMPLES),
    log:
        log_path("evaluate"),
    benchmark:
        benchmark_path("evaluate")
    threads: rule_threads("evaluate", 2)
    resources:
        mem_mb=rule_mem_mb("evaluate", 1000, 40),
        runtime=rule_runtime_min("evaluate", 2, 0.2),
    script:
        "../scripts/evaluate.py"
