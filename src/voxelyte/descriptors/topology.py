"""Phase connectivity: percolating / dead-end / isolated fractions, isolated CAM."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from voxelyte.errors import InputError
from voxelyte.contract import AXES, axis_index, load_labels, phase_table


def connectivity(labels, phases: dict, *, connectivity_order: int = 1,
                 electrode_normal_axis="z", current_collector_side: str = "start") -> dict:
    """Connectivity of each phase from its connected components.

    Per axis: the volume fractions of the phase in components touching both faces
    (percolating), one face (dead end) and none (isolated). The fraction not connected to the
    current-collector face (``isolated_from_current_collector``, e.g. electrochemically isolated
    CAM). Per axis and face: the fraction of the phase's pixels on that face whose component does
    not reach the opposite face (``surface_unconnected_<axis>_<start|end>``: what an SSRM scan of
    that face with the counter electrode on the opposite one sees as isolated).

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels (loaded whole).
    phases : dict or PhaseTable
        The sample's phase table.
    connectivity_order : int
        Neighbourhood of the components: 1 = faces, 2 = + edges, 3 = + corners.
    electrode_normal_axis : str or int
        Axis of the electrode normal.
    current_collector_side : {'start', 'end'}
        Face of the normal axis where the current collector lies.

    Returns
    -------
    dict
        ``{phase: {...}}`` with ``percolating_<axis>``, ``dead_end_<axis>``, ``isolated_<axis>``,
        ``surface_unconnected_<axis>_<side>``, ``isolated_from_current_collector`` (fractions;
        None for an absent phase) and ``n_components``.

    References
    ----------
    Gamo et al. SI, Fig. S5 (volume fraction of isolated NCM, i.e. CAM).
    """
    table = phase_table(phases)
    arr = load_labels(labels)
    normal = axis_index(electrode_normal_axis)
    if current_collector_side not in ("start", "end"):
        raise InputError("unknown current-collector side", field="current_collector_side",
                         expected="start or end", found=current_collector_side)
    structure = ndimage.generate_binary_structure(3, int(connectivity_order))
    out = {}
    for name, spec in table.items():
        comp, n = ndimage.label(arr == spec["label"], structure=structure)
        sizes = np.bincount(comp.ravel(), minlength=n + 1).astype(np.float64)
        sizes[0] = 0
        total = sizes.sum()
        res = {}
        faces = {}
        for ax, axis in enumerate(AXES):
            start = np.zeros(n + 1, bool)
            end = np.zeros(n + 1, bool)
            start[np.unique(np.take(comp, 0, axis=ax))] = True
            end[np.unique(np.take(comp, -1, axis=ax))] = True
            start[0] = end[0] = False
            faces[ax] = (start, end)
            for key, sel in (("percolating", start & end), ("dead_end", start ^ end),
                             ("isolated", ~start & ~end)):
                res[f"{key}_{axis}"] = float(sizes[sel].sum() / total) if total else None
            for side, face, other in (("start", 0, end), ("end", -1, start)):
                on = np.take(comp, face, axis=ax)
                on = on[on > 0]
                res[f"surface_unconnected_{axis}_{side}"] = (
                    float(np.mean(~other[on])) if on.size else None)
        cc = faces[normal][0 if current_collector_side == "start" else 1]
        res["isolated_from_current_collector"] = float(sizes[~cc].sum() / total) if total else None
        res["n_components"] = int(n)
        out[name] = res
        del comp
    return out
