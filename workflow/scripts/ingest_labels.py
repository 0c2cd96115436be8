"""Snakemake adapter: a sample's segmented label volume into labels.zarr (voxelyte.ingest)."""
from pathlib import Path

from voxelyte import ingest, scripting


def main(smk, log):
    sample, spec = smk.wildcards.sample, smk.params.labels
    labels = ingest.read_label_volume(
        spec, smk.params.phases, sample=sample, voxel_size_um=smk.params.voxel_size_um,
        crop=smk.params.crop, chunks_zyx=tuple(smk.params.stage["chunks_zyx"]))
    labels.attrs["sample"] = sample
    log.info("%s: label file %s, values %s, shape %s, voxel size %s um (%s)", sample,
             spec["path"], labels.attrs["label_file"]["values"], labels["labels"].shape,
             labels.attrs["voxel_size_um"], labels.attrs["voxel_size_source"])
    store = Path(smk.output.labels).parent  # the output is the store's zarr.json
    record = scripting.stage_record(
        smk, inputs={"label_file": spec["path"]}, outputs=[store],
        params=dict(smk.params.stage, crop=smk.params.crop,
                    values={str(k): v for k, v in spec["values"].items()}))
    labels.attrs["label_file"]["sha256"] = next(
        i["sha256"] for i in record["inputs"] if i["name"] == "label_file")
    scripting.save_results(smk, labels, store, record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
