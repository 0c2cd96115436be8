"""Compile the numba kernels (transport, SSRM, random walk) into numba's on-disk cache.

The kernels are compiled on first use, once per argument type (~1.5 min for all of them on
2 cores); every Snakemake job is a fresh process, so without a warm cache each transport and
SSRM job of a first run would compile them again, side by side. ``make env`` (and so ``make run``
and ``make test``) runs ``python -m voxelyte.jit`` once after installing. The cache lives beside
the sources (``__pycache__``, or ``NUMBA_CACHE_DIR``) and stays valid until a source changes.
"""
from __future__ import annotations

import time

import numpy as np

VOXEL_UM = (0.1, 0.1, 0.1)


def compile_kernels(verbose: bool = True) -> float:
    """Run tiny solves that reach every kernel signature the stages use. Returns seconds."""
    from voxelyte import conduction, random_walk, ssrm

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    phase = rng.random((12, 12, 12)) < 0.7
    two_phase = np.where(phase, 0.1, 1e-9)
    # transport: a phase mask (bool) and σ fields (float64, float32); operator levels in float64
    # and float32; closed and periodic sides; with and without the current-density field
    for sigma in (phase, two_phase, two_phase.astype(np.float32)):
        for dtype in (np.float64, np.float32):
            for periodic in (False, True):
                conduction.effective_conductivity(sigma, VOXEL_UM, 0, dtype=dtype,
                                                  periodic=periodic, return_field=True)
    conduction.effective_conductivity(two_phase, VOXEL_UM, 0, preconditioner="sa")
    # SSRM: probe currents and Dirichlet windows on the multigrid path (deflated, float32)
    model = ssrm._build_model(two_phase, VOXEL_UM)
    probe = np.zeros((model.A.shape[0], 1))
    probe[0] = 1.0
    ssrm._gmg_solve(model, probe, 1e-6)
    ssrm.tip_field(two_phase, VOXEL_UM, (5, 5), solver="gmg")
    random_walk.random_walk_tortuosity(phase.astype(np.uint8), 1, VOXEL_UM, n_walkers=8,
                                       n_steps=64)
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"voxelyte: numba kernels compiled and cached ({seconds:.0f} s)")
    return seconds


if __name__ == "__main__":
    compile_kernels()
