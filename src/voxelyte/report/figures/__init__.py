"""Report figures. Each takes plain data (dicts, DataFrames, 2D arrays) of one or several samples
and returns a PNG data URI, or None when there is nothing to draw. Phase colours come from
:func:`voxelyte.plotting.phase_colors` (one phase, one colour, in every figure); overlaid samples
differ by line style, marker and hatch (:func:`voxelyte.plotting.sample_styles`)."""
from voxelyte.report.figures.images import field_slices_figure, slices_figure
from voxelyte.report.figures.microstructure import (chord_length_figure, interface_figure,
                                                    profile_figure, size_figure,
                                                    volume_fraction_figure)
from voxelyte.report.figures.scores import drift_figure, iou_figure
from voxelyte.report.figures.ssrm import ssrm_figure
from voxelyte.report.figures.transport import kappa_figure, tortuosity_axes_figure

__all__ = ["chord_length_figure", "drift_figure", "field_slices_figure", "interface_figure",
           "iou_figure", "kappa_figure", "profile_figure", "size_figure", "slices_figure",
           "ssrm_figure", "tortuosity_axes_figure", "volume_fraction_figure"]
