# Transport: flux-based tortuosity and conductivities of the segmented labels, random-walk
# cross-check, filled-porosity / conductivity scenarios, kappa_exp vs kappa_sim, current fields
# (voxelyte.transport, voxelyte.conduction, voxelyte.random_walk).
STAGE_RULES["transport"] = SAMPLES


rule transport:
    input:
        labels=artefact_output("labels"),
    output:
        summary=artefact_output("transport"),
        flux=artefact_output("flux"),
        record=provenance_record("transport"),
    params:
        stage=lambda w: sample_of(w).stages["transport"],
        sample_config=lambda w: {
            key: sample_of(w).config.get(key)
            for key in ("phases", "measured", "electrode_normal_axis")
        },
        labels_source=labels_source,
        config_hash=rule_config_hash("transport", "phases", "measured", "electrode_normal_axis"),
    wildcard_constraints:
        sample=one_of(SAMPLES),
    log:
        log_path("transport"),
    benchmark:
        benchmark_path("transport")
    threads: rule_threads("transport", 2)
    resources:
        # one solve at a time: ≈ 150-250 bytes per voxel (voxelyte.transport.estimate_memory_gb)
        mem_mb=rule_mem_mb("transport", 1000, 260),
        runtime=rule_runtime_min("transport", 5, 1.0),
    script:
        "../scripts/transport.py"
