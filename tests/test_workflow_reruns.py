"""Workflow execution behaviour: per-rule resources from the sample size (with sample-file
overrides), reruns limited to the sample whose config changed, and a job killed mid-write
leaving nothing a later run takes as complete."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_workflow import demo_sample, run_snakemake, write_study

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def tiny_sample(repo_root: Path, seed: int, shape=(16, 32, 32)) -> dict:
    sample = demo_sample(repo_root)
    sample["phantom"].update(seed=seed, shape_zyx=list(shape), cam_d50_um=1.0, se_d50_um=1.2)
    sample["stages"] = {"ingest": {"chunks_zyx": [4, 1024, 1024]}}
    return sample


def jobs_of(dry_run_stdout: str) -> dict[str, dict]:
    """(rule, sample) -> {'threads': int, 'mem_mb': int, 'runtime': int} from a dry run."""
    jobs, rule = {}, None
    for line in dry_run_stdout.splitlines():
        line = line.strip()
        if line.startswith("rule ") or line.startswith("localrule "):
            rule, info = line.split()[1].rstrip(":"), {"threads": 1}  # 1 is not printed
        elif rule and line.startswith("wildcards: sample="):
            info["sample"] = line.split("=", 1)[1]
        elif rule and line.startswith("threads:"):
            info["threads"] = int(line.split()[1])
        elif rule and line.startswith("resources:"):
            for item in line.split(":", 1)[1].split(","):
                key, _, value = item.strip().partition("=")
                if key in ("mem_mb", "runtime"):
                    info[key] = int(value)
            jobs[(rule, info.get("sample"))] = info
    return jobs


def dry_run(repo_root, study_file, *targets):
    done = run_snakemake(repo_root, "-n", "--cores", "2", "--configfile", str(study_file),
                         "--directory", str(study_file.parent), *targets)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return done.stdout


def test_resources_follow_sample_size_and_overrides(repo_root, tmp_path):
    small = tiny_sample(repo_root, 1, shape=(40, 100, 100))           # 0.4 Mvoxel
    big = tiny_sample(repo_root, 2, shape=(400, 1000, 1000))           # 400 Mvoxel
    big["resources"] = {"preprocess": {"mem_mb": 12345, "threads": 1, "runtime_min": 99}}
    jobs = jobs_of(dry_run(repo_root, write_study(tmp_path, "r", {"small": small, "big": big})))
    # size-based: the 1000x larger volume asks for more memory and time
    for rule in ("phantom", "register", "descriptors"):
        assert jobs[(rule, "big")]["mem_mb"] > jobs[(rule, "small")]["mem_mb"], rule
    assert jobs[("register", "big")]["runtime"] > jobs[("register", "small")]["runtime"]
    # register: 1000 MB + 4 MB per Mvoxel (benchmarks/register_preprocess_scale.py: 2 GiB peak
    # for 500 Mvoxel x 2 channels)
    assert jobs[("register", "big")]["mem_mb"] == 1000 + 4 * 400
    # the sample file's override wins, for that rule only
    assert jobs[("preprocess", "big")] == {"sample": "big", "threads": 1, "mem_mb": 12345,
                                           "runtime": 99}
    # threads: one for a small volume (jobs of several samples share the cores), more for a big one
    assert jobs[("preprocess", "small")]["threads"] == 1
    assert jobs[("register", "big")]["threads"] == 2


def test_resources_naming_an_unknown_rule_is_a_clear_error(repo_root, tmp_path):
    sample = tiny_sample(repo_root, 1)
    sample["resources"] = {"registr": {"mem_mb": 1000}}
    done = run_snakemake(repo_root, "-n", "--cores", "1", "--configfile",
                         str(write_study(tmp_path, "bad", {"S": sample})))
    assert done.returncode != 0
    text = done.stderr + done.stdout
    assert "sample 'S'" in text and "resources.registr" in text and "register" in text


@pytest.mark.slow
def test_only_the_changed_sample_reruns(repo_root, tmp_path):
    samples = {"A": tiny_sample(repo_root, 1), "B": tiny_sample(repo_root, 2)}
    study_file = write_study(tmp_path, "t", samples)
    out = tmp_path / "results" / "t"
    targets = [str(out / s / "provenance" / "preprocess.json") for s in samples]
    done = run_snakemake(repo_root, "--cores", "2", "--configfile", str(study_file),
                         "--directory", str(tmp_path), *targets)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Nothing to be done" in dry_run(repo_root, study_file, *targets)

    # resources only: nothing reruns
    samples["A"]["resources"] = {"register": {"mem_mb": 3000}}
    write_study(tmp_path, "t", samples)
    assert "Nothing to be done" in dry_run(repo_root, study_file, *targets)

    # a preprocess parameter of sample A: A's preprocess reruns, nothing of B, nothing upstream
    samples["A"]["stages"]["preprocess"] = {"contrast_percentiles": [1.0, 99.0]}
    write_study(tmp_path, "t", samples)
    jobs = jobs_of(dry_run(repo_root, study_file, *targets))
    assert set(jobs) == {("preprocess", "A")}


@pytest.mark.slow
def test_a_job_killed_mid_write_is_redone(repo_root, tmp_path):
    sample = tiny_sample(repo_root, 3, shape=(48, 160, 160))
    study_file = write_study(tmp_path, "k", {"S": sample})
    out = tmp_path / "results" / "k" / "S"
    target = str(out / "provenance" / "register.json")
    run = ["--snakefile", str(repo_root / "Snakefile"), "--cores", "1", "--configfile",
           str(study_file), "--directory", str(tmp_path)]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # stop the whole run (Snakemake and its job) hard while register runs
    proc = subprocess.Popen([*SNAKEMAKE, *run, target], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    log = tmp_path / "results" / "k" / "logs" / "register" / "S.log"
    deadline = time.monotonic() + 300
    while not (log.exists() and "rule register" in log.read_text()):
        assert proc.poll() is None, "the run ended before register started"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # no complete-looking artefact: the store is only renamed into place when fully written
    assert not (out / "provenance" / "register.json").exists()
    assert not (out / "registered.zarr" / "zarr.json").exists()
    # a hard kill leaves Snakemake's lock: unlock (as its message says), then the next run
    # (rerun-incomplete as in profiles/local) redoes register and completes
    done = subprocess.run([*SNAKEMAKE, *run, "--unlock"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    done = subprocess.run([*SNAKEMAKE, *run, "--rerun-incomplete", target], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (out / "registered.zarr" / "zarr.json").exists()
    assert "Nothing to be done" in dry_run(repo_root, study_file, target)
