"""Tortuosity factor of the TauFactor TF500 benchmark volume: voxelyte (AMG-CG) vs TauFactor CPU.

    python benchmarks/transport_taufactor.py --tiff SCRATCH/TF-500x500x500-1x2x6-v3.tiff \
        [--sizes 100 200] [--axes 0] [--threads 2] [--tools voxelyte taufactor] [--float32]

Unzip ``taufactor-TF500-benchmark.tiff.zip`` (shared data) to a scratch folder outside the
repository first. Each case (tool × leading-corner crop n³ × array axis) runs in its own child
process, which reports τ of the 255 phase, wall time (solve incl. setup, excl. reading the tiff),
iterations and its peak RSS (getrusage ru_maxrss) as one JSON line. Both tools get the same thread
count (OMP/MKL/numba threads, torch.set_num_threads). Published overconverged τ of the full volume:
1.1513, 1.3905, 4.2431 (array axis 0 is the 4.2431 direction). TauFactor solves along the first
array axis, so its input is transposed for other axes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def _child(args) -> None:
    import numpy as np
    import tifffile

    vol = tifffile.imread(args.tiff)
    n = args.size
    crop = np.ascontiguousarray(vol[:n, :n, :n] == 255)
    del vol
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if args.tool == "voxelyte":
        from voxelyte.transport import tortuosity
        r = tortuosity(crop.view(np.uint8), 1, (1, 1, 1), args.axis, rtol=args.rtol,
                       dtype=np.float32 if args.float32 else np.float64)
        out = {"tau": r["tortuosity_factor"], "iterations": r["iterations"],
               "relative_residual": r["relative_residual"],
               "current_imbalance_rel": r["current_imbalance_rel"]}
    else:
        import torch
        import taufactor
        torch.set_num_threads(args.threads)
        img = np.moveaxis(crop, args.axis, 0).astype(np.uint8)
        solver = taufactor.Solver(np.ascontiguousarray(img), device="cpu")
        tau = solver.solve(verbose=False)
        out = {"tau": float(np.asarray(tau).ravel()[0]), "iterations": getattr(solver, "iter", None)}
    out.update(seconds=time.perf_counter() - t0,
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               rss_before_solve_mb=base_rss / 1024)
    print(json.dumps(out), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiff", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 200])
    p.add_argument("--axes", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tools", nargs="+", default=["voxelyte", "taufactor"])
    p.add_argument("--rtol", type=float, default=1e-7)
    p.add_argument("--float32", action="store_true")
    p.add_argument("--out")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tool", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--axis", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args)
        return
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(args.threads)
    rows = []
    print(f"{'tool':10s} {'n':>4s} {'axis':>4s} {'tau':>9s} {'time_s':>8s} {'iter':>6s} "
          f"{'peak_RSS_MB':>11s}", flush=True)
    for n in args.sizes:
        for axis in args.axes:
            for tool in args.tools:
                if tool == "taufactor":
                    try:
                        import taufactor  # noqa: F401
                    except ImportError:
                        print("taufactor not installed: skipped", flush=True)
                        continue
                cmd = [sys.executable, __file__, "--child", "--tiff", args.tiff, "--tool", tool,
                       "--size", str(n), "--axis", str(axis), "--threads", str(args.threads),
                       "--rtol", str(args.rtol)] + (["--float32"] if args.float32 else [])
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode:
                    print(f"{tool} {n} {axis} failed:\n{proc.stderr[-2000:]}", flush=True)
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r.update(tool=tool, n=n, axis=axis, threads=args.threads)
                rows.append(r)
                print(f"{tool:10s} {n:4d} {axis:4d} {r['tau']:9.4f} {r['seconds']:8.1f} "
                      f"{str(r['iterations']):>6s} {r['peak_rss_mb']:11.0f}", flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
