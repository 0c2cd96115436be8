# Ground-truth phantoms: labels, true drift and a rendered two-detector raw stack (voxelyte.phantom).
STAGE_RULES["phantom"] = PHANTOM_SAMPLES


rule phantom:
    output:
        bse=artefact_output("phantom_bse"),
        se=artefact_output("phantom_se"),
        truth=artefact_output("ground_truth"),
        summary=artefact_output("phantom_summary"),
        sample_file=artefact_output("phantom_sample_file"),
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
