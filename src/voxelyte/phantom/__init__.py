"""Ground-truth phantoms: synthetic 3-phase composite cathodes (pore 0, CAM 1, SE 2; after
Minnmann et al. 2024) and their raw PFIB-SEM stacks with the artefacts the image stages correct.
Everything is seeded (one random stream per purpose): the same parameters give bit-identical
output (README, *The demo study*)."""
from voxelyte.phantom.frames import registration_residual_px, truth_in_registered_frame
from voxelyte.phantom.params import (CHANNELS, DEFAULTS, DRIFT_CONVENTION, PHASES,
                                     cam_clustering_probability, merge_params, resolve_params,
                                     se_access_radius_um)
from voxelyte.phantom.render import (brightness_factors, render_slices, shading_field,
                                     true_drift_px)
from voxelyte.phantom.structure import PhantomStructure, generate_structure
from voxelyte.phantom.write import write_phantom

__all__ = ["CHANNELS", "DEFAULTS", "DRIFT_CONVENTION", "PHASES", "PhantomStructure",
           "brightness_factors", "cam_clustering_probability", "generate_structure",
           "merge_params", "registration_residual_px", "render_slices", "resolve_params",
           "se_access_radius_um", "shading_field", "true_drift_px", "truth_in_registered_frame",
           "write_phantom"]
