"""Snakemake adapter: simulated SSRM maps of a sample's labels (voxelyte.ssrm)."""
from pathlib import Path

from voxelyte import contract, scripting, ssrm


def main(smk, log):
    sample = smk.wildcards.sample
    labels_store = Path(smk.input.labels).parent    # inputs name the stores' zarr.json
    volume = contract.open_volume(labels_store, sample=sample)

    def progress(done, total):
        log.info("%s: %d / %d tip positions", sample, done, total)

    ds, summary = ssrm.simulate(volume["labels"].values, smk.params.phases,
                                contract.volume_voxel_size_um(volume), **smk.params.stage,
                                sample=sample, progress=progress)
    summary = {"sample": sample, "labels_source": smk.params.labels_source,
               **contract.to_jsonable(summary)}
    conn = summary["connectivity"]
    log.info("%s: %d positions (%s, %.1f s); isolated %s surface pixels: %s (SSRM) vs %s "
             "(geometry)", sample, summary["n_positions"], summary["method"],
             summary["solver"]["time_s"], conn["carrier_phase"], conn["isolated_fraction_ssrm"],
             conn["isolated_fraction_geometric"])
    store = Path(smk.output.store).parent
    params = dict(smk.params.stage, labels_source=smk.params.labels_source)
    record = scripting.stage_record(smk, inputs=dict(smk.input.items()),
                                    outputs=[store, smk.output.summary], params=params)
    scripting.save_results(smk, ds, store, record, summary)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
