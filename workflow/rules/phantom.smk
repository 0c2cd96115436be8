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
        config_hash=lambda w: sample_of(w).config_hash,
    wildcard_constraints:
        sample=one_of(PHANTOM_SAMPLES),
    log:
        log_path("phantom"),
    benchmark:
        benchmark_path("phantom")
    threads: 1
    resources:
        mem_mb=lambda w: 1000 + int(0.00006 * math.prod(sample_of(w).phantom["shape_zyx"])),
    script:
        "../scripts/phantom.py"
