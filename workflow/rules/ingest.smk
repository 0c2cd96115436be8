# Ingest: raw channel stacks (TIFF, TIFF folder, HDF5, raw binary, zarr) -> raw.zarr (voxelyte.ingest).
STAGE_RULES["ingest"] = SAMPLES


rule ingest:
    input:
        channels=lambda w: [str(c["path"]) for c in sample_of(w).inputs],
    output:
        raw=artefact_output("raw"),
        record=provenance_record("ingest"),
    params:
        inputs=lambda w: sample_of(w).inputs,
        voxel_size_um=lambda w: sample_of(w).voxel_size_um,
        crop=lambda w: sample_of(w).config.get("crop"),
        stage=lambda w: sample_of(w).stages["ingest"],
        config_hash=rule_config_hash("ingest", "inputs", "voxel_size_um", "crop"),
    wildcard_constraints:
        sample=one_of(SAMPLES),
    log:
        log_path("ingest"),
    benchmark:
        benchmark_path("ingest")
    threads: rule_threads("ingest", 2)
    resources:
        mem_mb=rule_mem_mb("ingest", 1000, 2),
        runtime=rule_runtime_min("ingest", 2, 0.005),
    script:
        "../scripts/ingest.py"
