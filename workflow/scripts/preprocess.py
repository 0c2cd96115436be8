"""Snakemake adapter: correct registered.zarr into corrected.zarr (voxelyte.preprocess)."""
from pathlib import Path

from voxelyte import io, preprocess, provenance, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    in_store = Path(smk.input.registered).parent    # inputs/outputs name the stores' zarr.json
    out_store = Path(smk.output.corrected).parent
    corrected = preprocess.preprocess(io.open_volume(in_store, sample=sample), **smk.params.stage)
    log.info("%s: applied %s", sample, corrected["corrected"].attrs.get("applied"))
    record = provenance.make_record(
        rule=smk.rule, sample=sample, inputs={"registered": in_store}, outputs=[out_store],
        params=smk.params.stage, config_hash=smk.params.config_hash,
        repo_dir=Path(smk.scriptdir).parents[1])
    corrected.attrs["provenance"] = record
    io.write_zarr_atomic(corrected, out_store, num_workers=smk.threads)
    provenance.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
