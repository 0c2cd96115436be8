"""Memory estimate of the transport stage, and the limit check that suggests a crop."""
from __future__ import annotations

import numpy as np

from voxelyte.errors import InputError

#: Peak memory of one conduction solve with its current field, bytes per voxel of the volume, by
#: preconditioner (None = the conduction default, gmg). Measured as peak RSS above a warmed-up
#: interpreter, 96³–160³ phantom volumes, solve + field: gmg 74–89 B, pyamg "sa" 95–157 B; the
#: values add margin for denser phases.
SOLVE_BYTES_PER_VOXEL = {"gmg": 150.0, "sa": 250.0}
#: Labels (1 B), the phase mask of the random walk (1 B) and the conductivity field (8 B).
STAGE_BYTES_PER_VOXEL = 10.0
#: Each saved flux case keeps |j| and j_axis as float32 (8 B per voxel).
FIELD_BYTES_PER_VOXEL = 8.0
#: The interpreter with numpy, scipy, numba, xarray, zarr loaded (GB).
BASE_MEMORY_GB = 0.5


def estimate_memory_gb(shape_zyx, *, n_field_cases: int = 0, preconditioner: str | None = None
                       ) -> float:
    """Peak memory (GB) of the transport stage on a volume: one solve at a time
    (:data:`SOLVE_BYTES_PER_VOXEL`), the stage's own per-voxel arrays, the saved current fields
    and the interpreter.

    Parameters
    ----------
    shape_zyx : sequence of 3 int
    n_field_cases : int
        Saved current fields.
    preconditioner : str, optional
        The solver's preconditioner (None: gmg).

    Returns
    -------
    float
    """
    n = float(np.prod([int(s) for s in shape_zyx]))
    per_voxel = (SOLVE_BYTES_PER_VOXEL.get(str(preconditioner or "gmg").lower(), 200.0)
                 + STAGE_BYTES_PER_VOXEL + FIELD_BYTES_PER_VOXEL * n_field_cases)
    return BASE_MEMORY_GB + n * per_voxel / 1e9


def check_memory(shape_zyx, max_memory_gb: float | None, *, sample: str | None = None,
                 n_field_cases: int = 0, preconditioner: str | None = None) -> float:
    """Check :func:`estimate_memory_gb` against a limit.

    Parameters
    ----------
    shape_zyx : sequence of 3 int
    max_memory_gb : float or None
        The limit; None = no limit.
    sample : str, optional
        Named in the error.
    n_field_cases : int
    preconditioner : str, optional

    Returns
    -------
    float
        The estimate (GB); above the limit InputError names the sample, the shape, the limit and
        a crop that would fit.
    """
    need = estimate_memory_gb(shape_zyx, n_field_cases=n_field_cases,
                              preconditioner=preconditioner)
    if max_memory_gb is not None and need > float(max_memory_gb):
        shape = [int(s) for s in shape_zyx]
        n = float(np.prod(shape))
        fit = max(0.0, (float(max_memory_gb) - BASE_MEMORY_GB) / (need - BASE_MEMORY_GB))
        side = [max(1, int(s * fit ** (1 / 3))) for s in shape]
        raise InputError(
            f"volume {shape[0]}×{shape[1]}×{shape[2]} ({n:.3g} voxels, ≈ "
            f"{(need - BASE_MEMORY_GB) * 1e9 / n:.0f} bytes per voxel) needs ≈ {need:.1f} GB for "
            f"the transport solves; crop it (stages.transport.crop_zyx, e.g. {side}) or run on "
            f"a node with more memory and raise stages.transport.max_memory_gb",
            sample=sample, field="stages.transport.max_memory_gb",
            expected=f"an estimate <= {float(max_memory_gb):g} GB", found=f"{need:.1f} GB")
    return need
