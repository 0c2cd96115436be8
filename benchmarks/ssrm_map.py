"""Benchmark: full-surface SSRM map of a phantom (every face pixel a tip position), time and peak
memory, and the accuracy against independent per-pixel whole-volume solves (multigrid-CG or
AMG-CG) on random pixels.

    python benchmarks/ssrm_map.py --size 128 --check 100 --out ssrm_bench.json
    python benchmarks/ssrm_map.py --size 256 --check 20
    python benchmarks/ssrm_map.py --size 128 --reference ssrm_128.npz   # reuse saved references

The phantom is the BM10-like demo phantom (config/samples/BM10.yaml) at size³ voxels of 0.1 µm,
electronic conductivities from its phase table. Peak RSS is the process's maximum resident set.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from voxelyte import config, contract, phantom, ssrm

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    defaults = config.stage_defaults()["ssrm"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sample", default="BM10")
    ap.add_argument("--check", type=int, default=100, help="random pixels solved independently")
    ap.add_argument("--tile", type=int, default=defaults["tile_voxels"])
    ap.add_argument("--halo", type=int, default=defaults["halo_voxels"])
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--method", default="auto")
    ap.add_argument("--check-tip", type=int, default=5,
                    help="of the checked pixels, this many also with the Dirichlet tip window")
    ap.add_argument("--out", default=None)
    ap.add_argument("--save", default=None, help="npz with the map and the checked pixels")
    ap.add_argument("--reference", default=None,
                    help="npz from an earlier --save of the same phantom: its checked pixels "
                         "and reference values are reused instead of solved again")
    ap.add_argument("--ref-rtol", type=float, default=1e-8,
                    help="relative residual of the reference solves (multigrid: stops near "
                         "1e-7, its float32 floor)")
    ap.add_argument("--ref-solver", choices=("gmg", "amg"), default="gmg",
                    help="reference solver: matrix-free multigrid-CG (~6 s per 128³ solve) or "
                         "pyamg AMG-CG (~35 s, ~1 kB per voxel: not for 256³ on 24 GB)")
    args = ap.parse_args(argv)

    cfg = yaml.safe_load((REPO / "config" / "samples" / f"{args.sample}.yaml").read_text())
    params = dict(cfg["phantom"], shape_zyx=[args.size] * 3)
    t0 = time.perf_counter()
    labels = phantom.generate_structure(phantom.resolve_params(params)).labels
    n = args.size
    y0, x0 = (labels.shape[1] - n) // 2, (labels.shape[2] - n) // 2
    labels = np.ascontiguousarray(labels[:n, y0:y0 + n, x0:x0 + n])
    sigma = contract.phase_table(cfg["phases"]).conductivity_field(labels, "electronic")
    labels_sha = hashlib.sha256(labels.tobytes()).hexdigest()
    t_phantom = time.perf_counter() - t0

    def progress(done, total):
        print(f"  {done}/{total} positions, {time.perf_counter() - t1:.0f} s", flush=True)

    t1 = time.perf_counter()
    m = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=1, method=args.method,
                            tile_voxels=args.tile, halo_voxels=args.halo,
                            depth_voxels=args.depth or ssrm.DEPTH_PER_HALO * args.halo,
                            progress=progress)
    t_map = time.perf_counter() - t1
    rss_map_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    R, P = m["resistance_ohm"], m["positions"]
    model = m["model"]
    print(json.dumps({"map_time_s": t_map, "peak_rss_gb_after_map": rss_map_gb,
                      "cpu_time_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                      "probe_time_s": m.get("probe_time_s"),
                      "factor_time_s": m.get("factor_time_s")}), flush=True)
    if args.save:
        np.savez_compressed(args.save, positions=P, resistance_ohm=R)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(P), min(args.check, len(P)), replace=False)
    # independent reference per checked pixel: the 3D problem of a unit current injected at the
    # pixel, solved over the whole volume (--ref-solver, one shared hierarchy, --ref-rtol):
    # R = 1/G_b + phi(pixel); a few pixels also with the Dirichlet tip window (tip_field)
    t2 = time.perf_counter()
    if args.reference:
        saved = np.load(args.reference)
        if str(saved["labels_sha256"]) != labels_sha:
            raise SystemExit(f"{args.reference}: references of another phantom (labels differ)")
        where = {tuple(q): k for k, q in enumerate(P.tolist())}
        pick = np.array([where[tuple(q)] for q in saved["checked"].tolist()])
        ref = np.asarray(saved["reference_ohm"], dtype=float)
    else:
        ref = np.full(len(pick), np.inf)
    rows = model.index_map[0, P[pick, 0], P[pick, 1]]
    to_solve = [] if args.reference else np.flatnonzero(rows >= 0)
    b = np.zeros((model.A.shape[0], 1))
    for j in to_solve:                               # one column at a time: lean memory
        b[rows[j], 0] = 1.0
        solve = ssrm.gmg_face_solve if args.ref_solver == "gmg" else ssrm.amg_solve
        x = solve(model, b, args.ref_rtol)[rows[j], 0]
        b[rows[j], 0] = 0.0
        ref[j] = x + 1.0 / model.g_tip[P[pick[j], 0], P[pick[j], 1]]
        if np.isfinite(R[pick[j]]):
            err = abs(R[pick[j]] / ref[j] - 1)
        else:
            err = float("inf")
        print(f"  reference {j + 1}/{len(pick)}: pixel {P[pick[j]].tolist()} R {R[pick[j]]:.6g}"
              f" ref {ref[j]:.6g} rel.err {err:.2e}, {time.perf_counter() - t2:.0f} s",
              flush=True)
    tip_check = []
    for k in pick[:args.check_tip]:
        r_tip = ssrm.tip_resistance(None, None, P[k], offsets=m["offsets"], model=model)
        j = int(np.nonzero(pick == k)[0][0])
        tip_check.append(abs(r_tip / ref[j] - 1) if np.isfinite(r_tip) else 0.0)
    errors = []
    for j, k in enumerate(pick):
        if np.isfinite(ref[j]) and np.isfinite(R[k]):
            errors.append(abs(R[k] / ref[j] - 1))
        else:
            errors.append(0.0 if np.isfinite(ref[j]) == np.isfinite(R[k]) else float("inf"))
    errors = np.array(errors)
    out = {
        "size": n, "sample": args.sample, "positions": int(len(P)), "method": m["method"],
        "tile_voxels": args.tile, "halo_voxels": args.halo,
        "depth_voxels": m.get("depth_voxels"), "n_tiles": m.get("n_tiles"),
        "n_probe_solves": m.get("n_probe_solves"), "probe_time_s": m.get("probe_time_s"),
        "factor_time_s": m.get("factor_time_s"), "map_time_s": t_map,
        "phantom_time_s": t_phantom, "peak_rss_gb_after_map": rss_map_gb,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "checked_pixels": int(len(errors)), "reference_reused": bool(args.reference),
        "reference_solver": None if args.reference else args.ref_solver,
        "check_time_s": time.perf_counter() - t2,
        "max_rel_error": float(errors.max()) if errors.size else None,
        "mean_rel_error": float(errors.mean()) if errors.size else None,
        "median_rel_error": float(np.median(errors)) if errors.size else None,
        "n_above_1_percent": int(np.count_nonzero(errors > 0.01)),
        "worst_pixels": [{"pixel": P[pick[j]].tolist(), "rel_error": float(errors[j]),
                          "reference_ohm": float(ref[j])}
                         for j in np.argsort(-errors)[:5].tolist()],
        "tip_window_vs_injection_max_rel": max(tip_check) if tip_check else None,
        "backend": "pardiso" if ssrm.Pardiso.library() is not None else "superlu",
    }
    print(json.dumps(out, indent=1))
    if args.save:
        np.savez_compressed(args.save, positions=P, resistance_ohm=R, checked=P[pick],
                            reference_ohm=ref, rel_error=errors, labels_sha256=labels_sha)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
