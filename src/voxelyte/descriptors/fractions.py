"""Volume fractions (Minnmann et al. 2024) and through-thickness profiles (Etiemble et al. 2017)."""
from __future__ import annotations

import numpy as np

from voxelyte.errors import InputError
from voxelyte import contract
from voxelyte.contract import axis_index, iter_blocks, phase_table, volume_shape


def volume_fractions(labels, phases: dict, *, slab_voxels: int = 64) -> dict[str, float]:
    """Voxel-count volume fraction of each phase plus ``"unassigned"`` (labels in no phase).

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    phases : dict or PhaseTable
        The sample's phase table.
    slab_voxels : int
        Planes read at a time.

    Returns
    -------
    dict
        Phase name -> φ, and ``"unassigned"``.

    See Also
    --------
    voxelyte.contract.volume_fractions

    References
    ----------
    Minnmann et al. 2024 (volume fractions by voxel counting).
    """
    return contract.volume_fractions(labels, phases, slab_voxels=slab_voxels, unassigned=True)


def nominal_volume_fractions(nominal_composition: dict | None, phases: dict, *,
                             pore_phase: str = "pore") -> dict[str, float]:
    """Nominal volume fractions from the sample file's ``nominal_composition``.

    ``volume_fraction`` as given, or mass fractions converted with phase densities,
    φ_i = (w_i/ρ_i) / Σ_j (w_j/ρ_j) · (1 − ε_geo), with ε_geo = ``porosity_geometric`` (0 when
    absent; when given, it is assigned to ``pore_phase``).

    Parameters
    ----------
    nominal_composition : dict, optional
        ``volume_fraction`` or ``mass_fraction`` ({phase: fraction}) and optionally
        ``porosity_geometric``.
    phases : dict or PhaseTable
        The sample's phase table (``density_g_cm3`` in g cm⁻³, needed for mass fractions).
    pore_phase : str
        Phase that receives ε_geo.

    Returns
    -------
    dict
        Phase name -> nominal volume fraction; empty without a nominal composition. Unknown
        phases or a missing / non-positive density raise InputError.
    """
    if not nominal_composition:
        return {}
    table = phase_table(phases)
    eps = nominal_composition.get("porosity_geometric")
    for key in ("volume_fraction", "mass_fraction"):
        for name in (nominal_composition.get(key) or {}):
            if name not in table:
                raise InputError("nominal composition names an unknown phase",
                                 field=f"nominal_composition.{key}.{name}",
                                 expected=f"one of {sorted(table)}", found=name)
    if nominal_composition.get("volume_fraction"):
        out = {k: float(v) for k, v in nominal_composition["volume_fraction"].items()}
    elif nominal_composition.get("mass_fraction"):
        w = nominal_composition["mass_fraction"]
        vol = {}
        for name, wi in w.items():
            rho = table[name].get("density_g_cm3")
            if not rho or rho <= 0:
                raise InputError("mass fractions need a positive density of each phase",
                                 field=f"phases.{name}.density_g_cm3", expected="> 0", found=rho)
            vol[name] = wi / rho
        total = sum(vol.values())
        out = {k: v / total * (1.0 - (eps or 0.0)) for k, v in vol.items()}
    else:
        out = {}
    if eps is not None and pore_phase in table and pore_phase not in out:
        out[pore_phase] = float(eps)
    return out


def through_thickness_profile(labels, phases: dict, voxel_size_um, *,
                              electrode_normal_axis="z", slab_voxels: int = 64):
    """Phase fraction per slice along the electrode normal, slab-wise.

    Parameters
    ----------
    labels : array_like of int, (z, y, x)
        numpy, dask or xarray labels.
    phases : dict or PhaseTable
        The sample's phase table.
    voxel_size_um : sequence of 3 float
        Voxel size (dz, dy, dx) in µm.
    electrode_normal_axis : str or int
        Axis of the electrode normal.
    slab_voxels : int
        Planes read at a time (memory).

    Returns
    -------
    table : pandas.DataFrame
        Columns position_um (slice centre, µm) and volume_fraction_<phase>.
    scalars : dict
        Per phase: mean (``profile_mean_volume_fraction_<p>``), RSD = std/mean with the
        population std (``profile_rsd_<p>``) and the slope of the least-squares line in fraction
        per µm (``profile_slope_<p>_um-1``).

    References
    ----------
    Etiemble et al. 2017 (through-thickness profiles: mean, RSD, slope of a linear fit).
    """
    import pandas as pd

    table = phase_table(phases)
    voxel = contract.voxel_size_um(voxel_size_um)
    shape = volume_shape(labels)
    ax = axis_index(electrode_normal_axis)
    counts = {name: np.zeros(shape[ax], np.int64) for name in table}
    other = tuple(i for i in range(3) if i != ax)
    for z0, block in iter_blocks(labels, 0, slab_voxels):
        for name, spec in table.items():
            c = np.count_nonzero(block == spec["label"], axis=other)
            if ax == 0:
                counts[name][z0:z0 + block.shape[0]] += c
            else:
                counts[name] += c
    per_slice = shape[other[0]] * shape[other[1]]
    pos = (np.arange(shape[ax]) + 0.5) * voxel[ax]
    df = pd.DataFrame({"position_um": pos})
    scalars = {}
    for name in table:
        f = counts[name] / per_slice
        df[f"volume_fraction_{name}"] = f
        mean = float(f.mean())
        scalars[f"profile_mean_volume_fraction_{name}"] = mean
        scalars[f"profile_rsd_{name}"] = float(f.std() / mean) if mean > 0 else None
        scalars[f"profile_slope_{name}_um-1"] = float(np.polyfit(pos, f, 1)[0]) if f.size > 1 else None
    return df, scalars
