# Study provenance: every rule run's record plus Snakemake's time/memory benchmark figures.


rule provenance:
    input:
        records=lambda w: [
            provenance_record(r).format(sample=s) for s in SAMPLES for r in rules_for(s)
        ],
    output:
        f"{RESULTS}/provenance.json",
    params:
        benchmarks=lambda w: {
            f"{r}/{s}": benchmark_path(r).format(sample=s) for s in SAMPLES for r in rules_for(s)
        },
        study=STUDY.name,
        study_config=STUDY.config,
        samples={
            s: {"file": str(STUDY.samples[s].source), "config_sha256": STUDY.samples[s].config_hash}
            for s in SAMPLES
        },
    log:
        f"{RESULTS}/logs/provenance.log",
    threads: 1
    script:
        "../scripts/provenance.py"
