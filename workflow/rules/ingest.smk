# Ingest (voxelyte.ingest): raw channel stacks (TIFF, TIFF folder, HDF5, raw binary, zarr) ->
# raw.zarr; or, for a sample that enters as a segmented label volume, the label file mapped onto
# the phase table -> labels.zarr (register, preprocess and segment do not run for it).
STAGE_RULES["ingest"] = IMAGE_SAMPLES
STAGE_RULES["ingest_labels"] = LABEL_SAMPLES


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
        sample=one_of(IMAGE_SAMPLES),
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


rule ingest_labels:
    input:
        label_file=lambda w: str(sample_of(w).labels["path"]),
    output:
        labels=artefact_output("labels"),
        record=provenance_record("ingest_labels"),
    params:
        labels=lambda w: sample_of(w).labels,
        phases=lambda w: sample_of(w).config["phases"],
        voxel_size_um=lambda w: sample_of(w).voxel_size_um,
        crop=lambda w: sample_of(w).config.get("crop"),
        stage=lambda w: sample_of(w).stages["ingest"],
        config_hash=rule_config_hash("ingest", "labels", "phases", "voxel_size_um", "crop"),
    wildcard_constraints:
        sample=one_of(LABEL_SAMPLES),
    log:
        log_path("ingest_labels"),
    benchmark:
        benchmark_path("ingest_labels")
    threads: rule_threads("ingest", 2)
    resources:
        mem_mb=rule_mem_mb("ingest", 1000, 2),
        runtime=rule_runtime_min("ingest", 2, 0.01),
    script:
        "../scripts/ingest_labels.py"
