"""Snakemake adapter: simulated SSRM maps of a sample's labels (voxelyte.ssrm)."""
import json
from pathlib import Path

from voxelyte import io, scripting, ssrm


def main(smk, log):
    sample = smk.wildcards.sample
    labels_store = Path(smk.input.labels).parent    # inputs name the stores' zarr.json
    volume = io.open_volume(labels_store, sample=sample)
    labels = volume["labels"].values
    descriptors = None
    if "descriptors" in smk.input.keys():
        descriptors = json.loads(Path(smk.input.descriptors).read_text())

    def progress(done, total):
        log.info("%s: %d / %d tip positions", sample, done, total)

    ds, summary = ssrm.simulate(labels, smk.params.phases, io.volume_voxel_size_um(volume),
                                smk.params.stage, sample=sample, descriptors=descriptors,
                                progress=progress)
    summary = {"sample": sample, "labels_source": smk.params.labels_source,
               **ssrm.json_clean(summary)}
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
