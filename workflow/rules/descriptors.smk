# Descriptors: volume fractions, surfaces and interfaces, chords, sizes, connectivity, profiles,
# 2D slice statistics, two-point correlation (voxelyte.descriptors).
# Until the segment stage exists, phantom samples are described from their ground-truth labels.
DESCRIBED_SAMPLES = PHANTOM_SAMPLES
STAGE_RULES["descriptors"] = DESCRIBED_SAMPLES


rule descriptors:
    input:
        labels=zarr_output("phantom", "ground_truth.zarr"),
    output:
        summary=sample_path("descriptors", "descriptors.json"),
        record=provenance_record("descriptors"),
    params:
        stage=lambda w: sample_of(w).stages["descriptors"],
        sample_config=lambda w: {
            key: sample_of(w).config.get(key)
            for key in ("phases", "nominal_composition", "electrode_normal_axis",
                        "current_collector_side")
        },
        labels_source="ground truth (phantom)",
        config_hash=lambda w: sample_of(w).config_hash,
    wildcard_constraints:
        sample=one_of(DESCRIBED_SAMPLES),
    log:
        log_path("descriptors"),
    benchmark:
        benchmark_path("descriptors")
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/descriptors.py"
