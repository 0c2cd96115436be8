"""Snakemake adapter: correct registered.zarr into corrected.zarr (voxelyte.preprocess)."""
from pathlib import Path

from voxelyte import contract, preprocess, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    in_store = Path(smk.input.registered).parent    # inputs/outputs name the stores' zarr.json
    out_store = Path(smk.output.corrected).parent
    registered = contract.open_volume(in_store, sample=sample)
    corrected = preprocess.preprocess(registered, **smk.params.stage)
    log.info("%s: applied %s", sample, corrected["corrected"].attrs.get("applied"))
    record = scripting.stage_record(smk, inputs={"registered": in_store}, outputs=[out_store],
                                    params=smk.params.stage)
    scripting.save_results(smk, corrected, out_store, record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
