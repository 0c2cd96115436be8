"""Microstructure descriptors of labelled volumes (processing chain step 5, science.md).

Everything works on a label array (z, y, x) and a phase table ``{name: {"label": int,
"density_g_cm3": float, ...}}`` (the sample file's ``phases``). Lengths are µm, areas µm²,
specific areas µm⁻¹ (per total volume) and m² g⁻¹ (per mass), all from the per-axis voxel size
``(dz, dy, dx)`` in µm, so anisotropic voxels enter every length and area.

Memory. Local descriptors read the labels in slabs of ``slab_voxels`` planes (numpy, dask or
xarray input), so their memory depends on the slab, not on the depth: volume fractions,
through-thickness profiles, 2D slice statistics, chords, directional two-point correlation and
marching-cubes surface areas (marching cubes is local: each cell needs its 8 corners, plus the
smoothing halo). Global descriptors hold the whole volume. Measured on a 400³ phantom
(benchmarks/descriptors_scale.py, peak RSS above the 119 MiB interpreter baseline, 64-plane
slabs): surfaces ~45 bytes per slab voxel (490 MiB), 2D slices ~30 (305 MiB), two-point
correlation ~30 (310 MiB), chords and fractions < 130 MiB; connectivity ~13 bytes/voxel of the
volume, local thickness + granulometry ~18 per phase (run one phase at a time), watershed
separation ~32 (1.9 GiB for 400³); compute_descriptors peaks at the watershed (2.1 GiB,
320 s on 2 shared cores for 400³).

Literature: Minnmann et al. 2024 (volume fractions, marching-cubes areas, Eq. 1 interface areas,
specific areas per CAM mass, chord-length distributions), Etiemble et al. 2017 (granulometry,
local thickness, watershed particle sizes, through-thickness profiles with mean / RSD / slope),
Gamo et al. SI Tables S1/S2 (2D slice descriptors).
"""
from __future__ import annotations

from voxelyte.contract import AXES
from voxelyte.descriptors.assemble import compute_descriptors, write_descriptors
from voxelyte.descriptors.chords import chord_length_summary, chord_lengths
from voxelyte.descriptors.correlation import two_point_correlation
from voxelyte.descriptors.fractions import (nominal_volume_fractions, through_thickness_profile,
                                            volume_fractions)
from voxelyte.descriptors.sizes import granulometry, local_thickness_distribution, separate_particles
from voxelyte.descriptors.slices2d import slice_descriptors_2d
from voxelyte.descriptors.surfaces import (DEFAULT_SMOOTHING_VOXELS, interface_areas,
                                            particle_contact_area, phase_surface_areas)
from voxelyte.descriptors.topology import connectivity

__all__ = ["AXES", "DEFAULT_SMOOTHING_VOXELS", "compute_descriptors", "write_descriptors",
           "volume_fractions", "nominal_volume_fractions", "phase_surface_areas", "interface_areas",
           "chord_lengths", "chord_length_summary", "local_thickness_distribution", "granulometry",
           "separate_particles", "particle_contact_area", "connectivity", "through_thickness_profile",
           "slice_descriptors_2d", "two_point_correlation"]
