"""Snakemake adapter: gather every rule run's provenance record of a study into one file."""
from voxelyte import provenance, scripting


def main(smk, log):
    doc = provenance.gather(smk.input.records, smk.params.benchmarks, study=smk.params.study,
                            out_path=smk.output[0], study_config=smk.params.study_config,
                            samples=smk.params.samples)
    log.info("gathered %d rule runs", len(doc["runs"]))


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
