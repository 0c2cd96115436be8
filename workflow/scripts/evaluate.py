"""Snakemake adapter: score a phantom's registration and segmentation against its ground truth
(voxelyte.evaluate)."""
from pathlib import Path

import pandas as pd

from voxelyte import contract, evaluate, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    stores = {key: Path(getattr(smk.input, key)).parent      # inputs name the zarr.json
              for key in ("corrected", "labels", "ground_truth")}
    volumes = {key: contract.open_volume(path, sample=sample) for key, path in stores.items()}
    document = evaluate.evaluate(
        volumes["corrected"], volumes["labels"], volumes["ground_truth"],
        pd.read_csv(smk.input.drift_table), phases=smk.params.phases,
        settings=dict(smk.params.stage), sample=sample, num_workers=smk.threads,
        qc_path=smk.output.qc)
    record = scripting.stage_record(
        smk, inputs={**stores, "drift_table": smk.input.drift_table},
        outputs=[smk.output.evaluation, smk.output.qc], params=dict(smk.params.stage))
    contract.write_json_atomic(document, smk.output.evaluation)
    contract.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
