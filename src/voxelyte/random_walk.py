"""Random-walk tortuosity factor of one phase (the cross-check of the flux-based τ): walkers hop
between face-neighbouring phase voxels of the volume mirrored at its faces (a hop into another
phase is refused), τ_a = D_free / D_a from the late slope of the mean squared displacement. One
numba kernel with a counter-based generator per walker: identical results for any thread count.
"""
from __future__ import annotations

import math
import time

import numpy as np
from numba import njit, prange

from voxelyte.contract import AXES, axis_index, voxel_size_um as checked_voxel
from voxelyte.errors import InputError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO53 = 1.0 / 9007199254740992.0


@njit(inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, parallel=True)
def _walk(mask, cum_p, n_walkers, n_steps, record_every, n_lags, n_batches, seed, out):
    """Walk ``n_walkers`` walkers ``n_steps`` steps in ``mask`` (uint8, 1 = phase) mirrored at its
    faces, recording each walker's unbounded position every ``record_every`` steps. Adds the
    time-origin averaged squared displacement (voxels²) per axis at lag L·record_every
    (L = 1…n_lags) of every walker into ``out[batch, L-1, axis]``. Walker w belongs to batch
    w % n_batches; its generator is SplitMix64 started at mix(seed·golden + w + 1)."""
    nz, ny, nx = mask.shape
    n_total = nz * ny * nx
    n_rec = n_steps // record_every
    for b in prange(n_batches):
        traj = np.zeros((n_rec + 1, 3), np.int64)
        pos = np.zeros(3, np.int64)
        shape = np.array([nz, ny, nx], np.int64)
        orient = np.ones(3, np.int64)
        disp = np.zeros(3, np.int64)
        for w in range(b, n_walkers, n_batches):
            state = _mix(np.uint64(seed) * _GOLDEN + np.uint64(w) + np.uint64(1))
            # start: a uniformly random voxel of the phase (rejection sampling)
            while True:
                state += _GOLDEN
                r = _mix(state)
                flat = np.int64((r >> _S11) * _TWO53 * n_total)
                if flat >= n_total:
                    flat = n_total - 1
                pos[0] = flat // (ny * nx)
                pos[1] = (flat // nx) % ny
                pos[2] = flat % nx
                if mask[pos[0], pos[1], pos[2]]:
                    break
            for a in range(3):
                orient[a] = 1       # -1: the current copy is mirrored along axis a
                disp[a] = 0         # position in the unbounded medium (voxels)
                traj[0, a] = 0
            rec = 1
            for t in range(1, n_rec * record_every + 1):
                state += _GOLDEN
                r = _mix(state)
                u = (r >> _S11) * _TWO53
                a = 0 if u < cum_p[0] else (1 if u < cum_p[1] else 2)
                step = 1 if (r & np.uint64(1)) else -1
                q = pos[a] + step * orient[a]
                if q < 0 or q >= shape[a]:
                    # crossing a mirror face: the voxel beyond is this voxel's mirror image
                    orient[a] = -orient[a]
                    disp[a] += step
                else:
                    if a == 0:
                        ok = mask[q, pos[1], pos[2]]
                    elif a == 1:
                        ok = mask[pos[0], q, pos[2]]
                    else:
                        ok = mask[pos[0], pos[1], q]
                    if ok:
                        pos[a] = q
                        disp[a] += step
                if t % record_every == 0:
                    for ax in range(3):
                        traj[rec, ax] = disp[ax]
                    rec += 1
            # time-origin average: the walk is stationary (uniform start = equilibrium)
            for lag in range(1, n_lags + 1):
                n_orig = n_rec + 1 - lag
                for ax in range(3):
                    acc = 0.0
                    for o in range(n_orig):
                        d = float(traj[o + lag, ax] - traj[o, ax])
                        acc += d * d
                    out[b, lag - 1, ax] += acc / n_orig
    return out


def _fit_tau(steps, msd_um2, p_d2, start):
    """τ per axis from the least-squares slope (with intercept) of MSD vs steps over steps >=
    start; also R² of the fit."""
    sel = steps >= start
    x = steps[sel].astype(np.float64)
    taus, r2 = [], []
    for a in range(msd_um2.shape[1]):
        y = msd_um2[sel, a]
        slope, intercept = np.polyfit(x, y, 1)
        resid = y - (slope * x + intercept)
        ss = float(np.sum((y - y.mean()) ** 2))
        r2.append(1.0 - float(np.sum(resid ** 2)) / ss if ss > 0 else 0.0)
        taus.append(float(p_d2[a] / slope) if slope > 0 else math.inf)
    return taus, r2


def _check_settings(lab, n_walkers, n_steps, n_records, n_batches, fit_start_fraction,
                    max_lag_fraction) -> None:
    if lab.ndim != 3:
        raise InputError("labels must be a 3D array (z, y, x)", field="labels",
                         expected="3 dimensions", found=lab.shape)
    for name, value, low in (("n_walkers", n_walkers, 1), ("n_steps", n_steps, 4),
                             ("n_records", n_records, 4), ("n_batches", n_batches, 1)):
        if int(value) < low:
            raise InputError(f"{name} too small", field=name, expected=f">= {low}", found=value)
    for name, value in (("fit_start_fraction", fit_start_fraction),
                        ("max_lag_fraction", max_lag_fraction)):
        if not 0 <= value < 1 and not (name == "max_lag_fraction" and value == 1):
            raise InputError("fraction out of range", field=name,
                             expected="0 <= fraction < 1", found=value)


def _walk_msd(mask, voxel, n_walkers, n_steps, seed, n_records, max_lag_fraction, n_batches):
    """Run the walkers: (lags in steps, per-batch MSD sums (batch, lag, axis) in voxels², walkers
    per batch, cumulative hop probabilities, free-space µm² per step per axis)."""
    weights = 1.0 / voxel ** 2
    p = weights / weights.sum()
    cum_p = np.cumsum(p)
    cum_p[-1] = 1.0
    p_d2 = p * voxel ** 2                        # µm² per step in free space, same on every axis
    n_records = min(int(n_records), int(n_steps))
    record_every = max(1, int(n_steps) // n_records)
    n_rec = int(n_steps) // record_every
    n_lags = max(2, int(round(max_lag_fraction * n_rec)))
    n_batches = min(int(n_batches), int(n_walkers))
    sums = np.zeros((n_batches, n_lags, 3))
    _walk(mask, cum_p, int(n_walkers), int(n_steps), record_every, n_lags, n_batches,
          int(seed) % 2**63, sums)
    lags = record_every * np.arange(1, n_lags + 1)
    counts = np.array([len(range(b, int(n_walkers), n_batches)) for b in range(n_batches)])
    return lags, sums, counts, p_d2


def _fit_axes(lags, sums, counts, p_d2, voxel, n_walkers, fit_start_fraction, axes):
    """The MSD (µm², lag × axis) and per axis τ, its standard error over the walker batches,
    D_a/D_free and R² of the fit."""
    n_batches = sums.shape[0]
    start = fit_start_fraction * lags[-1]
    msd = sums.sum(axis=0) / n_walkers * voxel ** 2           # µm²
    taus, r2 = _fit_tau(lags, msd, p_d2, start)
    batch_taus = np.array([_fit_tau(lags, sums[b] / counts[b] * voxel ** 2, p_d2, start)[0]
                           for b in range(n_batches)])
    out = {}
    for ax in axes:
        a = axis_index(ax)
        finite = batch_taus[:, a][np.isfinite(batch_taus[:, a])]
        stderr = (float(np.std(finite, ddof=1) / math.sqrt(finite.size))
                  if n_batches > 1 and finite.size == n_batches else None)
        out[ax] = {"tortuosity_factor": taus[a], "tortuosity_factor_stderr": stderr,
                   "diffusivity_ratio": 1.0 / taus[a] if math.isfinite(taus[a]) else 0.0,
                   "fit_r2": r2[a]}
    return msd, out


def random_walk_tortuosity(labels, phase_label: int, voxel_size_um, *, axes=AXES,
                           n_walkers: int = 2000, n_steps: int = 200000, seed: int = 0,
                           n_records: int = 200, max_lag_fraction: float = 0.5,
                           fit_start_fraction: float = 0.5, n_batches: int = 10,
                           return_msd: bool = False) -> dict:
    """Random-walk tortuosity factor of one phase per axis, τ_a = p_a d_a² / slope of MSD_a (µm²)
    vs lag (steps), with hop probabilities p_a ∝ 1/d_a² (isotropic free space on anisotropic
    voxels); at long times τ_a equals the flux-based τ = φ·σ_bulk/σ_eff of the same network.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
    phase_label : int
    voxel_size_um : sequence of 3 float
    axes : sequence of str or int
    n_walkers : int
        Walkers, started at uniformly random voxels of the phase.
    n_steps : int
        Steps per walker (the MSD must reach its linear regime).
    seed : int
        Fixes everything.
    n_records : int
        Positions kept per walker (evenly spaced steps).
    max_lag_fraction : float
        Largest MSD lag as a fraction of n_steps; the MSD is averaged over all time origins.
    fit_start_fraction : float
        The slope (with intercept) is fitted from this fraction of the largest lag on.
    n_batches : int
        Independent walker batches for the standard error.
    return_msd : bool
        Also ``lag_steps`` and ``msd_um2`` {axis: list}.

    Returns
    -------
    dict
        phase_label, volume_fraction, n_walkers, n_steps, seed, the fit settings, time_s and per
        axis {tortuosity_factor, tortuosity_factor_stderr, diffusivity_ratio (1/τ), fit_r2}; a
        phase without voxels gives τ = inf.

    References
    ----------
    Tranter et al., pytrax (mirrored random walk); Minnmann et al., J. Electrochem. Soc. 171,
    060514 (2024) (2000 walkers).
    """
    lab = np.asarray(labels)
    _check_settings(lab, n_walkers, n_steps, n_records, n_batches, fit_start_fraction,
                    max_lag_fraction)
    voxel = np.asarray(checked_voxel(voxel_size_um), float)
    axes = [AXES[axis_index(ax)] for ax in axes]
    mask = np.ascontiguousarray(lab == phase_label, dtype=np.uint8)
    phi = float(mask.mean())
    t0 = time.perf_counter()
    out: dict = {"phase_label": int(phase_label), "volume_fraction": phi,
                 "n_walkers": int(n_walkers), "n_steps": int(n_steps), "seed": int(seed),
                 "max_lag_fraction": float(max_lag_fraction),
                 "fit_start_fraction": float(fit_start_fraction),
                 "boundary": "mirrored at all faces", "msd": "time-origin averaged"}
    if phi == 0:
        for ax in axes:
            out[ax] = {"tortuosity_factor": math.inf, "tortuosity_factor_stderr": None,
                       "diffusivity_ratio": 0.0, "fit_r2": None}
        out["time_s"] = time.perf_counter() - t0
        return out
    lags, sums, counts, p_d2 = _walk_msd(mask, voxel, n_walkers, n_steps, seed, n_records,
                                         max_lag_fraction, n_batches)
    msd, per_axis = _fit_axes(lags, sums, counts, p_d2, voxel, n_walkers, fit_start_fraction,
                              axes)
    out.update(per_axis)
    if return_msd:
        out["lag_steps"] = lags.tolist()
        out["msd_um2"] = {ax: msd[:, axis_index(ax)].tolist() for ax in axes}
    out["time_s"] = time.perf_counter() - t0
    return out
