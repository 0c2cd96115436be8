"""Benchmark: full-surface SSRM map of a phantom (every face pixel a tip position), time and peak
memory, and the accuracy against independent per-pixel AMG-CG solves on random pixels.

    python benchmarks/ssrm_map.py --size 128 --check 100 --out ssrm_bench.json
    python benchmarks/ssrm_map.py --size 256 --check 20

The phantom is the BM10-like demo phantom (config/samples/BM10.yaml) at size³ voxels of 0.1 µm,
electronic conductivities from its phase table. Peak RSS is the process's maximum resident set.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from voxelyte import phantom, ssrm

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sample", default="BM10")
    ap.add_argument("--check", type=int, default=100, help="random pixels solved independently")
    ap.add_argument("--tile", type=int, default=ssrm.SSRM_DEFAULTS["tile_voxels"])
    ap.add_argument("--halo", type=int, default=ssrm.SSRM_DEFAULTS["halo_voxels"])
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    cfg = yaml.safe_load((REPO / "config" / "samples" / f"{args.sample}.yaml").read_text())
    params = dict(cfg["phantom"], shape_zyx=[args.size] * 3)
    t0 = time.perf_counter()
    labels = phantom.generate_structure(phantom.resolve_params(params)).labels
    n = args.size
    y0, x0 = (labels.shape[1] - n) // 2, (labels.shape[2] - n) // 2
    labels = np.ascontiguousarray(labels[:n, y0:y0 + n, x0:x0 + n])
    sigma = ssrm.conductivity_field(labels, cfg["phases"])
    t_phantom = time.perf_counter() - t0

    def progress(done, total):
        print(f"  {done}/{total} positions, {time.perf_counter() - t1:.0f} s", flush=True)

    t1 = time.perf_counter()
    m = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=1, method=args.method,
                            tile_voxels=args.tile, halo_voxels=args.halo,
                            depth_voxels=args.depth or 2 * args.halo, progress=progress)
    t_map = time.perf_counter() - t1
    rss_map_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    R, P = m["resistance_ohm"], m["positions"]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(P), min(args.check, len(P)), replace=False)
    errors, t2 = [], time.perf_counter()
    for k in pick:
        ref = ssrm.tip_resistance(None, None, P[k], offsets=m["offsets"], _model=m["model"])
        if np.isfinite(ref) or np.isfinite(R[k]):
            errors.append(abs(R[k] / ref - 1) if np.isfinite(ref) and np.isfinite(R[k])
                          else float("inf"))
        else:
            errors.append(0.0)
    errors = np.array(errors)
    out = {
        "size": n, "sample": args.sample, "positions": int(len(P)), "method": m["method"],
        "tile_voxels": args.tile, "halo_voxels": args.halo,
        "depth_voxels": m.get("depth_voxels"), "n_tiles": m.get("n_tiles"),
        "n_probe_solves": m.get("n_probe_solves"), "probe_time_s": m.get("probe_time_s"),
        "factor_time_s": m.get("factor_time_s"), "map_time_s": t_map,
        "phantom_time_s": t_phantom, "peak_rss_gb_after_map": rss_map_gb,
        "checked_pixels": int(len(errors)), "check_time_s": time.perf_counter() - t2,
        "max_rel_error": float(errors.max()) if errors.size else None,
        "mean_rel_error": float(errors.mean()) if errors.size else None,
        "n_above_1_percent": int(np.count_nonzero(errors > 0.01)),
        "backend": "pardiso" if ssrm._Pardiso.library() is not None else "superlu",
    }
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
