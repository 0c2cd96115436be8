"""The segment stage: corrected two-detector volume (channel, z, y, x) -> phase labels (z, y, x).

``trainable``: a random forest on multiscale features of every channel, fitted on sparse
annotations (a user's file, or on phantoms scribbles drawn from the ground truth).
``unsupervised``: global thresholds (BSE classes, SE-detector pores), rim removal, then
self-training. Both: island removal and optional smoothing. The method notes are in the README.
"""
from voxelyte.segment.annotations import (ANNOTATION_FORMATS, check_annotations, class_table,
                                          correction_strokes, load_annotations,
                                          phantom_annotations, phantom_scribbles)
from voxelyte.segment.features import FEATURE_KEYS, feature_names, halo_slices, slab_features
from voxelyte.segment.forest import (MAX_FEATURE_GB, TRUSTED_MODEL_TYPES, TrainedModel, load_model,
                                     predict, predict_slices, prediction_slices, save_model,
                                     save_thresholds, train_classifier)
from voxelyte.segment.postprocess import (min_island_voxels, remove_middle_rim,
                                          remove_rim_fragments, remove_small_islands,
                                          rim_thickness, smooth_labels)
from voxelyte.segment.qc import phase_colours, qc_figure
from voxelyte.segment.settings import (INVALID, METHODS, UNLABELLED, channel_names,
                                       corrected_stack, phase_classes, resolve_params)
from voxelyte.segment.stage import (labels_dataset, postprocess_labels, segment,
                                    segment_sample, segment_trainable, stage_annotations,
                                    write_model)
from voxelyte.segment.unsupervised import (flatten_level_trend, segment_unsupervised, self_train,
                                           self_training_annotations, unsupervised_segment)

__all__ = [
    "ANNOTATION_FORMATS", "FEATURE_KEYS", "INVALID", "MAX_FEATURE_GB", "METHODS",
    "TRUSTED_MODEL_TYPES", "UNLABELLED", "TrainedModel", "channel_names", "check_annotations",
    "class_table", "corrected_stack", "correction_strokes", "feature_names",
    "flatten_level_trend", "halo_slices", "labels_dataset", "load_annotations", "load_model",
    "min_island_voxels", "phantom_annotations", "phantom_scribbles", "phase_classes",
    "phase_colours", "postprocess_labels", "predict", "predict_slices", "prediction_slices",
    "qc_figure", "remove_middle_rim", "remove_rim_fragments", "remove_small_islands",
    "resolve_params", "rim_thickness", "save_model", "save_thresholds", "segment",
    "segment_sample", "segment_trainable", "segment_unsupervised", "self_train",
    "self_training_annotations", "slab_features", "smooth_labels", "stage_annotations",
    "train_classifier", "unsupervised_segment", "write_model",
]
