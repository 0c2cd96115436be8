"""Snakemake adapter: register the slices of raw.zarr (voxelyte.register)."""
from pathlib import Path

from voxelyte import contract, register, scripting


def main(smk, log):
    sample = smk.wildcards.sample
    raw_store = Path(smk.input.raw).parent          # inputs/outputs name the stores' zarr.json
    out_store = Path(smk.output.registered).parent
    raw = contract.open_volume(raw_store, sample=sample)
    registered, drift = register.register(raw, **smk.params.stage, num_workers=smk.threads)
    log.info("%s (%s): drift at last slice dy %.2f px, dx %.2f px, rotation %.3f deg; %d invalid "
             "slices", sample, drift.attrs.get("method"), drift["dy_px"].iloc[-1],
             drift["dx_px"].iloc[-1], drift["rotation_deg"].iloc[-1],
             int((~drift["valid"]).sum()))
    record = scripting.stage_record(smk, inputs={"raw": raw_store},
                                    outputs=[out_store, smk.output.drift, smk.output.qc],
                                    params=smk.params.stage)
    registered.attrs["provenance"] = record
    contract.write_zarr_atomic(registered, out_store, num_workers=smk.threads)
    register.write_drift_table(drift, smk.output.drift)
    register.drift_qc_figure(raw["raw"], contract.open_volume(out_store)["registered"], drift,
                             smk.output.qc)
    contract.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
