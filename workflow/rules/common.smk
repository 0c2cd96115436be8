# Shared helpers: paths of a study's artefacts, sample lookups, stage registry.
import math
import re


RESULTS = str(STUDY.study_dir)  # results/<study>
SAMPLES = list(STUDY.samples)
PHANTOM_SAMPLES = [s for s, v in STUDY.samples.items() if v.phantom is not None]

# Rules that write a provenance record per sample, in pipeline order. Each stage's rule file
# appends its name when included.
STAGE_RULES = []


def sample_of(wildcards):
    return STUDY.samples[wildcards.sample]


def one_of(names):
    """A wildcard regex matching exactly these names (none: matches nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def sample_path(*parts):
    return "/".join([RESULTS, "{sample}", *parts])


def provenance_record(rule_name):
    return sample_path("provenance", f"{rule_name}.json")


def log_path(rule_name):
    return f"{RESULTS}/logs/{rule_name}/{{sample}}.log"


def benchmark_path(rule_name):
    return f"{RESULTS}/benchmarks/{rule_name}/{{sample}}.tsv"


def rules_for(sample):
    """Stage rules that run for a sample (the phantom rule only for phantom samples)."""
    return [r for r in STAGE_RULES if r != "phantom" or sample in PHANTOM_SAMPLES]


def study_targets():
    targets = [f"{RESULTS}/provenance.json"]
    for sample in SAMPLES:
        targets.append(f"{RESULTS}/{sample}/raw.zarr")
        if sample in PHANTOM_SAMPLES:
            targets.append(f"{RESULTS}/{sample}/phantom/ground_truth.zarr")
    return targets
