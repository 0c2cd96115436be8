"""Benchmark: register + preprocess a large two-channel uint16 stack chunk-wise; time and memory.

    python benchmarks/register_preprocess_scale.py --scratch /path/to/scratch [--shape 500 1000 1000]

Writes a synthetic raw.zarr (smoothed noise structure + drift + stripes + noise, generated per
z-chunk by dask so the stack never sits in memory), then runs ``register.register`` ->
``write_zarr_atomic`` and ``preprocess.preprocess`` -> ``write_zarr_atomic`` in a child process
and prints the wall time per stage and the child's peak RSS (``resource.getrusage``).
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

CHILD = """
import sys, json, time
from voxelyte import config, contract, preprocess, register
scratch, workers = sys.argv[1], int(sys.argv[2])
settings = config.stage_defaults()  # the schema defaults, as the workflow passes them
t = {}
raw = contract.open_volume(f"{scratch}/raw.zarr")
t0 = time.perf_counter()
ds, drift = register.register(raw, **settings["register"], num_workers=workers)
contract.write_zarr_atomic(ds, f"{scratch}/registered.zarr", num_workers=workers)
register.write_drift_table(drift, f"{scratch}/drift.csv")
t["register_s"] = time.perf_counter() - t0
t0 = time.perf_counter()
reg = contract.open_volume(f"{scratch}/registered.zarr")
contract.write_zarr_atomic(preprocess.preprocess(reg, **settings["preprocess"]),
                           f"{scratch}/corrected.zarr", num_workers=workers)
t["preprocess_s"] = time.perf_counter() - t0
t["final_drift_px"] = [float(drift.dy_px.iloc[-1]), float(drift.dx_px.iloc[-1])]
print(json.dumps(t))
"""


def make_raw(path: Path, shape, chunk_z: int, drift_total_px=(4.0, -3.0)) -> None:
    """Synthetic stack: a fixed smoothed-noise texture shifted by a linear drift per slice,
    slowly changing along z, vertical stripes, Poisson-like noise; uint16, written per chunk."""
    import dask.array as da
    import numpy as np
    import xarray as xr
    from scipy import ndimage

    from voxelyte.contract import write_zarr_atomic

    nz, ny, nx = shape

    def block(block_info=None):
        (c0, c1), (z0, z1) = block_info[None]["array-location"][:2]
        out = np.empty((c1 - c0, z1 - z0, ny, nx), dtype=np.uint16)
        for c in range(c0, c1):
            for z in range(z0, z1):
                rng = np.random.default_rng([c, z])
                base = ndimage.gaussian_filter(
                    np.random.default_rng(7).random((ny, nx), dtype=np.float32), 4)
                shift = (drift_total_px[0] * z / max(nz - 1, 1),
                         drift_total_px[1] * z / max(nz - 1, 1))
                image = ndimage.shift(base, shift, order=1, mode="nearest")
                image = (image - 0.5) * 8 + 0.5 + 0.02 * np.sin(np.arange(nx) / 3.0)[None, :]
                image = image * 30000 + 5000 + rng.normal(0, 300, (ny, nx))
                out[c - c0, z - z0] = np.clip(image, 0, 65535).astype(np.uint16)
        return out

    data = da.map_blocks(block, dtype=np.uint16, chunks=((1, 1), tuple(
        min(chunk_z, nz - s) for s in range(0, nz, chunk_z)), (ny,), (nx,)))
    vs = 0.1
    ds = xr.DataArray(data, dims=("channel", "z", "y", "x"),
                      coords={"channel": ["BSE", "SE"], "z": (np.arange(nz) + 0.5) * vs,
                              "y": (np.arange(ny) + 0.5) * vs, "x": (np.arange(nx) + 0.5) * vs},
                      attrs={"voxel_size_um": [vs, vs, vs]}).to_dataset(name="raw")
    write_zarr_atomic(ds, path, num_workers=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--shape", type=int, nargs=3, default=[500, 1000, 1000])
    parser.add_argument("--chunk-z", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch files")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    shape = tuple(args.shape)
    start = time.perf_counter()
    if not (args.scratch / "raw.zarr").exists():
        make_raw(args.scratch / "raw.zarr", shape, args.chunk_z)
    generate_s = time.perf_counter() - start
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", CHILD, str(args.scratch), str(args.workers)],
                           check=True, capture_output=True, text=True)
    wall_s = time.perf_counter() - start
    stages = json.loads(child.stdout.strip().splitlines()[-1])
    peak_rss_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB -> GB
    result = {"shape_zyx": list(shape), "channels": 2,
              "stack_GB": round(2 * 2 * shape[0] * shape[1] * shape[2] / 1e9, 2),
              "chunk_z": args.chunk_z, "workers": args.workers,
              "generate_s": round(generate_s, 1), "wall_s": round(wall_s, 1),
              **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in stages.items()},
              "peak_rss_GB": round(peak_rss_gb, 2)}
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(args.scratch)


if __name__ == "__main__":
    main()
