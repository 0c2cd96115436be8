"""Snakemake adapter: read a sample's raw channel stacks into raw.zarr (voxelyte.ingest)."""
from pathlib import Path

from voxelyte import ingest, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    stack = ingest.read_raw_stack(smk.params.inputs, sample=sample,
                                  voxel_size_um=smk.params.voxel_size_um, crop=smk.params.crop,
                                  chunks_zyx=tuple(smk.params.stage["chunks_zyx"]))
    log.info("%s: channels %s, shape %s, voxel size %s um (%s)", sample,
             list(stack.channel.values), stack.shape, stack.attrs["voxel_size_um"],
             stack.attrs["voxel_size_source"])
    store = Path(smk.output.raw).parent  # the output is the store's zarr.json
    record = scripting.stage_record(
        smk, inputs={c["name"]: c["path"] for c in smk.params.inputs}, outputs=[store],
        params=dict(smk.params.stage, crop=smk.params.crop))
    dataset = stack.to_dataset()
    dataset.attrs["sample"] = sample
    scripting.save_results(smk, dataset, store, record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
