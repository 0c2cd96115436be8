"""Snakemake adapter: the per-sample report (rule report) and the study report (rule
study_report) of voxelyte.report."""
from pathlib import Path

from voxelyte import provenance, report, scripting


def main(smk, log):
    repo = Path(smk.scriptdir).parents[1]
    if smk.rule == "study_report":
        html = Path(smk.output.html)
        table = report.build_study_report(
            html.parent, html, study=smk.params.study, samples=list(smk.params.samples),
            sample_configs=dict(smk.params.sample_configs), description=smk.params.description,
            provenance_path=smk.input.provenance)
        log.info("study report: %d samples, %d key numbers, %.2f MB", len(table),
                 len(table.columns), html.stat().st_size / 1e6)
        record = provenance.make_record(
            rule=smk.rule, sample=None, inputs={"reports": list(smk.input.reports),
                                                "provenance": smk.input.provenance},
            outputs=[smk.output.html, smk.output.csv, smk.output.netcdf],
            params={"samples": list(smk.params.samples)}, repo_dir=repo)
        provenance.write_json_atomic(record, smk.output.record)
        return
    sample = smk.wildcards.sample
    html = Path(smk.output.html)
    doc = report.build_sample_report(
        html.parent, html, study=smk.params.study, sample=sample,
        config=dict(smk.params.sample_config), benchmarks_dir=smk.params.benchmarks_dir,
        out_json=smk.output.summary)
    ran = [s for s, done in doc["stages"].items() if done]
    log.info("%s: report of stages %s, %.2f MB", sample, ran, html.stat().st_size / 1e6)
    record = provenance.make_record(
        rule=smk.rule, sample=sample, inputs={"records": list(smk.input.records)},
        outputs=[smk.output.html, smk.output.summary], params={"stages_shown": ran},
        config_hash=smk.params.config_hash, repo_dir=repo)
    provenance.write_json_atomic(record, smk.output.record)


scripting.run(snakemake, main)  # noqa: F821 (snakemake is injected by Snakemake)
