"""voxelyte: tomography of battery composite electrodes, from raw stacks to transport and SSRM."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voxelyte")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
