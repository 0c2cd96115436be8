"""Snakemake adapter: read a sample's raw channel stacks into raw.zarr (voxelyte.io)."""
from pathlib import Path

from voxelyte import io, provenance, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    stack = io.read_raw_stack(smk.params.inputs, sample=sample,
                              voxel_size_um=smk.params.voxel_size_um, crop=smk.params.crop,
                              chunks_zyx=tuple(smk.params.stage["chunks_zyx"]))
    log.info("%s: channels %s, shape %s, voxel size %s um (%s)", sample,
             list(stack.channel.values), stack.shape, stack.attrs["voxel_size_um"],
             stack.attrs["voxel_size_source"])
    record = provenance.make_record(
        rule=smk.rule, sample=sample, inputs={c["name"]: c["path"] for c in smk.params.inputs},
        outputs=[Path(smk.output.raw).parent], params=dict(smk.params.stage, crop=smk.params.crop),
        config_hash=smk.params.config_hash, repo_dir=Path(smk.scriptdir).parents[1])
    dataset = stack.to_dataset()
    dataset.attrs["sample"] = sample
    dataset.attrs["provenance"] = record
    store = Path(smk.output.raw).parent  # the output is the store's zarr.json
    io.write_zarr_atomic(dataset, store, num_workers=smk.threads)
    provenance.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
