# SSRM: simulated scanning spreading resistance microscopy (voxelyte.ssrm, Gamo et al. SI):
# resistance map R(y, x) over the scanned face, log-R histograms per phase, isolated carrier
# pixels against the geometry, 3D current fields for chosen tips, DC (full-face) mode.
# Labels: labels.zarr of the segment stage.
SSRM_SAMPLES = SAMPLES
STAGE_RULES["ssrm"] = SSRM_SAMPLES


rule ssrm:
    input:
        labels=artefact_output("labels"),
    output:
        store=artefact_output("ssrm_map"),
        summary=artefact_output("ssrm"),
        record=provenance_record("ssrm"),
    params:
        stage=lambda w: sample_of(w).stages["ssrm"],
        phases=lambda w: sample_of(w).config["phases"],
        labels_source=lambda w: ("segmentation" if sample_of(w).labels is None
                                 else labels_source(w)),
        config_hash=rule_config_hash("ssrm", "phases"),
    wildcard_constraints:
        sample=one_of(SSRM_SAMPLES),
    log:
        log_path("ssrm"),
    benchmark:
        benchmark_path("ssrm")
    threads: rule_threads("ssrm", 2)
    resources:
        mem_mb=rule_mem_mb("ssrm", 1500, 1000),
        runtime=rule_runtime_min("ssrm", 5, 1.0),
    script:
        "../scripts/ssrm.py"
