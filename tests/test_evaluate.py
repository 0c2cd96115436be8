"""Tests for voxelyte.evaluate: the ground truth in the registered frame (drift convention),
the corrected volume moved onto the truth grid, the scores (IoU, confusion, volume-fraction
error), the drift error, and the evaluate stage function on a small rendered phantom (phantom
-> ingest -> register -> preprocess -> segment -> evaluate, as the workflow runs it)."""
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from voxelyte import config, contract, evaluate, ingest, phantom, preprocess, register, segment
from voxelyte.errors import InputError

PHASES = {"pore": {"label": 0}, "CAM": {"label": 1}, "SE": {"label": 2}}
#: a small phantom (the demo's voxel size and rendering, smaller particles and box): 64 slices
#: -> scribbles on 1 slice
SMALL = {"seed": 4, "shape_zyx": [64, 96, 96], "cam_d50_um": 1.6, "se_d50_um": 2.0}


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory):
    """The workflow's stages up to segment on a small phantom, with their settings."""
    out = tmp_path_factory.mktemp("evalphantom")
    phantom.write_phantom(out, SMALL, "E")
    sample = config.load_sample(out / "sample.yaml")
    raw = ingest.read_raw_stack(sample.inputs, sample="E", voxel_size_um=sample.voxel_size_um)
    registered, drift = register.register(raw.to_dataset(), **sample.stages["register"])
    corrected = preprocess.preprocess(registered, **sample.stages["preprocess"]).compute()
    truth = contract.open_volume(out / "ground_truth.zarr")
    settings = dict(sample.stages["segment"])
    labels, _, _ = segment.segment_sample(
        corrected, phases=sample.config["phases"], settings=settings, ground_truth=truth,
        drift=drift, sample="E", num_workers=2)
    return {"corrected": corrected, "labels": labels.compute(), "truth": truth, "drift": drift,
            "settings": settings, "phases": sample.config["phases"], "dir": out}


def test_evaluate_stage_returns_the_documented_scores(stage_inputs, tmp_path):
    """evaluation.json's keys; IoU from the ground truth: CAM and SE >= 0.9 on the truth grid
    and in the registered frame, pore >= 0.6 on the truth grid, the plain frame (registration
    error kept) no better; the drift error of the registration below 2 px; the document is
    strict JSON and the QC figure is written."""
    qc = tmp_path / "qc_evaluation.png"
    doc = evaluate.evaluate(stage_inputs["corrected"], stage_inputs["labels"],
                            stage_inputs["truth"], stage_inputs["drift"],
                            phases=stage_inputs["phases"], settings=stage_inputs["settings"],
                            sample="E", num_workers=2, qc_path=qc)
    assert set(doc) == {"sample", "registration", "segmentation", "timings_s"}
    assert doc["sample"] == "E" and set(doc["timings_s"]) == {"truth_grid_scoring_s"}
    assert set(doc["registration"]) == {"drift_error_rms_px", "drift_error_max_px",
                                        "drift_error_rms_um", "drift_error_max_um",
                                        "drift_error_slices"}
    assert doc["registration"]["drift_error_slices"] == SMALL["shape_zyx"][0]
    assert doc["registration"]["drift_error_rms_px"] < 2.0
    assert doc["registration"]["drift_error_rms_um"] == pytest.approx(
        0.1 * doc["registration"]["drift_error_rms_px"], rel=1e-6)
    scores = doc["segmentation"]
    print("evaluation IoU", {f: s["iou"] for f, s in scores.items() if f.startswith("score")},
          doc["registration"])
    assert set(scores) == {"score_truth_grid", "score_registered_frame", "score_plain_frame",
                           "scoring", "false_se_rim_at_true_cam_pore_contacts"}
    assert scores["score_truth_grid"]["phantom_annotations"]["scribble_voxels"] > 0
    for frame in ("score_truth_grid", "score_registered_frame"):
        for phase in ("CAM", "SE"):
            assert scores[frame]["iou"][phase] >= 0.9, (frame, scores[frame]["iou"])
    assert scores["score_truth_grid"]["iou"]["pore"] >= 0.6
    assert scores["score_plain_frame"]["iou"]["CAM"] <= scores["score_registered_frame"]["iou"][
        "CAM"]
    rims = scores["false_se_rim_at_true_cam_pore_contacts"]
    assert set(rims) == {"truth_grid", "registered_frame", "definition"}
    # the registered-frame score is the stage's labels against the shifted truth
    corrected = stage_inputs["corrected"]["corrected"]
    coords = {a: corrected.coords[a].values for a in "zyx"}
    truth_reg, _ = evaluate.truth_in_registered_frame(
        stage_inputs["truth"], stage_inputs["drift"][["dy_px", "dx_px"]].to_numpy(), coords)
    assert scores["score_registered_frame"] == evaluate.score(
        stage_inputs["labels"]["labels"].values, truth_reg, stage_inputs["phases"])
    json.dumps(contract.to_jsonable(doc), allow_nan=False)
    assert qc.stat().st_size > 0


def test_drift_error_against_the_true_drift():
    """RMS and max of the in-plane error length over the valid slices present in both."""
    truth = pd.DataFrame({"z_index": [0, 1, 2, 3], "dy_px": [0.0, 1.0, 2.0, 3.0],
                          "dx_px": [0.0, 0.0, 0.0, 0.0]})
    drift = pd.DataFrame({"z_index": [0, 1, 2, 3], "dy_px": [0.0, 1.0, 2.0, 0.0],
                          "dx_px": [0.0, 3.0, 4.0, 0.0], "valid": [True, True, True, False]})
    err = evaluate.drift_error(drift, truth, (0.1, 0.2))
    assert err["drift_error_slices"] == 3
    assert err["drift_error_max_px"] == pytest.approx(4.0)
    assert err["drift_error_rms_px"] == pytest.approx(np.sqrt((0 + 9 + 16) / 3))
    assert err["drift_error_max_um"] == pytest.approx(0.8)
    assert evaluate.drift_error(drift, None) is None
    assert evaluate.drift_error(drift[drift.z_index > 5], truth) is None
    ds = xr.Dataset({"drift_dy_px": ("z", [0.0, 1.0]), "drift_dx_px": ("z", [0.0, 2.0])})
    np.testing.assert_array_equal(evaluate.true_drift(ds)["dx_px"], [0.0, 2.0])
    assert evaluate.true_drift(xr.Dataset()) is None


def _volume(values: np.ndarray) -> xr.Dataset:
    """A one-channel corrected.zarr-like dataset of ``values`` (z, y, x), 0.1 µm voxels."""
    coords = {a: (np.arange(n) + 0.5) * 0.1 for a, n in zip("zyx", values.shape)}
    return xr.Dataset({"corrected": (("channel", "z", "y", "x"), values[None].astype(np.float32))},
                      coords={"channel": ["BSE"], **coords})


def test_move_to_truth_grid_undoes_the_residual():
    """Slice z shows a blob shifted by the residual r_z: moved by -r_z, whole-pixel shifts are
    the data moved exactly (outside: not inside), and a sub-pixel shift of a blurred blob puts
    its centroid back within 0.01 px."""
    yy, xx = np.mgrid[:40, :48]
    residual = np.array([[0.0, 0.0], [2.0, -3.0], [0.37, -0.61], [-1.5, 0.25]])
    blob = np.stack([np.exp(-((yy - 20 - r[0]) ** 2 + (xx - 24 - r[1]) ** 2) / (2 * 3.0 ** 2))
                     for r in residual])
    moved, inside = evaluate.move_to_truth_grid(_volume(blob), residual)
    out = moved["corrected"].values[0]
    np.testing.assert_allclose(out[1, :38, 3:], blob[1, 2:, :-3], atol=1e-6)
    assert not inside[1, 38:].any() and not inside[1, :, :3].any() and inside[1, :38, 3:].all()
    assert inside[0].all()
    for z in range(4):
        w = out[z] / out[z].sum()
        assert abs((w * yy).sum() - 20) < 0.01 and abs((w * xx).sum() - 24) < 0.01, z
    with pytest.raises(InputError, match="residual"):
        evaluate.move_to_truth_grid(_volume(blob), residual[:3])




# --------------------------------------------------------------------------- frames
def test_truth_in_registered_frame_follows_the_drift_convention():
    """registered[z](y) = raw[z](y + e) = truth[z](y + e - d): integer drifts make it exact."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(3, 20, 24)).astype(np.uint8)
    true = np.array([[0, 0], [2, -1], [3, 1]], float)
    est = np.array([[0, 0], [1, -1], [3, 3]], float)
    vs = 0.1
    coords = {a: (np.arange(n) + 0.5) * vs for a, n in zip("zyx", labels.shape)}
    truth = xr.Dataset({"labels": (("z", "y", "x"), labels),
                        "drift_dy_px": ("z", true[:, 0]), "drift_dx_px": ("z", true[:, 1])},
                       coords=coords)
    crop = {"z": coords["z"], "y": coords["y"][3:17], "x": coords["x"][4:20]}
    reg, plain = evaluate.truth_in_registered_frame(truth, est, crop)
    assert reg.shape == plain.shape == (3, 14, 16)
    for z in range(3):
        res = true[z] - est[z]
        for iy, y in enumerate(range(3, 17)):
            for ix, x in enumerate(range(4, 20)):
                sy, sx = int(y - res[0]), int(x - res[1])
                want = labels[z, sy, sx] if 0 <= sy < 20 and 0 <= sx < 24 else segment.INVALID
                assert reg[z, iy, ix] == want
    np.testing.assert_array_equal(plain, labels[:, 3:17, 4:20])


def test_score_confusion_matrix_and_iou():
    truth = np.array([0, 0, 1, 1, 1, 2, 2, 255], np.uint8)
    pred = np.array([0, 1, 1, 1, 2, 2, 2, 0], np.uint8)
    s = evaluate.score(pred, truth, PHASES)
    assert s["phases"] == ["pore", "CAM", "SE"]
    assert s["confusion_matrix"] == [[1, 1, 0], [0, 2, 1], [0, 0, 2]]
    assert s["iou"] == {"pore": 0.5, "CAM": 0.5, "SE": pytest.approx(2 / 3)}
    assert s["volume_fraction_error_pp"]["pore"] == pytest.approx(100 * (1 / 7 - 2 / 7))
    assert s["voxels_scored"] == 7




def test_false_rim_found_by_phase_roles_not_names():
    """A CAM slab against a pore slab, the segmentation putting a 2-voxel SE rim between them
    where the truth has none: every rim voxel is 2 thick (t = d_pore + d_CAM - 1 = 1 + 2 - 1 for
    the first, 2 + 1 - 1 for the second), whatever the phases are called."""
    truth = np.zeros((12, 12, 24), np.uint8)          # pore in x < 12, CAM from x = 12
    truth[:, :, 12:] = 1
    seg = truth.copy()
    seg[:, :, 11:13] = 2                               # the false SE rim
    by_name = evaluate.false_rim_summary({"grid": (seg, truth)}, PHASES)
    by_role = evaluate.false_rim_summary({"grid": (seg, truth)}, {
        "void": {"label": 0, "role": "pore"}, "NMC": {"label": 1, "role": "active_material"},
        "LPS": {"label": 2, "role": "electrolyte"}})
    assert by_role == by_name
    inner = by_name["grid"]
    assert inner["max_thickness_voxels"] == 2.0 and inner["voxels_2_thick"] == inner["voxels"] > 0
    # no phase of the electrolyte role: no rim to look for
    assert evaluate.false_rim_summary({"grid": (seg, truth)},
                                      {"void": {"label": 0}, "NMC": {"label": 1}}) is None
