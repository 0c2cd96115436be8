# Register: slice-drift estimation and correction, same shifts for every channel (voxelyte.registration).
STAGE_RULES["register"] = SAMPLES


rule register:
    input:
        raw=zarr_output("raw.zarr"),
    output:
        registered=zarr_output("registered.zarr"),
        drift=sample_path("drift.csv"),
        qc=sample_path("qc", "drift.png"),
        record=provenance_record("register"),
    params:
        stage=lambda w: sample_of(w).stages["register"],
        config_hash=rule_config_hash("register"),
    wildcard_constraints:
        sample=one_of(SAMPLES),
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
