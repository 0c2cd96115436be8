"""The register stage: in-plane slice drift of PFIB-SEM stacks estimated from neighbour-slice
pairs (sub-pixel phase correlation, or TurboReg for rigid / scaled-rotation / affine) and
corrected with the same transform for every channel (README, *Stage notes: Registration*).

Drift convention (as ``voxelyte.phantom.DRIFT_CONVENTION``): ``raw[z](T_z(p)) = ideal[z](p)``;
translation: ``raw[z](y, x) = ideal[z](y - dy_z, x - dx_z)``, slice z shifted by ``-d_z``.
"""
from voxelyte.register.apply import apply_drift, crop_bounds_px
from voxelyte.register.drift import AFFINE_COLUMNS, DRIFT_COLUMNS, estimate_drift
from voxelyte.register.pairs import (METHODS, STACKREG_SMOOTH_SIGMA_PX, correlate_pair,
                                     prepare_slice)
from voxelyte.register.stage import drift_qc_figure, register, write_drift_table

__all__ = ["AFFINE_COLUMNS", "DRIFT_COLUMNS", "METHODS", "STACKREG_SMOOTH_SIGMA_PX",
           "apply_drift", "correlate_pair", "crop_bounds_px", "drift_qc_figure",
           "estimate_drift", "prepare_slice", "register", "write_drift_table"]
