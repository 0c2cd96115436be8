"""Steady-state conduction on a voxel grid: the finite-volume 7-point operator (harmonic-mean face
conductances between voxel centres, Dirichlet faces half a voxel out) and its solvers.

- :mod:`.conductances`: conductivity fields, face conductances, the percolating network;
- :mod:`.operator`: the assembled CSR system and the matrix-free grid operator;
- :mod:`.kernels`: the numba kernels; :mod:`.multigrid`: the geometric multigrid V-cycle;
- :mod:`.cg`: multigrid-CG (default) and CSR + AMG-CG (reference); :mod:`.deflation`: cluster
  deflation; :mod:`.problem`: :class:`ConductionProblem` and :func:`effective_conductivity`.
"""
from .cg import DEFAULT_RTOL, gmg_solve, solve
from .conductances import UM_TO_CM, conductivity_array, face_conductances, percolating_network
from .deflation import ClusterDeflation
from .multigrid import COARSE_SCALE, COARSEST_CELLS, SMOOTHING_SWEEPS, GeometricMultigrid
from .operator import LinearSystem, assemble, grid_operator
from .problem import (FLOAT32_ABOVE_VOXELS, ConductionProblem, effective_conductivities,
                      effective_conductivity, effective_conductivity_gmg)

__all__ = ["UM_TO_CM", "DEFAULT_RTOL", "COARSE_SCALE", "COARSEST_CELLS", "SMOOTHING_SWEEPS",
           "FLOAT32_ABOVE_VOXELS", "conductivity_array", "face_conductances",
           "percolating_network", "LinearSystem", "assemble", "grid_operator",
           "GeometricMultigrid", "ClusterDeflation", "solve", "gmg_solve", "ConductionProblem",
           "effective_conductivity", "effective_conductivities", "effective_conductivity_gmg"]
