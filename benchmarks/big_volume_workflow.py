"""Benchmark: a 500 M-voxel two-channel uint16 phantom through the workflow's ingest ->
register -> preprocess -> segment -> evaluate rules, wall time and peak RSS per rule.

    python benchmarks/big_volume_workflow.py --workdir /path/to/scratch [--shape 500 1000 1000]

Writes a one-sample study into ``--workdir`` (the BM01-like demo sample, phantom shape
``--shape``, trainable segmentation on phantom scribbles) and runs Snakemake there up to
the phantom's ``evaluate/evaluation.json`` (its IoU) with ``--cores`` cores, exactly as a user would (``--directory`` = workdir,
results under it). Each rule's wall time and peak RSS come from Snakemake's ``benchmark:``
files (``s``, ``max_rss`` in MB, of the job's whole process tree); the phantom rule that makes the
input TIFF stack is listed too but is not part of the chain. Prints a JSON table and, with
``--markdown``, a README-ready table. The limit checked is 24 GiB peak RSS per rule.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CHAIN = ("phantom", "ingest", "register", "preprocess", "segment", "evaluate")
LIMIT_GIB = 24.0


def write_study(workdir: Path, shape, sample: str) -> Path:
    source = REPO / "config" / "samples" / f"{sample}.yaml"
    config = yaml.safe_load(source.read_text())
    if (config.get("measured") or {}).get("table"):     # the copy lives elsewhere
        config["measured"]["table"] = str((source.parent / config["measured"]["table"]).resolve())
    config["phantom"]["shape_zyx"] = [int(s) for s in shape]
    config.pop("resources", None)
    (workdir / f"{sample}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    study = {"study": "big", "results_dir": str(workdir / "results"),
             "samples": {sample: str(workdir / f"{sample}.yaml")}}
    path = workdir / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def read_benchmarks(results: Path, sample: str) -> list[dict]:
    rows = []
    for rule in CHAIN:
        tsv = results / "big" / "benchmarks" / rule / f"{sample}.tsv"
        if not tsv.exists():
            rows.append({"rule": rule, "wall_s": None, "peak_rss_GiB": None})
            continue
        with tsv.open() as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        rss_mb = float(row["max_rss"]) if row["max_rss"] not in ("", "NA", "-") else float("nan")
        rows.append({"rule": rule, "wall_s": round(float(row["s"]), 1),
                     "peak_rss_GiB": round(rss_mb / 1024, 2)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--shape", type=int, nargs=3, default=[500, 1000, 1000])
    ap.add_argument("--sample", default="BM01")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    study = write_study(args.workdir, args.shape, args.sample)
    target = args.workdir / "results" / "big" / args.sample / "evaluate" / "evaluation.json"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
         "--cores", str(args.cores), "--configfile", str(study), "--directory",
         str(args.workdir), str(target)], env=env)
    total_s = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"the workflow failed (exit {done.returncode}); logs under "
                         f"{args.workdir / 'results' / 'big' / 'logs'}")
    rows = read_benchmarks(args.workdir / "results", args.sample)
    segmentation = json.loads((target.parents[1] / "segment" / "segmentation.json").read_text())
    scores = json.loads(target.read_text())["segmentation"]
    result = {"shape_zyx": args.shape, "voxels_M": round(
        args.shape[0] * args.shape[1] * args.shape[2] / 1e6, 1), "cores": args.cores,
        "rules": rows, "chain_wall_s": round(sum(r["wall_s"] or 0 for r in rows[1:]), 1),
        "max_peak_rss_GiB": max((r["peak_rss_GiB"] or 0) for r in rows[1:]),
        "within_limit": all((r["peak_rss_GiB"] or 0) <= LIMIT_GIB for r in rows[1:]),
        "segment_timings_s": segmentation.get("timings_s"),
        "segment_iou": {frame.removeprefix("score_"): scores[frame].get("iou")
                        for frame in ("score_truth_grid", "score_registered_frame")
                        if frame in scores},
        "snakemake_total_s": round(total_s, 1)}
    print(json.dumps(result, indent=2))
    if args.markdown:
        print("\n| rule | wall time (s) | peak RSS (GiB) |\n|---|---:|---:|")
        for r in rows:
            print(f"| {r['rule']} | {r['wall_s']} | {r['peak_rss_GiB']} |")


if __name__ == "__main__":
    main()
