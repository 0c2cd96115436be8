"""The ingest stage: raw channel stacks (multi-page TIFF, folder of TIFF slices, HDF5, raw binary,
zarr) into one lazy ``(channel, z, y, x)`` DataArray that streams from the files, one z-chunk
per task, or a segmented label volume mapped onto the phase table; every problem with the input
raises one InputError naming what is wrong."""
from voxelyte.ingest.labels import check_label_values, label_values, read_label_volume
from voxelyte.ingest.metadata import UNIT_TO_UM, VOXEL_SIZE_MISMATCH_REL
from voxelyte.ingest.readers import FOLDER_FORMATS, FORMATS
from voxelyte.ingest.stack import open_channel, read_raw_stack

__all__ = ["FORMATS", "FOLDER_FORMATS", "UNIT_TO_UM", "VOXEL_SIZE_MISMATCH_REL",
           "check_label_values", "label_values", "open_channel", "read_label_volume",
           "read_raw_stack"]
