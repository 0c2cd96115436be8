"""Tortuosity factor of the TauFactor TF500 benchmark volume: voxelyte vs TauFactor 2 CPU.

    python benchmarks/transport_taufactor.py --tiff SCRATCH/TF-500x500x500-1x2x6-v3.tiff \
        [--sizes 200 300] [--axes 0] [--full] [--threads 2] [--tools voxelyte taufactor] \
        [--method gmg|sa] [--rtol 1e-7] [--out rows.json]

Unzip ``taufactor-TF500-benchmark.tiff.zip`` (shared data) to a scratch folder outside the
repository first. Side by side: each case (tool × leading-corner crop n³ × array axis) runs in its
own child process with the same thread count (OMP/MKL/numba threads, torch.set_num_threads).
``--full``: voxelyte alone on the whole 500³ volume, all three directions in one process (the
cluster labelling is shared), with the overconverged published τ beside it (the data's README leaves the
axis of each value open; solving assigns 4.2431 to array axis 0, 1.1513 to 1 and 1.3905 to 2). Each child reports τ of the 255 phase (τ = φ·σ_bulk/σ_eff, not squared),
wall time (solve incl. setup, excl. reading the tiff and excl. numba's one-off compilation), iterations and its peak RSS
(getrusage ru_maxrss, the whole process) as one JSON line. TauFactor solves along the first array
axis, so its input is transposed for other axes.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

#: array axis -> published τ (axes assigned by solving, see above), from the reference table
PUBLISHED_TAU = {"zyx".index(axis): tau for axis, tau in yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "resources" / "literature" /
     "taufactor_tf500_published.yaml").read_text())["tortuosity_factor_by_axis"].items()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args) -> None:
    import numpy as np
    import tifffile

    vol = tifffile.imread(args.tiff)
    n = args.size or vol.shape[0]
    crop = np.ascontiguousarray(vol[:n, :n, :n] == 255)
    del vol
    phi = float(crop.mean())
    base_rss = _peak_rss_mb()
    axes = [int(a) for a in args.axis.split(",")]
    rows = []
    if args.tool == "voxelyte":
        from voxelyte.conduction import effective_conductivities
        # compile / load the numba kernels on a tiny volume first (not timed)
        effective_conductivities(np.ones((16, 16, 16), np.uint8), (1, 1, 1), axes,
                                 preconditioner=args.method)
        t0 = time.perf_counter()
        res = effective_conductivities(crop.view(np.uint8), (1, 1, 1), axes, rtol=args.rtol,
                                       preconditioner=args.method)
        total = time.perf_counter() - t0
        for r in res.values():
            a = "zyx".index(r["axis"])
            rows.append({"axis": a, "tau": phi / r["sigma_eff_S_cm"],
                         "iterations": r["iterations"], "relative_residual": r["relative_residual"],
                         "seconds": r["assemble_time_s"] + r["setup_time_s"] + r["solve_time_s"],
                         "current_imbalance_rel": r["current_imbalance_rel"]})
        rows.append({"axis": "all", "seconds": total})
    else:
        import taufactor
        import torch
        torch.set_num_threads(args.threads)
        for a in axes:
            t0 = time.perf_counter()
            img = np.ascontiguousarray(np.moveaxis(crop, a, 0)).astype(np.uint8)
            solver = taufactor.Solver(img, device="cpu")
            tau = solver.solve(verbose=False)
            rows.append({"axis": a, "tau": float(np.asarray(tau).ravel()[0]),
                         "iterations": getattr(solver, "iter", None),
                         "seconds": time.perf_counter() - t0})
    for r in rows:
        r.update(peak_rss_mb=_peak_rss_mb(), rss_before_solve_mb=base_rss, phi=phi)
    print(json.dumps(rows), flush=True)


def _run(args, tool, n, axes, env):
    cmd = [sys.executable, __file__, "--child", "--tiff", args.tiff, "--tool", tool,
           "--size", str(n), "--axis", ",".join(str(a) for a in axes), "--threads",
           str(args.threads), "--rtol", str(args.rtol), "--method", args.method]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        print(f"{tool} {n} {axes} failed:\n{proc.stderr[-2000:]}", flush=True)
        return []
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tiff", required=True)
    p.add_argument("--sizes", type=int, nargs="*", default=[200, 300])
    p.add_argument("--axes", type=int, nargs="+", default=[0])
    p.add_argument("--full", action="store_true", help="voxelyte on the full volume, 3 axes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tools", nargs="+", default=["voxelyte", "taufactor"])
    p.add_argument("--method", default="gmg", help="voxelyte preconditioner: gmg, sa, rs")
    p.add_argument("--rtol", type=float, default=1e-7)
    p.add_argument("--out")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tool", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--axis", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args)
        return
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(args.threads)
    rows = []
    head = (f"{'tool':10s} {'n':>4s} {'axis':>4s} {'tau':>8s} {'published':>9s} {'time_s':>8s} "
            f"{'iter':>5s} {'peak_RSS_MB':>11s} {'speed-up':>8s}")
    print(head, flush=True)

    def show(tool, n, r, published="", speedup=""):
        tau = f"{r['tau']:8.4f}" if "tau" in r else " " * 8
        print(f"{tool:10s} {n:4d} {str(r['axis']):>4s} {tau} {published:>9s} "
              f"{r['seconds']:8.1f} {str(r.get('iterations', '')):>5s} "
              f"{r['peak_rss_mb']:11.0f} {speedup:>8s}", flush=True)

    for n in args.sizes:
        for axis in args.axes:
            done = {}
            for tool in args.tools:
                if tool == "taufactor":
                    try:
                        import taufactor  # noqa: F401
                    except ImportError:
                        print("taufactor not installed: skipped", flush=True)
                        continue
                out = [r for r in _run(args, tool, n, [axis], env) if r["axis"] != "all"]
                for r in out:
                    r.update(tool=tool, n=n, threads=args.threads)
                    rows.append(r)
                    done[tool] = r
            for tool, r in done.items():
                speed = ""
                if tool == "voxelyte" and "taufactor" in done:
                    speed = f"{done['taufactor']['seconds'] / r['seconds']:.1f}x"
                show(tool, n, r, speedup=speed)
    if args.full:
        out = _run(args, "voxelyte", 0, [0, 1, 2], env)
        for r in out:
            r.update(tool="voxelyte", n=500, threads=args.threads)
            rows.append(r)
            pub = PUBLISHED_TAU.get(r["axis"])
            if pub is not None:
                r["deviation_from_published_rel"] = r["tau"] / pub - 1
                show("voxelyte", 500, r, f"{pub:.4f}")
            else:
                show("voxelyte", 500, r)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
