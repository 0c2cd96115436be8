"""Snakemake adapter: tortuosity, conductivities, scenarios and current fields of a sample's
labels (voxelyte.transport)."""
from pathlib import Path

from voxelyte import io, provenance, scripting, transport


def main(smk, log):
    sample = smk.wildcards.sample
    labels_store = Path(smk.input.labels).parent    # inputs name the stores' zarr.json
    volume = io.open_volume(labels_store, sample=sample)
    cfg = smk.params.sample_config
    summary, fields = transport.run_transport(
        volume["labels"], phases=cfg["phases"], voxel_size_um=io.volume_voxel_size_um(volume),
        measured=cfg.get("measured"), electrode_normal_axis=cfg["electrode_normal_axis"],
        sample=sample, **smk.params.stage)
    summary = {"sample": sample, "labels_source": smk.params.labels_source, **summary}
    log.info("%s: %d solves, %.1f s; tau %s", sample, summary["n_solves"],
             summary["total_time_s"],
             {p: {a: round(v["tortuosity_factor"], 3) for a, v in per.items()}
              for p, per in summary["tortuosity"].items()})
    flux_store = Path(smk.output.flux).parent
    record = provenance.make_record(
        rule=smk.rule, sample=sample, inputs={"labels": labels_store},
        outputs=[smk.output.summary, flux_store],
        params=dict(smk.params.stage, labels_source=smk.params.labels_source),
        config_hash=smk.params.config_hash, repo_dir=Path(smk.scriptdir).parents[1])
    fields.attrs["provenance"] = record
    chunks = {dim: size for dim, size in (("case", 1), ("z", 32)) if dim in fields.dims}
    io.write_zarr_atomic(fields.chunk(chunks), flux_store, num_workers=smk.threads)
    provenance.write_json_atomic(transport.clean_summary(summary), smk.output.summary)
    provenance.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
