"""Snakemake adapter: simulated SSRM maps of a sample's labels (voxelyte.ssrm)."""
import json
from pathlib import Path

from voxelyte import io, provenance, scripting, ssrm


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
    record = provenance.make_record(
        rule=smk.rule, sample=sample, inputs=dict(smk.input.items()),
        outputs=[store, smk.output.summary], params=params,
        config_hash=smk.params.config_hash, repo_dir=Path(smk.scriptdir).parents[1])
    ds.attrs["provenance"] = record
    io.write_zarr_atomic(ds, store, num_workers=smk.threads)
    provenance.write_json_atomic(summary, smk.output.summary)
    provenance.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
