# Preprocess: brightness drift, shading, curtaining, contrast (voxelyte.preprocess).
STAGE_RULES["preprocess"] = SAMPLES


rule preprocess:
    input:
        registered=zarr_output("registered.zarr"),
    output:
        corrected=zarr_output("corrected.zarr"),
        record=provenance_record("preprocess"),
    params:
        stage=lambda w: sample_of(w).stages["preprocess"],
        config_hash=lambda w: sample_of(w).config_hash,
    wildcard_constraints:
        sample=one_of(SAMPLES),
    log:
        log_path("preprocess"),
    benchmark:
        benchmark_path("preprocess")
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/preprocess.py"
