"""Wall time and peak RSS of each descriptor on a phantom (default 400³ voxels).

    python benchmarks/descriptors_scale.py [--shape 400] [--voxel-um 0.1] [--out results.json]

A first child process generates the phantom (voxelyte.phantom.generate_structure) and stores
its ground-truth labels as a zarr store (z-chunks of 32 planes) and a .npy file in a temporary
folder. Then every descriptor runs in its own child process; each child reports its wall time
and its peak RSS (resource.getrusage(RUSAGE_SELF).ru_maxrss) as one JSON line. Local
descriptors read the zarr store lazily (slab-wise, ``lazy``), the global ones the .npy file. The
``baseline`` child only imports the libraries and opens the store: subtract its RSS.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = {"pore": {"label": 0, "density_g_cm3": 0.0}, "CAM": {"label": 1, "density_g_cm3": 4.75},
          "SE": {"label": 2, "density_g_cm3": 2.2}}

# name -> (input kind, call); `L` = labels, `V` = voxel size, `P` = phases
TASKS = {
    "baseline": ("lazy", "None"),
    "volume_fractions": ("lazy", "D.volume_fractions(L, P)"),
    "through_thickness_profile": ("lazy", "D.through_thickness_profile(L, P, V)"),
    "slice_descriptors_2d": ("lazy", "D.slice_descriptors_2d(L, P, V)"),
    "chord_lengths": ("lazy", "D.chord_lengths(L, P, V)"),
    "phase_surface_areas+interface_areas": ("lazy", "D.interface_areas(L, P, V)"),
    "two_point_correlation_CAM": ("lazy", "D.two_point_correlation(L, 1, V)"),
    "connectivity": ("numpy", "D.connectivity(L, P)"),
    "local_thickness+granulometry_CAM": ("numpy", "D.local_thickness_distribution(L, 1, V)"),
    "separate_particles_CAM": ("numpy", "D.separate_particles(L, 1, V)"),
    "compute_descriptors": ("numpy", "D.compute_descriptors(L, voxel_size_um=V, phases=P, **config.stage_defaults()['descriptors'])"),
}


def _child(args) -> None:
    if args.task == "phantom":
        import numpy as np
        import xarray as xr

        from voxelyte.contract import write_zarr_atomic
        from voxelyte.phantom import generate_structure

        t0 = time.perf_counter()
        st = generate_structure({"shape_zyx": [args.shape] * 3, "voxel_size_um": args.voxel_um,
                                 "seed": 0})
        labels = np.ascontiguousarray(st.central(st.labels))
        del st
        np.save(Path(args.work) / "labels.npy", labels)
        ds = xr.Dataset({"labels": (("z", "y", "x"), labels)}).chunk({"z": 32})
        write_zarr_atomic(ds, Path(args.work) / "labels.zarr")
        result = {"seconds": time.perf_counter() - t0}
    else:
        import numpy as np

        from voxelyte import config
        from voxelyte import descriptors as D
        from voxelyte.contract import open_volume

        kind, call = TASKS[args.task]
        if kind == "lazy":
            L = open_volume(Path(args.work) / "labels.zarr")["labels"]
        else:
            L = np.load(Path(args.work) / "labels.npy")
        V, P = (args.voxel_um,) * 3, PHASES
        t0 = time.perf_counter()
        eval(call, {"D": D, "L": L, "V": V, "P": P, "config": config})  # noqa: S307 - fixed strings
        result = {"seconds": time.perf_counter() - t0, "input": kind}
    result["peak_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"task": args.task, **result}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, default=400)
    parser.add_argument("--voxel-um", type=float, default=0.1)
    parser.add_argument("--tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        return _child(args)
    results = []
    with tempfile.TemporaryDirectory(prefix="voxelyte-bench-") as work:
        for task in ["phantom", *args.tasks]:
            cmd = [sys.executable, __file__, "--task", task, "--work", work,
                   "--shape", str(args.shape), "--voxel-um", str(args.voxel_um)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                results.append({"task": task, "error": proc.stderr.strip().splitlines()[-1:]})
            else:
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    summary = {"shape": [args.shape] * 3, "voxels": args.shape ** 3, "voxel_size_um": args.voxel_um,
               "results": results}
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
