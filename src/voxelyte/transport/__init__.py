"""Transport stage: flux-based tortuosity factors and effective conductivities of a labelled
microstructure (:mod:`voxelyte.conduction`), the random-walk τ (:mod:`voxelyte.random_walk`)
beside them, κ_exp vs κ_sim, "what if" scenarios and the current-density fields.

- :mod:`.properties`: :func:`tortuosity`, :func:`multiphase_conductivity`, κ;
- :mod:`.solves`: :class:`SolveCache`, the solves they share;
- :mod:`.stage`: :func:`run_transport`, composed of the above; :mod:`.memory`: its estimate.
"""
from voxelyte.contract import CONDUCTIVITY_KINDS as KINDS

from .memory import (BASE_MEMORY_GB, FIELD_BYTES_PER_VOXEL, SOLVE_BYTES_PER_VOXEL,
                     STAGE_BYTES_PER_VOXEL, check_memory, estimate_memory_gb)
from .properties import (bulk_conductivities, kappa_comparison, kappa_experimental,
                         label_counts, multiphase_conductivity, tortuosity)
from .solves import SolveCache, one_hot_lut, solver_info
from .stage import apply_scenario, case_lut, central_crop, current_fields, run_transport

__all__ = ["KINDS", "BASE_MEMORY_GB", "FIELD_BYTES_PER_VOXEL", "SOLVE_BYTES_PER_VOXEL",
           "STAGE_BYTES_PER_VOXEL", "check_memory", "estimate_memory_gb",
           "bulk_conductivities", "kappa_comparison", "kappa_experimental", "label_counts",
           "multiphase_conductivity", "tortuosity", "SolveCache", "one_hot_lut", "solver_info",
           "apply_scenario", "case_lut", "central_crop", "current_fields", "run_transport"]
