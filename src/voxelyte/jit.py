"""Compile the numba kernels (conduction — used by transport and SSRM — and the random walk) into
numba's on-disk cache, so that the workflow's jobs (fresh processes) do not compile them again
side by side. ``make env`` runs ``python -m voxelyte.jit`` once after installing; the cache lives
beside the sources (``__pycache__``, or ``NUMBA_CACHE_DIR``) and stays valid until a source
changes.
"""
from __future__ import annotations

import time

import numpy as np

VOXEL_UM = (0.1, 0.1, 0.1)


def _transport_kernels(conduction, phase, two_phase) -> None:
    """A phase mask (bool) and σ fields (float64, float32); operator levels in float64 and
    float32; closed and periodic sides; with and without the current field; the CSR path."""
    for sigma in (phase, two_phase, two_phase.astype(np.float32)):
        for dtype in (np.float64, np.float32):
            for periodic in (False, True):
                conduction.effective_conductivity(sigma, VOXEL_UM, 0, dtype=dtype,
                                                  periodic=periodic, return_field=True)
    conduction.effective_conductivity(two_phase, VOXEL_UM, 0, preconditioner="sa")


def _ssrm_kernels(conduction, two_phase, clusters) -> None:
    """SSRM's multigrid paths: probe currents into the scanned face (float32 levels, deflated
    CG with float64 search directions) and a Dirichlet tip window as the inlet."""
    face = np.zeros(two_phase.shape[1:], bool)
    net = conduction.percolating_network(two_phase > 0, 0)
    mg = conduction.grid_operator(two_phase, VOXEL_UM, net, inlet_mask=face)
    deflation = conduction.ClusterDeflation(mg, clusters)
    current = np.zeros(face.shape)
    current[0, 0] = 1.0
    conduction.gmg_solve(mg, 0.0, 0.0, np.zeros(two_phase.shape), rtol=1e-6,
                         current_in=current, deflation=deflation)
    window = face.copy()
    window[4:7, 4:7] = True
    sub = conduction.percolating_network(net, 0, inlet_mask=window)
    conduction.effective_conductivity_gmg(
        two_phase, VOXEL_UM, 0, sub, rtol=1e-6, maxiter=None, periodic=False, potential_in=1.0,
        potential_out=0.0, dtype=np.float32, inlet_mask=window, deflation_labels=clusters)


def compile_kernels(verbose: bool = True) -> float:
    """Run tiny solves that reach every kernel signature the stages use.

    Parameters
    ----------
    verbose : bool
        Print the time taken.

    Returns
    -------
    float
        Seconds.
    """
    from scipy import ndimage

    from voxelyte import conduction, random_walk

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    phase = rng.random((12, 12, 12)) < 0.7
    two_phase = np.where(phase, 0.1, 1e-9)
    _transport_kernels(conduction, phase, two_phase)
    _ssrm_kernels(conduction, two_phase, ndimage.label(phase)[0])
    random_walk.random_walk_tortuosity(phase.astype(np.uint8), 1, VOXEL_UM, n_walkers=8,
                                       n_steps=64)
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"voxelyte: numba kernels compiled and cached ({seconds:.0f} s)")
    return seconds


if __name__ == "__main__":
    compile_kernels()
