"""Directional two-point correlation functions and correlation lengths."""
from __future__ import annotations

import math

import numpy as np

from voxelyte import contract
from voxelyte.contract import AXES, iter_blocks, volume_shape

_LINE_CHUNK = 8192


def two_point_correlation(labels, phase_label: int, voxel_size_um, *, max_lag_um: float | None = None,
                          slab_voxels: int = 64):
    """Directional two-point correlation of one phase along each axis, and correlation lengths.

    S2(d) = P(x ∈ phase and x + d·e_axis ∈ phase), non-periodic estimator (pairs inside the box
    only, FFT per line; slab-wise). C(d) = (S2 − φ²)/(φ − φ²); the correlation length is where C
    first falls to 1/e (S2 = φ² + (φ − φ²)/e, linear interpolation) and the integral range is
    ∫ C dd up to the first zero of C. (PoreSpy's radially averaged two_point_correlation assumes
    cubic voxels; per-axis curves keep anisotropic voxels exact.)

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    phase_label : int
        Label value of the phase.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    max_lag_um : float, optional
        Largest distance (µm); None: the box length − 1 voxel along each axis.
    slab_voxels : int
        Planes read at a time (memory).

    Returns
    -------
    table : pandas.DataFrame
        Columns axis, distance_um, s2, c_normalized (NaN when φ is 0 or 1).
    stats : dict
        ``{axis: {"correlation_length_um", "integral_range_um"}}`` (µm; None when undefined).

    References
    ----------
    Torquato 2002 (two-point correlation function).
    """
    import pandas as pd

    voxel = contract.voxel_size_um(voxel_size_um)
    shape = volume_shape(labels)
    rows, stats = [], {}
    for ax, axis in enumerate(AXES):
        length = shape[ax]
        max_lag = length - 1 if max_lag_um is None else min(length - 1, int(max_lag_um / voxel[ax]))
        nfft = 1 << int(math.ceil(math.log2(2 * length)))
        acc = np.zeros(max_lag + 1)
        ones = 0.0
        lines_n = 0
        block_axis = 1 if ax == 0 else 0
        for _, block in iter_blocks(labels, block_axis, slab_voxels):
            lines = np.moveaxis(block == phase_label, ax, -1).reshape(-1, length)
            for j in range(0, lines.shape[0], _LINE_CHUNK):       # bounded FFT memory
                m = lines[j:j + _LINE_CHUNK].astype(np.float32)
                spec = np.fft.rfft(m, n=nfft, axis=1)
                acc += np.fft.irfft(spec * np.conj(spec), n=nfft, axis=1)[:, :max_lag + 1].sum(0)
                ones += float(m.sum())
                lines_n += m.shape[0]
        pairs = lines_n * (length - np.arange(max_lag + 1))
        s2 = acc / pairs
        phi = ones / (lines_n * length)
        d = np.arange(max_lag + 1) * voxel[ax]
        if 0 < phi < 1:
            c = (s2 - phi ** 2) / (phi - phi ** 2)
            below = np.nonzero(c <= 1 / math.e)[0]
            if below.size:
                i = below[0]
                lc = float(d[i - 1] + (c[i - 1] - 1 / math.e) / (c[i - 1] - c[i]) * voxel[ax]) \
                    if i > 0 else 0.0
            else:
                lc = None
            zero = np.nonzero(c <= 0)[0]
            end = zero[0] + 1 if zero.size else len(c)
            cc = np.clip(c[:end], 0, None)
            integral = float(np.sum((cc[1:] + cc[:-1]) * 0.5) * voxel[ax]) if end > 1 else 0.0
        else:
            c = np.full_like(s2, np.nan)
            lc, integral = None, None
        stats[axis] = {"correlation_length_um": lc, "integral_range_um": integral}
        rows.append(pd.DataFrame({"axis": axis, "distance_um": d, "s2": s2, "c_normalized": c}))
    return pd.concat(rows, ignore_index=True), stats
