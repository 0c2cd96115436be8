# Preprocess: brightness drift, shading, curtaining, contrast (voxelyte.preprocess).
STAGE_RULES["preprocess"] = IMAGE_SAMPLES


rule preprocess:
    input:
        registered=artefact_output("registered"),
    output:
        corrected=artefact_output("corrected"),
        record=provenance_record("preprocess"),
    params:
        stage=lambda w: sample_of(w).stages["preprocess"],
        config_hash=rule_config_hash("preprocess"),
    wildcard_constraints:
        sample=one_of(IMAGE_SAMPLES),
    log:
        log_path("preprocess"),
    benchmark:
        benchmark_path("preprocess")
    threads: rule_threads("preprocess", 2)
    resources:
        mem_mb=rule_mem_mb("preprocess", 1000, 4),
        runtime=rule_runtime_min("preprocess", 2, 0.015),
    script:
        "../scripts/preprocess.py"
