"""Snakemake adapter: the per-sample report (rule report) and the study report (rule
study_report) of voxelyte.report."""
from pathlib import Path

from voxelyte import provenance, report, scripting
from voxelyte.contract import write_json_atomic


def study_report(smk, log):
    html = Path(smk.output.html)
    table = report.build_study_report(
        html.parent, html, study=smk.params.study, samples=list(smk.params.samples),
        sample_configs=dict(smk.params.sample_configs), description=smk.params.description,
        provenance_path=smk.input.provenance)
    log.info("study report: %d samples, %d key numbers", len(table), len(table.columns))
    write_json_atomic(provenance.make_record(
        rule=smk.rule, sample=None, inputs={"reports": list(smk.input.reports),
                                            "provenance": smk.input.provenance},
        outputs=[smk.output.html, smk.output.csv, smk.output.netcdf],
        params={"samples": list(smk.params.samples)}, repo_dir=Path(smk.scriptdir).parents[1]),
        smk.output.record)


def sample_report(smk, log):
    html = Path(smk.output.html)
    doc = report.build_sample_report(
        html.parent, html, study=smk.params.study, sample=smk.wildcards.sample,
        config=dict(smk.params.sample_config), benchmarks_dir=smk.params.benchmarks_dir,
        out_json=smk.output.summary)
    ran = [s for s, done in doc["stages"].items() if done]
    log.info("%s: report of stages %s", smk.wildcards.sample, ran)
    write_json_atomic(scripting.stage_record(
        smk, inputs={"records": list(smk.input.records)},
        outputs=[smk.output.html, smk.output.summary], params={"stages_shown": ran}),
        smk.output.record)


scripting.run(snakemake, lambda smk, log: (  # noqa: F821 (snakemake is injected by Snakemake)
    study_report if smk.rule == "study_report" else sample_report)(smk, log))
