"""The Snakemake workflow: a dry run of the default study and a real run of a tiny phantom study."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(repo_root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([*SNAKEMAKE, "--snakefile", str(repo_root / "Snakefile"), *args],
                          cwd=cwd or repo_root, env=env, capture_output=True, text=True,
                          timeout=900)


def demo_sample(repo_root: Path, name: str = "BM10") -> dict:
    """A demo sample file's content, its literature table path made absolute (the copy is
    written elsewhere)."""
    path = repo_root / "config" / "samples" / f"{name}.yaml"
    sample = yaml.safe_load(path.read_text())
    measured = sample.get("measured") or {}
    if measured.get("table"):
        measured["table"] = str((path.parent / measured["table"]).resolve())
    return sample


def write_study(tmp_path: Path, study: str, samples: dict[str, dict]) -> Path:
    """Write sample files and a study config (results under tmp_path/results); return its path."""
    for name, sample in samples.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(sample))
    config = {"study": study, "results_dir": str(tmp_path / "results"),
              "samples": {name: str(tmp_path / f"{name}.yaml") for name in samples}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "study.yaml"


def run_study(repo_root: Path, study_file: Path, cores: int = 2) -> subprocess.CompletedProcess:
    return run_snakemake(repo_root, "--cores", str(cores), "--configfile", str(study_file),
                         "--directory", str(study_file.parent))


def test_dry_run_of_the_default_study(repo_root, tmp_path):
    done = run_snakemake(repo_root, "-n", "--cores", "2", "--config",
                         f"results_dir={tmp_path / 'results'}")
    assert done.returncode == 0, done.stderr + done.stdout
    for rule in ("phantom", "ingest", "register", "preprocess", "segment", "evaluate",
                 "descriptors", "provenance"):
        assert rule in done.stdout
    for sample in ("BM10", "BM03", "BM01"):
        assert f"demo/{sample}/raw.zarr" in done.stdout


def test_dry_run_reports_a_bad_config(repo_root, tmp_path):
    sample = demo_sample(repo_root)
    sample["phantom"]["cam_volume_fraction"] = "half"
    done = run_snakemake(repo_root, "-n", "--cores", "1", "--configfile",
                         str(write_study(tmp_path, "bad", {"S": sample})))
    assert done.returncode != 0
    assert "field 'phantom.cam_volume_fraction'" in done.stderr + done.stdout


@pytest.mark.slow
def test_tiny_phantom_study_runs_end_to_end(repo_root, tmp_path):
    sample = demo_sample(repo_root)
    sample["phantom"].update(shape_zyx=[24, 40, 48], cam_d50_um=1.2, se_d50_um=1.6)
    sample["stages"] = {"ingest": {"chunks_zyx": [5, 1024, 1024]},
                        "transport": {"axes": ["z", "x"], "random_walk": {
                                          "n_walkers": 200, "n_steps": 2000, "seed": 3},
                                      "scenarios": [{"name": "pores_as_SE",
                                                     "reassign": {"pore": "SE"}}]}}
    study_file = write_study(tmp_path, "t", {"tiny": sample})
    done = run_study(repo_root, study_file)
    assert done.returncode == 0, done.stderr[-4000:]

    out = tmp_path / "results" / "t"
    raw = xr.open_zarr(out / "tiny" / "raw.zarr")["raw"]
    assert raw.dims == ("channel", "z", "y", "x")
    assert list(raw.channel.values) == ["BSE", "SE"]
    assert raw.shape == (2, 24, 40, 48) and raw.dtype == np.uint16
    np.testing.assert_allclose(np.diff(raw.x.values), 0.1)           # µm coords
    assert raw.data.chunksize[1] == 5

    truth = xr.open_zarr(out / "tiny" / "phantom" / "ground_truth.zarr")
    assert truth["labels"].shape == (24, 40, 48)
    assert set(np.unique(truth["labels"].values)) <= {0, 1, 2}
    assert truth["drift_dy_px"].values[0] == 0

    doc = json.loads((out / "provenance.json").read_text())
    assert {(r["rule"], r["sample"]) for r in doc["runs"]} == {
        (rule, "tiny") for rule in ("phantom", "ingest", "register", "preprocess", "segment",
                                    "evaluate", "descriptors", "transport", "ssrm", "report")}
    ingest = next(r for r in doc["runs"] if r["rule"] == "ingest")
    assert [i["name"] for i in ingest["inputs"]] == ["BSE", "SE"]
    assert all(len(i["sha256"]) == 64 for i in ingest["inputs"])
    assert ingest["benchmark"]["s"] > 0 and ingest["benchmark"]["max_rss"] > 0
    assert xr.open_zarr(out / "tiny" / "raw.zarr").attrs["provenance"]["rule"] == "ingest"
    for rule in ("phantom", "ingest", "register", "preprocess"):
        assert (out / "logs" / rule / "tiny.log").stat().st_size > 0

    # register + preprocess ran on it: drift table per slice, corrected float volume
    drift = np.genfromtxt(out / "tiny" / "drift.csv", delimiter=",", names=True)
    assert len(drift) == 24 and drift["dy_px"][0] == 0
    corrected = xr.open_zarr(out / "tiny" / "corrected.zarr")["corrected"]
    assert corrected.dims == ("channel", "z", "y", "x") and corrected.dtype == np.float32
    assert (out / "tiny" / "qc" / "drift.png").stat().st_size > 0

    # segment: labels on corrected.zarr's coords, scored against the ground truth
    labels = xr.open_zarr(out / "tiny" / "labels.zarr")
    assert labels["labels"].dtype == np.uint8 and labels["labels"].dims == ("z", "y", "x")
    np.testing.assert_array_equal(labels["x"].values, corrected["x"].values)
    segmented = json.loads((out / "tiny" / "segment" / "segmentation.json").read_text())
    assert segmented["method"] == "trainable" and "score_registered_frame" not in segmented

    # evaluate: the phantom's scores (drift error, IoU on the truth grid) in their own stage
    scores = json.loads((out / "tiny" / "evaluate" / "evaluation.json").read_text())
    assert scores["registration"]["drift_error_slices"] == 24
    for frame in ("score_truth_grid", "score_registered_frame", "score_plain_frame"):
        assert 0.5 < scores["segmentation"][frame]["iou"]["CAM"] <= 1

    # descriptors of the segmented labels: volume fractions equal the segmentation's
    summary = json.loads((out / "tiny" / "descriptors" / "descriptors.json").read_text())
    for phase, fraction in segmented["volume_fraction"].items():
        assert summary[f"volume_fraction_{phase}"] == pytest.approx(fraction, abs=1e-9)
    assert summary["labels_source"] == "segment stage (trainable)"

    # transport of the segmented labels: τ = φ/(σ_eff/σ_bulk), the electronic kind reuses CAM's
    # solve (SE insulates), κ_exp from the sample's measured σ_eff, current conservation in flux
    tr = json.loads((out / "tiny" / "transport" / "transport.json").read_text())
    assert tr["volume_fractions"] == pytest.approx(segmented["volume_fraction"], abs=1e-9)
    for phase, per_axis in tr["tortuosity"].items():
        for r in per_axis.values():
            if r["percolating"]:
                assert r["tortuosity_factor"] == pytest.approx(
                    r["volume_fraction"] / r["sigma_eff_rel"], rel=1e-9)
                assert r["tortuosity_factor_random_walk"] > 0
            else:
                assert r["tortuosity_factor"] is None and r["sigma_eff_rel"] == 0
    el = tr["conductivity"]["electronic"]["z"]
    assert el["sigma_eff_S_cm"] == pytest.approx(
        0.1 * tr["tortuosity"]["CAM"]["z"]["sigma_eff_rel"], rel=1e-9)
    phi_cam = tr["volume_fractions"]["CAM"]
    assert tr["kappa"]["electronic"]["kappa_exp"] == pytest.approx(phi_cam * 0.1 / 0.015)
    assert tr["scenarios"]["pores_as_SE"]["volume_fractions"]["pore"] == 0
    flux = xr.open_zarr(out / "tiny" / "transport" / "flux.zarr")
    jz = flux["current_density_axial_A_cm2"]
    assert jz.dims == ("case", "z", "y", "x") and list(flux["case"].values) == [
        "electronic", "ionic"]
    np.testing.assert_array_equal(flux["x"].values, labels["x"].values)
    length_cm = 24 * 0.1e-4
    np.testing.assert_allclose(jz.sel(case="electronic").mean(["y", "x"]).values,
                               el["sigma_eff_S_cm"] / length_cm, rtol=1e-4)
    assert flux.attrs["provenance"]["rule"] == "transport"

    # rerun: nothing to do; same config gives identical raw data
    first = raw.values.copy()
    shutil.rmtree(out / "tiny")
    done = run_study(repo_root, study_file)
    assert done.returncode == 0, done.stderr[-4000:]
    np.testing.assert_array_equal(xr.open_zarr(out / "tiny" / "raw.zarr")["raw"].values, first)


def test_bad_input_stops_ingest_with_one_message_and_no_artefact(repo_root, tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "bse.tif", np.zeros((6, 20, 20), np.uint16), imagej=True)
    tifffile.imwrite(tmp_path / "se.tif", np.zeros((6, 20, 24), np.uint16), imagej=True)
    sample = {"inputs": [{"name": "BSE", "format": "tiff", "path": "bse.tif"},
                         {"name": "SE", "format": "tiff", "path": "se.tif"}],
              "voxel_size_um": {"z": 0.1, "y": 0.1, "x": 0.1},
              "phases": {"pore": {"label": 0}, "solid": {"label": 1}}}
    done = run_study(repo_root, write_study(tmp_path, "bad", {"real": sample}), cores=1)
    assert done.returncode != 0
    log = (tmp_path / "results" / "bad" / "logs" / "ingest" / "real.log").read_text()
    message = [line for line in log.splitlines() if "ERROR" in line]
    assert len(message) == 1, log
    assert "sample 'real'" in message[0] and "SE" in message[0] and "shape" in message[0]
    assert "voxelyte: sample 'real'" in done.stderr
    store = tmp_path / "results" / "bad" / "real" / "raw.zarr"
    assert not (store / "zarr.json").exists()
    assert not list(store.parent.glob("raw.zarr.tmp-*"))


@pytest.mark.slow
def test_label_volume_sample_starts_at_descriptors(repo_root, tmp_path):
    """A lab's segmented volume (uint8 0 / 85 / 170, as tortuosity tools use) enters through
    `labels:`; register, preprocess and segment do not run; descriptors, transport, SSRM and the
    report do, from exactly those labels, and the report names the file and its sha256."""
    import tifffile

    from voxelyte import phantom

    structure = phantom.generate_structure(phantom.resolve_params(
        {"seed": 7, "shape_zyx": [20, 32, 32], "cam_d50_um": 1.2, "se_d50_um": 1.6}))
    truth = structure.central(structure.labels)
    tifffile.imwrite(tmp_path / "seg.tif", (truth * 85).astype(np.uint8), imagej=True)
    sample = demo_sample(repo_root)
    for key in ("phantom", "stages"):
        sample.pop(key, None)
    sample.update(labels={"format": "tiff", "path": "seg.tif",
                          "values": {0: "pore", 85: "CAM", 170: "SE"}},
                  voxel_size_um={"z": 0.1, "y": 0.1, "x": 0.1},
                  stages={"transport": {"axes": ["z"], "random_walk": {
                      "n_walkers": 100, "n_steps": 1000, "seed": 3}}})
    done = run_study(repo_root, write_study(tmp_path, "lab", {"seg": sample}))
    assert done.returncode == 0, done.stderr[-4000:]

    out = tmp_path / "results" / "lab"
    runs = json.loads((out / "provenance.json").read_text())["runs"]
    assert {r["rule"] for r in runs} == {"ingest_labels", "descriptors", "transport", "ssrm",
                                         "report"}
    labels = xr.open_zarr(out / "seg" / "labels.zarr")
    np.testing.assert_array_equal(labels["labels"].values, truth)
    ingested = next(r for r in runs if r["rule"] == "ingest_labels")
    assert labels.attrs["label_file"]["sha256"] == ingested["inputs"][0]["sha256"]
    desc = json.loads((out / "seg" / "descriptors" / "descriptors.json").read_text())
    assert desc["labels_source"].startswith("label file")
    for phase, value in {"pore": 0, "CAM": 1, "SE": 2}.items():
        assert desc[f"volume_fraction_{phase}"] == pytest.approx((truth == value).mean())
    page = json.loads((out / "seg" / "report.json").read_text())
    assert page["stages"] == {"ingest_labels": True, "descriptors": True, "transport": True,
                              "ssrm": True}
    html = (out / "seg" / "report.html").read_text()
    assert "labels from" in html and labels.attrs["label_file"]["sha256"] in html
    assert not (out / "seg" / "raw.zarr").exists()
