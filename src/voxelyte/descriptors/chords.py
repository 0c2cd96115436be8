"""Chord-length distributions (Minnmann et al. 2024)."""
from __future__ import annotations

import numpy as np

from voxelyte import contract
from voxelyte.contract import AXES, iter_blocks, phase_table, volume_shape


def _run_lengths(lines: np.ndarray) -> np.ndarray:
    """Lengths (voxels) of the True runs of each row of a 2D bool array, runs touching either
    end of the row discarded."""
    n, length = lines.shape
    padded = np.zeros((n, length + 2), dtype=np.int8)
    padded[:, 1:-1] = lines
    d = np.diff(padded, axis=1)
    starts = np.nonzero(d == 1)[1]
    ends = np.nonzero(d == -1)[1]
    keep = (starts > 0) & (ends < length)
    return (ends - starts)[keep]


def chord_lengths(labels, phases: dict, voxel_size_um, *, step_voxels: int = 2,
                  slab_voxels: int = 64) -> dict[tuple[str, str], np.ndarray]:
    """Chord-length counts per phase and axis.

    Chords are maximal runs of the phase along test lines parallel to the axis; lines lie on
    every ``step_voxels``-th position of both other axes; chords touching the volume boundary are
    discarded. Read slab-wise.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    phases : dict or PhaseTable
        The sample's phase table.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm (the counts are in voxels; see :func:`chord_length_summary`).
    step_voxels : int
        Spacing of the test lines (voxels) along both other axes.
    slab_voxels : int
        Planes read at a time (memory).

    Returns
    -------
    dict
        ``{(phase, axis): counts}`` with ``counts[k]`` = number of chords of k voxels (length
        k · voxel size along that axis, µm).

    References
    ----------
    Minnmann et al. 2024 (chord-length distributions, chords every 2 voxels, boundary chords
    discarded).
    """
    table = phase_table(phases)
    shape = volume_shape(labels)
    step = max(1, int(step_voxels))
    out = {(p, a): np.zeros(shape[i] + 1, dtype=np.int64) for p in table for i, a in enumerate(AXES)}

    def add(phase, axis, lengths):
        out[(phase, axis)] += np.bincount(lengths, minlength=shape[AXES.index(axis)] + 1)

    for _, block in iter_blocks(labels, 0, slab_voxels, step=step):      # lines along y and x
        for name, spec in table.items():
            m = block == spec["label"]
            add(name, "y", _run_lengths(m[:, :, ::step].transpose(0, 2, 1).reshape(-1, shape[1])))
            add(name, "x", _run_lengths(m[:, ::step, :].reshape(-1, shape[2])))
    for _, block in iter_blocks(labels, 1, slab_voxels, step=step):      # lines along z
        sub = block[:, :, ::step]
        for name, spec in table.items():
            m = (sub == spec["label"]).reshape(shape[0], -1).T
            add(name, "z", _run_lengths(m))
    return out


def chord_length_summary(counts: dict, voxel_size_um) -> tuple[dict, "object"]:
    """Chord statistics and the distribution table from the output of :func:`chord_lengths`.

    Parameters
    ----------
    counts : dict
        ``{(phase, axis): counts}`` from :func:`chord_lengths`.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.

    Returns
    -------
    scalars : dict
        Chord count, mean and total chord length (µm) per phase and axis and pooled over the axes
        (``chord_count_<p>[_<axis>]``, ``mean_chord_length_<p>[_<axis>]_um``,
        ``total_chord_length_<p>_um``; mean None without chords).
    table : pandas.DataFrame
        Columns phase, axis, chord_length_um, count.

    References
    ----------
    Minnmann et al. 2024 (chord-length distributions).
    """
    import pandas as pd

    voxel = contract.voxel_size_um(voxel_size_um)

    rows, scalars = [], {}
    phases = sorted({p for p, _ in counts}, key=list(dict.fromkeys(p for p, _ in counts)).index)
    for phase in phases:
        n_all, len_all = 0, 0.0
        for i, axis in enumerate(AXES):
            c = counts[(phase, axis)]
            k = np.nonzero(c)[0]
            lengths = k * voxel[i]
            rows += [{"phase": phase, "axis": axis, "chord_length_um": float(L), "count": int(n)}
                     for L, n in zip(lengths, c[k])]
            n = int(c.sum())
            total = float(np.sum(lengths * c[k]))
            scalars[f"chord_count_{phase}_{axis}"] = n
            scalars[f"mean_chord_length_{phase}_{axis}_um"] = total / n if n else None
            n_all, len_all = n_all + n, len_all + total
        scalars[f"chord_count_{phase}"] = n_all
        scalars[f"total_chord_length_{phase}_um"] = len_all
        scalars[f"mean_chord_length_{phase}_um"] = len_all / n_all if n_all else None
    table = pd.DataFrame(rows, columns=["phase", "axis", "chord_length_um", "count"])
    return scalars, table
