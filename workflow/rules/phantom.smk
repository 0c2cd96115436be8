# Ground-truth phantoms: labels, true drift and a rendered two-detector raw stack (voxelyte.phantom).
STAGE_RULES["phantom"] = PHANTOM_SAMPLES


rule phantom:
    output:
        bse=sample_path("phantom", "BSE.tif"),
        se=sample_path("phantom", "SE.tif"),
        truth=zarr_output("phantom", "ground_truth.zarr"),
        summary=sample_path("phantom", "phantom.json"),
        sample_file=sample_path("phantom", "sample.yaml"),
        record=provenance_record("phantom"),
    params:
        phantom=lambda w: sample_of(w).phantom,
        phases=lambda w: sample_of(w).phases,
        config_hash=rule_config_hash("phantom", "phantom", "phases"),
    wildcard_constraints:
        sample=one_of(PHANTOM_SAMPLES),
    log:
        log_path("phantom"),
    benchmark:
        benchmark_path("phantom")
    threads: rule_threads("phantom", 1)
    resources:
        mem_mb=rule_mem_mb("phantom", 1000, 60),
        runtime=rule_runtime_min("phantom", 2, 0.08),
    script:
        "../scripts/phantom.py"
