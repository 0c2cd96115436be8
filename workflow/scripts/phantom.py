"""Snakemake adapter: generate a ground-truth phantom sample (voxelyte.phantom)."""
from pathlib import Path

from voxelyte import contract, phantom, scripting


def main(smk, log):
    out_dir = Path(smk.output.bse).parent
    summary = phantom.write_phantom(out_dir, smk.params.phantom, smk.wildcards.sample,
                                    phases=smk.params.phases)
    log.info("achieved volume fractions: %s", summary["volume_fraction"])
    record = scripting.stage_record(
        smk, inputs={}, outputs=[smk.output.bse, smk.output.se, Path(smk.output.truth).parent,
                                 smk.output.summary, smk.output.sample_file],
        params=smk.params.phantom)
    contract.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
