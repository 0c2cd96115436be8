# voxelyte: raw tomography stacks of battery composite electrodes -> descriptors, transport, SSRM.
# This file only loads and validates the study, then includes one rule file per stage.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from voxelyte import config as vxconfig
from voxelyte.errors import InputError

min_version("9.0")


# The demo study unless a study is given (--configfile merges into, not replaces, a configfile).
if "samples" not in config:

    configfile: "config/config.yaml"


try:
    # our own validation first: one message naming the file and field
    STUDY = vxconfig.load_study(config, workdir=Path("."))
except InputError as err:
    raise WorkflowError(f"voxelyte configuration error: {err}") from None
validate(config, str(vxconfig.schema_path("config")))  # Snakemake's validate, defaults filled


include: "workflow/rules/common.smk"
include: "workflow/rules/phantom.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/register.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/descriptors.smk"
include: "workflow/rules/ssrm.smk"
include: "workflow/rules/transport.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/provenance.smk"

check_resource_overrides()  # after every stage rule registered itself


rule all:
    input:
        study_targets(),
    default_target: True
