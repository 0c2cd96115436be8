"""The report stage: a self-contained HTML page per sample and one per study (voxelyte.report).

``build_sample_report(results/<study>/<sample>, .../report.html, study=...)`` shows whatever stages
have run for the sample (a missing stage's section says it did not run); ``build_study_report``
gathers the samples' key numbers into one table (exported as summary.csv / summary.nc) and
overlays their figures. Numbers are shown as the stages wrote them (see :mod:`.build`).
"""
from voxelyte.report.build import build_sample_report, fmt, key_numbers
from voxelyte.report.collect import STAGES, SampleResults, collect_sample
from voxelyte.report.study import build_study_report, summary_table

__all__ = ["STAGES", "SampleResults", "build_sample_report", "build_study_report",
           "collect_sample", "fmt", "key_numbers", "summary_table"]
