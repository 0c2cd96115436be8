"""The report stage: a self-contained HTML page per sample and one per study.

``build_sample_report`` shows whatever stages have run for a sample (a missing stage's section
says it did not run) and writes report.json with the key numbers; ``build_study_report`` gathers
the samples' key numbers into one table (summary.csv / summary.nc) and overlays their figures.
Numbers are shown as the stages wrote them, each table cell naming its artefact and JSON key.
"""
from voxelyte.report.collect import STAGES, SampleResults, collect_sample
from voxelyte.report.html import fmt
from voxelyte.report.key_numbers import KEY_NUMBERS, key_numbers
from voxelyte.report.page import build_sample_report
from voxelyte.report.study import build_study_report, summary_table

__all__ = ["KEY_NUMBERS", "STAGES", "SampleResults", "build_sample_report", "build_study_report",
           "collect_sample", "fmt", "key_numbers", "summary_table"]
