"""The ingest stage: raw channel stacks (multi-page TIFF, folder of TIFF slices, HDF5, raw binary,
zarr) into one lazy ``(channel, z, y, x)`` DataArray that streams from the files, one z-chunk
per task; every problem with the input raises one InputError naming what is wrong."""
from voxelyte.ingest.metadata import UNIT_TO_UM, VOXEL_SIZE_MISMATCH_REL
from voxelyte.ingest.readers import FOLDER_FORMATS, FORMATS
from voxelyte.ingest.stack import open_channel, read_raw_stack

__all__ = ["FORMATS", "FOLDER_FORMATS", "UNIT_TO_UM", "VOXEL_SIZE_MISMATCH_REL", "open_channel",
           "read_raw_stack"]
