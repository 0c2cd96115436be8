# Register: slice-drift estimation and correction, same shifts for every channel (voxelyte.register).
STAGE_RULES["register"] = IMAGE_SAMPLES


rule register:
    input:
        raw=artefact_output("raw"),
    output:
        registered=artefact_output("registered"),
        drift=artefact_output("drift_table"),
        qc=artefact_output("drift_qc"),
        record=provenance_record("register"),
    params:
        stage=lambda w: sample_of(w).stages["register"],
        config_hash=rule_config_hash("register"),
    wildcard_constraints:
        sample=one_of(IMAGE_SAMPLES),
    log:
        log_path("register"),
    benchmark:
        benchmark_path("register")
    threads: rule_threads("register", 2)
    resources:
        mem_mb=rule_mem_mb("register", 1000, 4),
        runtime=rule_runtime_min("register", 2, 0.015),
    script:
        "../scripts/register.py"
