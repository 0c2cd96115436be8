"""Benchmark: stream a large two-channel uint16 stack through ingest and report time and memory.

    python benchmarks/ingest_streaming.py --scratch /path/to/scratch [--shape 500 1000 1000]

Writes two multi-page TIFF stacks (BSE, SE) of the given (z, y, x) shape into the scratch folder,
then runs ``voxelyte.ingest.read_raw_stack`` -> ``write_zarr_atomic`` in a child process and prints
its wall time, peak RSS and the stack size, so peak memory can be compared with the data size.
The default 500 x 1000 x 1000 is 1 GB per channel.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

CHILD = """
import sys, json
from voxelyte import contract, ingest
scratch, chunks, workers = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
channels = [{"name": n, "format": "tiff", "path": f"{scratch}/{n}.tif"} for n in ("BSE", "SE")]
stack = ingest.read_raw_stack(channels, sample="benchmark",
                              voxel_size_um={"z": 0.1, "y": 0.1, "x": 0.1},
                              chunks_zyx=tuple(chunks))
contract.write_zarr_atomic(stack.to_dataset(), f"{scratch}/raw.zarr", num_workers=workers)
"""


def write_stack(path: Path, shape: tuple[int, int, int], seed: int) -> None:
    """Write a noisy stack slice by slice (never the whole stack in memory)."""
    rng = np.random.default_rng(seed)
    out = tifffile.memmap(path, shape=shape, dtype=np.uint16, imagej=True,
                          resolution=(10.0, 10.0),  # pixels per um: 0.1 um voxels
                          metadata={"axes": "ZYX", "spacing": 0.1, "unit": "um"})
    for z in range(shape[0]):
        out[z] = rng.integers(1000, 40000, size=shape[1:], dtype=np.uint16)
    out.flush()
    del out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--shape", type=int, nargs=3, default=[500, 1000, 1000])
    parser.add_argument("--chunks", type=int, nargs=3, default=[16, 1024, 1024])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch files")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)
    for seed, name in enumerate(("BSE", "SE")):
        if not (args.scratch / f"{name}.tif").exists():
            write_stack(args.scratch / f"{name}.tif", shape, seed)
    stack_gb = 2 * np.prod(shape) * 2 / 1e9
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, str(args.scratch), json.dumps(args.chunks),
                    str(args.workers)], check=True)
    wall_s = time.perf_counter() - start
    peak_rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB -> GB
    result = {"shape_zyx": list(shape), "channels": 2, "stack_GB": round(stack_gb, 2),
              "chunks_zyx": args.chunks, "workers": args.workers, "wall_s": round(wall_s, 1),
              "peak_rss_GB": round(peak_rss_gb, 2),
              "throughput_MB_s": round(stack_gb * 1e3 / wall_s, 1)}
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.scratch)


if __name__ == "__main__":
    main()
