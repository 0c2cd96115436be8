# SSRM: simulated scanning spreading resistance microscopy (voxelyte.ssrm, Gamo et al. SI):
# resistance map R(y, x) over the scanned face, log-R histograms per phase, isolated carrier
# pixels vs connectivity, 3D current fields for chosen tips, DC (full-face) mode.
# Labels: labels.zarr of the segment stage where it is part of the workflow, else the phantom
# ground truth.
SSRM_FROM_SEGMENT = "segment" in STAGE_RULES
SSRM_SAMPLES = SAMPLES if SSRM_FROM_SEGMENT else PHANTOM_SAMPLES
STAGE_RULES["ssrm"] = SSRM_SAMPLES


def ssrm_inputs(wildcards):
    store = ("labels.zarr",) if SSRM_FROM_SEGMENT else ("phantom", "ground_truth.zarr")
    inputs = {"labels": zarr_output(*store).format(sample=wildcards.sample)}
    if "descriptors" in rules_for(wildcards.sample):
        inputs["descriptors"] = sample_path("descriptors", "descriptors.json").format(
            sample=wildcards.sample)
    return inputs


rule ssrm:
    input:
        unpack(ssrm_inputs),
    output:
        store=zarr_output("ssrm.zarr"),
        summary=sample_path("ssrm.json"),
        record=provenance_record("ssrm"),
    params:
        stage=lambda w: sample_of(w).stages["ssrm"],
        phases=lambda w: sample_of(w).config["phases"],
        labels_source="segmentation" if SSRM_FROM_SEGMENT else "ground truth (phantom)",
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
