"""Segmentation at scale: wall time and peak memory of the segment stage (trainable default:
scribbles on <= 3 % of the slices, random forest, chunk-wise prediction, island removal, zarr
write) on a 400^3 two-channel volume with 2 threads.

The volume is a synthetic three-phase structure (thresholded smoothed noise: pore / SE / CAM
at about 0.06 / 0.47 / 0.47), rendered into two channels the way the phantom renders BSE and
SE (phase levels, SE-detector brightening of the solid at pore edges, blur, noise), stored as a corrected.zarr-
like store and read lazily, like the workflow does. Generation is not timed; the segmentation
runs in a fresh process whose peak RSS (``resource.getrusage``) is reported.

    .venv/bin/python benchmarks/segment_scale.py [--size 400] [--threads 2] [--workdir DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHASES = {"pore": {"label": 0}, "CAM": {"label": 1}, "SE": {"label": 2}}


def make_volume(path: Path, n: int, seed: int = 0) -> None:
    import xarray as xr
    from scipy import ndimage

    from voxelyte import contract

    rng = np.random.default_rng(seed)
    labels = np.empty((n, n, n), np.uint8)
    bse = np.empty((n, n, n), np.float32)
    se = np.empty((n, n, n), np.float32)
    step = 50                                      # slabs with overlap, to bound memory
    field = ndimage.gaussian_filter(rng.standard_normal((n, n, n), dtype=np.float32), 6.0)
    lo, hi = np.quantile(field[::4, ::4, ::4], [0.06, 0.53])
    labels[:] = np.where(field < lo, 0, np.where(field < hi, 2, 1))
    del field
    levels_bse = np.array([0.08, 0.80, 0.45], np.float32)
    levels_se = np.array([0.12, 0.50, 0.40], np.float32)
    for z0 in range(0, n, step):
        sl = slice(z0, min(z0 + step, n))
        lab = labels[sl]
        pore = (lab == 0).astype(np.float32)
        edge = np.stack([ndimage.gaussian_gradient_magnitude(p, 1.0) for p in pore])
        edge[pore > 0] = 0.0                       # edge effect on the solid side only
        b = ndimage.gaussian_filter(levels_bse[lab], (0, 0.8, 0.8))
        s = ndimage.gaussian_filter(levels_se[lab] + 1.5 * edge, (0, 0.8, 0.8))
        bse[sl] = b + rng.normal(0, 0.04, b.shape).astype(np.float32)
        se[sl] = s + rng.normal(0, 0.04, s.shape).astype(np.float32)
    coords = {a: (np.arange(n) + 0.5) * 0.1 for a in "zyx"}
    ds = xr.Dataset({"corrected": (("channel", "z", "y", "x"), np.stack([bse, se]))},
                    coords={"channel": ["BSE", "SE"], **coords},
                    attrs={"voxel_size_um": [0.1, 0.1, 0.1]})
    contract.write_zarr_atomic(ds.chunk({"channel": 1, "z": 16, "y": -1, "x": -1}),
                         path / "corrected.zarr", num_workers=2)
    np.save(path / "truth.npy", labels)


def run_segment(path: Path, threads: int, method: str) -> dict:
    import resource

    from threadpoolctl import threadpool_limits

    from voxelyte import contract, evaluate
    from voxelyte import segment as seg

    start = time.perf_counter()
    corrected = contract.open_volume(path / "corrected.zarr")
    with threadpool_limits(threads):
        ann = classes = None
        if method == "trainable":
            truth = np.load(path / "truth.npy", mmap_mode="r")
            ann, table = seg.phantom_scribbles(np.asarray(truth), PHASES)
            classes = seg.class_table(table, PHASES)
            del truth
        labels, info, model = seg.segment(corrected, phases=PHASES, annotations=ann,
                                          classes=classes, num_workers=threads, method=method,
                                          min_island_um3=0.005)
        contract.write_zarr_atomic(labels, path / f"labels_{method}.zarr", num_workers=threads)
    wall = time.perf_counter() - start
    truth = np.load(path / "truth.npy", mmap_mode="r")
    score = evaluate.score(contract.open_volume(path / f"labels_{method}.zarr")["labels"].values,
                      np.asarray(truth), PHASES)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb),
            "timings_s": {k: round(v, 1) for k, v in info["timings_s"].items()},
            "iou": {k: round(v, 4) for k, v in score["iou"].items()},
            "volume_fraction_error_pp": {k: round(v, 3) for k, v in
                                         score["volume_fraction_error_pp"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="trainable,unsupervised")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_segment(Path(args.workdir), args.threads, args.child)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="segbench-"))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "corrected.zarr").exists():
        t = time.perf_counter()
        make_volume(work, args.size)
        print(f"made a {args.size}^3 two-channel volume in {time.perf_counter() - t:.0f} s",
              file=sys.stderr)
    for method in args.methods.split(","):
        env_threads = str(args.threads)
        done = subprocess.run(
            [sys.executable, __file__, "--workdir", str(work), "--threads", env_threads,
             "--child", method], capture_output=True, text=True,
            env={**__import__("os").environ, "OMP_NUM_THREADS": env_threads,
                 "OPENBLAS_NUM_THREADS": env_threads, "NUMBA_NUM_THREADS": env_threads})
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(done.returncode)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(size=args.size, threads=args.threads)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
