"""Snakemake adapter: microstructure descriptors of a sample's labels (voxelyte.descriptors)."""
from pathlib import Path

from voxelyte import contract, descriptors, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    labels_store = Path(smk.input.labels).parent    # inputs name the stores' zarr.json
    volume = contract.open_volume(labels_store, sample=sample)
    cfg = smk.params.sample_config
    scalars, tables = descriptors.compute_descriptors(
        volume["labels"], voxel_size_um=contract.volume_voxel_size_um(volume),
        phases=cfg["phases"], nominal_composition=cfg["nominal_composition"],
        electrode_normal_axis=cfg["electrode_normal_axis"],
        current_collector_side=cfg["current_collector_side"], **smk.params.stage)
    scalars = {"sample": sample, "labels_source": smk.params.labels_source, **scalars}
    written = descriptors.write_descriptors(scalars, tables, Path(smk.output.summary).parent)
    log.info("%s: %d scalars, tables %s", sample, len(scalars), sorted(tables))
    record = scripting.stage_record(
        smk, inputs={"labels": labels_store}, outputs=list(written.values()),
        params=dict(smk.params.stage, labels_source=smk.params.labels_source))
    contract.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
