# Shared helpers: paths of a study's artefacts, sample lookups, stage registry.
import math
import re

from voxelyte.contract import ARTEFACTS


RESULTS = str(STUDY.study_dir)  # results/<study>
SAMPLES = list(STUDY.samples)
PHANTOM_SAMPLES = [s for s, v in STUDY.samples.items() if v.phantom is not None]
# Samples that enter as a segmented label volume skip the image stages (register, preprocess,
# segment); every other sample goes through them.
LABEL_SAMPLES = [s for s, v in STUDY.samples.items() if v.labels is not None]
IMAGE_SAMPLES = [s for s in SAMPLES if s not in LABEL_SAMPLES]

# Rules that write a provenance record per sample, in pipeline order: rule name -> the samples it
# runs for. Each stage's rule file adds itself when included.
STAGE_RULES = {}


def sample_of(wildcards):
    return STUDY.samples[wildcards.sample]


def labels_source(wildcards):
    """Where a sample's labels.zarr comes from, for the stages that read it."""
    s = sample_of(wildcards)
    if s.labels is not None:
        return f"label file {s.labels['path']}"
    return f"segment stage ({s.stages['segment']['method']})"


def one_of(names):
    """A wildcard regex matching exactly these names (none: matches nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def sample_path(*parts):
    return "/".join([RESULTS, "{sample}", *parts])


def zarr_output(*parts):
    """A zarr store as a rule output, declared by its root metadata file ``zarr.json``: a
    ``directory()`` output would get Snakemake's timestamp file inside the store."""
    return sample_path(*parts, "zarr.json")


def artefact_output(key):
    """Path of a registered artefact (voxelyte.contract.ARTEFACTS) as a rule input or output; a
    zarr store by its zarr.json."""
    art = ARTEFACTS[key]
    return zarr_output(art.path) if art.is_store else sample_path(art.path)


def artefact_of(key, wildcards):
    """artefact_output(key) for one sample."""
    return artefact_output(key).format(sample=wildcards.sample)


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
    targets = [f"{RESULTS}/provenance.json", f"{RESULTS}/report.html"]  # study report
    for sample in SAMPLES:
        targets.extend(provenance_record(rule).format(sample=sample) for rule in rules_for(sample))
    return targets


# --------------------------------------------------------------------------- resources
# Each rule declares threads, mem_mb and runtime (minutes) from the sample's voxel count:
# base + per-Mvoxel cost, the per-Mvoxel figures measured by the benchmarks under benchmarks/
# (peak RSS and wall time on 2 cores, with a safety factor). A retry (--retries) scales memory
# and time with the attempt number. A sample file's `resources: {<rule>: {...}}` overrides.
_MVOXELS = {}


def sample_mvoxels(sample):
    """Voxels of a sample's volume (z·y·x, after the crop) in millions, from the phantom shape
    or the raw inputs' headers (read lazily, once)."""
    if sample not in _MVOXELS:
        s = STUDY.samples[sample]
        if s.phantom is not None:
            shape = s.phantom["shape_zyx"]
        else:
            try:
                from voxelyte import ingest

                first = s.inputs[0] if s.inputs else dict(s.labels, name="labels")
                stack, _ = ingest.open_channel(first, sample=sample)
                shape = list(stack.shape)
            except Exception:  # unreadable here: the ingest rule reports it properly
                shape = [512, 1024, 1024]
        for i, ax in enumerate("zyx"):
            lo, hi = (s.config.get("crop") or {}).get(ax, (0, shape[i]))
            shape[i] = max(1, min(hi, shape[i]) - lo)
        _MVOXELS[sample] = math.prod(shape) / 1e6
    return _MVOXELS[sample]


def _override(rule_name, wildcards, key):
    return (sample_of(wildcards).config.get("resources") or {}).get(rule_name, {}).get(key)


#: Below this size (Mvoxel) a job runs on one thread: interpreter and I/O overheads dominate, and
#: jobs of several samples running side by side use the cores better than one job on all of them.
SMALL_MVOXELS = 16


def rule_threads(rule_name, default=2):
    """Threads of a rule (numba, BLAS and dask follow them: voxelyte.scripting.run): the
    sample file's override, else 1 for small volumes, else ``default``."""
    def threads(wildcards):
        given = _override(rule_name, wildcards, "threads")
        if given:
            return int(given)
        return 1 if sample_mvoxels(wildcards.sample) < SMALL_MVOXELS else default
    return threads


def rule_mem_mb(rule_name, base_mb, mb_per_mvoxel):
    def mem_mb(wildcards, attempt=1):
        given = _override(rule_name, wildcards, "mem_mb")
        if given:
            return int(given)
        return int((base_mb + mb_per_mvoxel * sample_mvoxels(wildcards.sample)) * attempt)
    return mem_mb


def rule_runtime_min(rule_name, base_min, min_per_mvoxel):
    def runtime(wildcards, attempt=1):
        given = _override(rule_name, wildcards, "runtime_min")
        if given:
            return max(1, int(math.ceil(given)))
        minutes = base_min + min_per_mvoxel * sample_mvoxels(wildcards.sample)
        return max(1, int(math.ceil(minutes * attempt)))
    return runtime


def check_resource_overrides():
    """A sample file's `resources` may only name rules that run for it."""
    for name, s in STUDY.samples.items():
        for rule_name in (s.config.get("resources") or {}):
            if rule_name not in rules_for(name):
                raise WorkflowError(
                    f"voxelyte configuration error: sample '{name}' ({s.source}), field "
                    f"'resources.{rule_name}': expected one of {rules_for(name)}, "
                    f"found '{rule_name}'")


def rule_config_hash(rule_name, *sample_keys):
    """sha256 of the part of a sample's config a rule reads (its stage parameters and the named
    top-level sample fields), for the rule's provenance record. A params entry: changing another
    stage's parameters (or `resources`) does not rerun this rule."""
    from voxelyte.config import config_hash

    def hash_of(wildcards):
        s = sample_of(wildcards)
        used = {key: s.config.get(key) for key in sample_keys}
        used["stages"] = {rule_name: s.stages.get(rule_name)}
        return config_hash(used)
    return hash_of
