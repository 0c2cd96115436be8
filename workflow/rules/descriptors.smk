# Descriptors: volume fractions, surfaces and interfaces, chords, sizes, connectivity, profiles,
# 2D slice statistics, two-point correlation (voxelyte.descriptors).
# Every sample is described from the segment stage's labels.zarr (phantoms too: their
# ground truth scores the segmentation, descriptors see what a real sample would give).
DESCRIBED_SAMPLES = SAMPLES
STAGE_RULES["descriptors"] = DESCRIBED_SAMPLES


rule descriptors:
    input:
        labels=artefact_output("labels"),
    output:
        summary=artefact_output("descriptors"),
        record=provenance_record("descriptors"),
    params:
        stage=lambda w: sample_of(w).stages["descriptors"],
        sample_config=lambda w: {
            key: sample_of(w).config.get(key)
            for key in ("phases", "nominal_composition", "electrode_normal_axis",
                        "current_collector_side")
        },
        labels_source=labels_source,
        config_hash=rule_config_hash("descriptors", "phases", "nominal_composition",
                                     "electrode_normal_axis", "current_collector_side"),
    wildcard_constraints:
        sample=one_of(DESCRIBED_SAMPLES),
    log:
        log_path("descriptors"),
    benchmark:
        benchmark_path("descriptors")
    threads: rule_threads("descriptors", 2)
    resources:
        mem_mb=rule_mem_mb("descriptors", 1000, 50),
        runtime=rule_runtime_min("descriptors", 2, 0.25),
    script:
        "../scripts/descriptors.py"
