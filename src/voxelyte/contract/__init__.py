"""The data contract every stage shares: axes, voxel sizes, the phase table, label arrays, volume
fractions, the channel-stack view, JSON conversion, atomic writers and the artefact registry.

Conventions (see the README's *Data contract*):

- Volumes are ``(z, y, x)``; multi-channel stacks ``(channel, z, y, x)``; lengths in µm.
- Labels are integer arrays, one value per phase; the phase table maps names to label values and
  material data (density g cm⁻³, ``sigma_electronic_S_cm``, ``sigma_ionic_S_cm``, ``role``).
- JSON: numpy values become Python values and **every non-finite float (NaN, ±inf) becomes
  ``null``**; a document says what a ``null`` means beside it (e.g. ``percolating: false`` next to
  a null tortuosity factor). Files are strict JSON (no ``Infinity`` literals).
- Every file or store is written to a temporary sibling and renamed into place, so a path only
  ever holds a complete artefact.
"""
from voxelyte.contract.artefacts import ARTEFACTS, Artefact, artefact, artefact_path
from voxelyte.contract.grid import (AXES, as_channel_stack, axis_index, channel_index,
                                    channel_names, stage_dataset, volume_voxel_size_um,
                                    voxel_size_um, whole_slice_data)
from voxelyte.contract.labels import (INVALID_LABEL, distance_um, iter_blocks, label_data,
                                      load_labels, volume_fractions, volume_shape)
from voxelyte.contract.phases import CONDUCTIVITY_KINDS, ROLES, PhaseTable, phase_table
from voxelyte.contract.storage import (atomic_write, ome_ngff_attrs, open_volume, to_jsonable,
                                       write_json_atomic, write_text_atomic, write_zarr_atomic)

__all__ = ["AXES", "ARTEFACTS", "INVALID_LABEL", "Artefact", "CONDUCTIVITY_KINDS", "PhaseTable",
           "ROLES", "artefact", "artefact_path", "as_channel_stack", "atomic_write",
           "axis_index", "channel_index", "channel_names", "distance_um", "iter_blocks",
           "label_data", "load_labels", "ome_ngff_attrs", "open_volume", "phase_table",
           "stage_dataset", "to_jsonable", "volume_fractions", "volume_shape",
           "volume_voxel_size_um", "voxel_size_um", "whole_slice_data", "write_json_atomic",
           "write_text_atomic", "write_zarr_atomic"]
