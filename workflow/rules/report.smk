# Report (voxelyte.report): a self-contained HTML page per sample showing whatever stages ran for
# it, and one study page with every sample's key numbers (exported as summary.csv / summary.nc).
REPORTED_SAMPLES = SAMPLES
STAGE_RULES["report"] = REPORTED_SAMPLES

report: "../report/workflow.rst"


def upstream_records(wildcards):
    """Provenance records of every other stage that runs for the sample (every rule in
    STAGE_RULES, evaluate included for phantoms): the report follows them all (and is remade
    when any of them is)."""
    return [provenance_record(r).format(sample=wildcards.sample)
            for r in rules_for(wildcards.sample) if r != "report"]


rule report:
    input:
        records=upstream_records,
    output:
        html=report(artefact_output("report"), caption="../report/sample_report.rst",
                    category="Reports", labels={"sample": "{sample}", "page": "sample report"}),
        summary=artefact_output("report_summary"),
        record=provenance_record("report"),
    params:
        sample_config=lambda w: sample_of(w).config,
        study=STUDY.name,
        benchmarks_dir=f"{RESULTS}/benchmarks",
        config_hash=lambda w: sample_of(w).config_hash,
    wildcard_constraints:
        sample=one_of(REPORTED_SAMPLES),
    log:
        log_path("report"),
    benchmark:
        benchmark_path("report")
    threads: rule_threads("report", 1)
    resources:
        mem_mb=rule_mem_mb("report", 1000, 1),
        runtime=rule_runtime_min("report", 2, 0.005),
    script:
        "../scripts/report.py"


rule study_report:
    input:
        reports=expand(artefact_output("report_summary"), sample=REPORTED_SAMPLES),
        pages=expand(artefact_output("report"), sample=REPORTED_SAMPLES),
        provenance=f"{RESULTS}/provenance.json",
    output:
        html=report(f"{RESULTS}/report.html", caption="../report/study_report.rst",
                    category="Reports", labels={"sample": "all", "page": "study report"}),
        csv=report(f"{RESULTS}/summary.csv", caption="../report/summary.rst",
                   category="Reports", labels={"sample": "all", "page": "summary table"}),
        netcdf=f"{RESULTS}/summary.nc",
        record=f"{RESULTS}/report.provenance.json",
    params:
        samples=REPORTED_SAMPLES,
        sample_configs={s: STUDY.samples[s].config for s in REPORTED_SAMPLES},
        study=STUDY.name,
        description=STUDY.config.get("description", ""),
    log:
        f"{RESULTS}/logs/study_report.log",
    threads: 1
    resources:
        mem_mb=2000,
    script:
        "../scripts/report.py"
