"""Snakemake adapter: tortuosity, conductivities, scenarios and current fields of a sample's
labels (voxelyte.transport)."""
from pathlib import Path

from voxelyte import contract, scripting, transport


def main(smk, log):
    sample = smk.wildcards.sample
    labels_store = Path(smk.input.labels).parent    # inputs name the stores' zarr.json
    volume = contract.open_volume(labels_store, sample=sample)
    cfg = smk.params.sample_config
    summary, fields = transport.run_transport(
        volume["labels"], phases=cfg["phases"],
        voxel_size_um=contract.volume_voxel_size_um(volume), measured=cfg.get("measured"),
        electrode_normal_axis=cfg["electrode_normal_axis"], sample=sample, **smk.params.stage)
    summary = {"sample": sample, "labels_source": smk.params.labels_source, **summary}
    log.info("%s: %d solves, %.1f s; tau %s", sample, summary["n_solves"],
             summary["total_time_s"],
             {p: {a: round(v["tortuosity_factor"], 3) for a, v in per.items()}
              for p, per in summary["tortuosity"].items()})
    flux_store = Path(smk.output.flux).parent
    record = scripting.stage_record(
        smk, inputs={"labels": labels_store}, outputs=[smk.output.summary, flux_store],
        params=dict(smk.params.stage, labels_source=smk.params.labels_source))
    chunks = {dim: size for dim, size in (("case", 1), ("z", 32)) if dim in fields.dims}
    scripting.save_results(smk, fields.chunk(chunks), flux_store, record,
                           contract.to_jsonable(summary))


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
