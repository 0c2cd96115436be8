"""Study and sample configuration: load, validate against the JSON schemas, fill defaults.

A study config (``config/config.yaml``) names the study, where results go, and its samples
(name -> sample file). A sample file (``config/samples/<name>.yaml``) describes one sample.
Stage parameters merge as: schema defaults < study ``stages`` < sample ``stages``.

Every problem raises :class:`voxelyte.errors.InputError` naming the file and the field, with what
was expected and what was found.
"""
from voxelyte.config.schema import (SCHEMA_NAMES, deep_merge, load_schema, load_yaml,
                                    phantom_defaults, phantom_schema, resolve_stages, schema_path,
                                    stage_defaults, validate)
from voxelyte.config.study import (PHANTOM_CHANNELS, PHANTOM_PHASES, Sample, Study, config_hash,
                                   load_sample, load_study, measured_from_table)

__all__ = ["SCHEMA_NAMES", "PHANTOM_CHANNELS", "PHANTOM_PHASES", "Sample", "Study",
           "config_hash", "deep_merge", "load_sample", "load_schema", "load_study", "load_yaml",
           "measured_from_table", "phantom_defaults", "phantom_schema", "resolve_stages",
           "schema_path", "stage_defaults", "validate"]
