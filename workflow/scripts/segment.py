"""Snakemake adapter: segment corrected.zarr into labels.zarr (voxelyte.segment)."""
from pathlib import Path

import pandas as pd

from voxelyte import contract, scripting, segment


def main(smk, log):
    sample, stage = smk.wildcards.sample, dict(smk.params.stage)
    in_store, out_store = Path(smk.input.corrected).parent, Path(smk.output.labels).parent
    corrected = contract.open_volume(in_store, sample=sample)
    inputs, truth, drift = {"corrected": in_store}, None, None
    if "truth" in smk.input.keys():           # phantom scribbles come from the ground truth
        inputs.update(truth=Path(smk.input.truth).parent, drift=smk.input.drift)
        truth = contract.open_volume(inputs["truth"], sample=sample)
        drift = pd.read_csv(smk.input.drift)
    elif smk.params.annotations and stage["method"] == "trainable":
        inputs["annotations"] = smk.params.annotations["path"]
    labels, info, model = segment.segment_sample(
        corrected, phases=smk.params.phases, settings=stage, annotations=smk.params.annotations,
        ground_truth=truth, drift=drift, sample=sample, num_workers=smk.threads)
    segment.write_model(model, info, smk.output.model)
    segment.qc_figure(corrected, labels, info, smk.output.qc)
    record = scripting.stage_record(
        smk, inputs=inputs,
        outputs=[out_store, smk.output.summary, smk.output.qc, smk.output.model],
        params=dict(stage, annotations=smk.params.annotations))
    scripting.save_results(smk, labels, out_store, record, info)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
