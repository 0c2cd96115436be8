"""Snakemake adapter: microstructure descriptors of a sample's labels (voxelyte.descriptors)."""
from pathlib import Path

from voxelyte import descriptors, io, provenance, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    labels_store = Path(smk.input.labels).parent    # inputs name the stores' zarr.json
    volume = io.open_volume(labels_store, sample=sample)
    labels = volume["labels"]
    cfg = smk.params.sample_config
    scalars, tables = descriptors.compute_descriptors(
        labels, voxel_size_um=io.volume_voxel_size_um(volume), phases=cfg["phases"],
        nominal_composition=cfg["nominal_composition"],
        electrode_normal_axis=cfg["electrode_normal_axis"],
        current_collector_side=cfg["current_collector_side"], **smk.params.stage)
    scalars = {"sample": sample, "labels_source": smk.params.labels_source, **scalars}
    out_dir = Path(smk.output.summary).parent
    written = descriptors.write_descriptors(scalars, tables, out_dir)
    log.info("%s: %d scalars, tables %s", sample, len(scalars), sorted(tables))
    record = scripting.stage_record(
        smk, inputs={"labels": labels_store}, outputs=list(written.values()),
        params=dict(smk.params.stage, labels_source=smk.params.labels_source))
    provenance.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
