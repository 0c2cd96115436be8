"""Simulated scanning spreading resistance microscopy (SSRM) on a voxel conductivity field.

The scanned face is insulating except a conductive window under the tip, the opposite face is the
counter electrode; the operator is :mod:`voxelyte.conduction`'s. A map needs the face block of
A⁻¹ (:mod:`.pardiso`), exactly or by tiles (:mod:`.direct`, :mod:`.tiled`); :mod:`.tip` solves
single positions, :mod:`.analysis` reads the map, :mod:`.stage` is the ``ssrm`` stage.

References
----------
Gamo et al., SI "Verification of the SSRM simulator".
"""
from voxelyte.ssrm.analysis import (carrier_isolation, field_positions, isolation_ordering,
                                    isolation_threshold, resistance_histograms)
from voxelyte.ssrm.clusters import ISOLATED_CONTRAST, geometric_isolation, isolated_clusters
from voxelyte.ssrm.direct import (BYTES_PER_VOXEL, DEPTH_PER_HALO, DIRECT_MAX_FACE_PIXELS,
                                  DIRECT_MAX_VOXELS, choose_method, estimate_memory_bytes,
                                  resistance_map)
from voxelyte.ssrm.model import (Model, build_model, model_of, scan_positions, window_offsets,
                                 window_resistance)
from voxelyte.ssrm.pardiso import Pardiso, SchurSystem, direct_solve
from voxelyte.ssrm.solvers import (DIRECT_PROBE_MAX_UNKNOWNS, amg_solve, gmg_face_solve,
                                   probe_solve, use_direct)
from voxelyte.ssrm.stage import simulate
from voxelyte.ssrm.tiled import PROBE_CHUNK, PROBE_RTOL, tiled_resistances
from voxelyte.ssrm.tip import (C_DISC, C_SQUARE, DEFAULT_RTOL, dc_resistance,
                               spreading_resistance_ohm, tip_field, tip_resistance)

__all__ = [
    "BYTES_PER_VOXEL", "C_DISC", "C_SQUARE", "DEFAULT_RTOL", "DEPTH_PER_HALO",
    "DIRECT_MAX_FACE_PIXELS", "DIRECT_MAX_VOXELS", "DIRECT_PROBE_MAX_UNKNOWNS",
    "ISOLATED_CONTRAST", "PROBE_CHUNK", "PROBE_RTOL", "Model", "Pardiso", "SchurSystem",
    "amg_solve", "build_model", "carrier_isolation", "choose_method", "dc_resistance",
    "direct_solve", "estimate_memory_bytes", "field_positions", "geometric_isolation",
    "gmg_face_solve", "isolated_clusters", "isolation_ordering", "isolation_threshold",
    "model_of", "probe_solve", "resistance_histograms", "resistance_map", "scan_positions",
    "simulate", "spreading_resistance_ohm", "tiled_resistances", "tip_field", "tip_resistance",
    "use_direct", "window_offsets", "window_resistance",
]
