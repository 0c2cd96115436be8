"""Microstructure descriptors of labelled volumes (the descriptors stage).

Everything works on a label array (z, y, x) and a phase table ``{name: {"label": int,
"density_g_cm3": float, ...}}`` (the sample file's ``phases``). Lengths are µm, areas µm²,
specific areas µm⁻¹ (per total volume) and m² g⁻¹ (per mass), all from the per-axis voxel size
``(dz, dy, dx)`` in µm, so anisotropic voxels enter every length and area. Local descriptors
read the labels in slabs (memory set by the slab, not the depth); connectivity, local
thickness, granulometry and watershed separation hold the whole volume.

Literature: Minnmann et al. 2024, Etiemble et al. 2017, Gamo et al. SI (each module names
what it takes from which).
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
