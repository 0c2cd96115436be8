# Shared helpers: paths of a study's artefacts, sample lookups, stage registry.
import math
import re


RESULTS = str(STUDY.study_dir)  # results/<study>
SAMPLES = list(STUDY.samples)
PHANTOM_SAMPLES = [s for s, v in STUDY.samples.items() if v.phantom is not None]

# Rules that write a provenance record per sample, in pipeline order: rule name -> the samples it
# runs for. Each stage's rule file adds itself when included.
STAGE_RULES = {}


def sample_of(wildcards):
    return STUDY.samples[wildcards.sample]


def one_of(names):
    """A wildcard regex matching exactly these names (none: matches nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def sample_path(*parts):
    return "/".join([RESULTS, "{sample}", *parts])


def zarr_output(*parts):
    """A zarr store as a rule output, declared by its root metadata file ``zarr.json``: a
    ``directory()`` output would get Snakemake's timestamp file inside the store."""
    return sample_path(*parts, "zarr.json")


def provenance_record(rule_name):
    return sample_path("provenance", f"{rule_name}.json")


def log_path(rule_name):
    return f"{RESULTS}/logs/{rule_name}/{{sample}}.log"


def benchmark_path(rule_name):
    return f"{RESULTS}/benchmarks/{rule_name}/{{sample}}.tsv"


def rules_for(sample):
    """Stage rules that run for a sample (e.g. the phantom rule only for phantom samples)."""
    return [rule for rule, samples in STAGE_RULES.items() if sample in samples]


def study_targets():
    targets = [f"{RESULTS}/provenance.json"]
    for sample in SAMPLES:
        targets.extend(provenance_record(rule).format(sample=sample) for rule in rules_for(sample))
    return targets
