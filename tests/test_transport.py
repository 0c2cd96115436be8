"""Transport stage: tortuosity factors, multi-phase conductivities, κ_exp, the stage output."""
import math

import numpy as np
import pytest

from voxelyte.errors import InputError
from voxelyte.transport import multiphase_conductivity, run_transport, tortuosity

VOXEL = (0.2, 0.1, 0.3)
PHASES = {"pore": {"label": 0, "sigma_electronic_S_cm": 0.0, "sigma_ionic_S_cm": 0.0},
          "CAM": {"label": 1, "sigma_electronic_S_cm": 0.1, "sigma_ionic_S_cm": 0.0},
          "SE": {"label": 2, "sigma_electronic_S_cm": 1e-9, "sigma_ionic_S_cm": 1.6e-3}}


@pytest.mark.parametrize("axis", ["z", "y", "x"])
def test_straight_channel_tau_is_one(axis):
    labels = np.zeros((9, 8, 10), np.uint8)
    a = "zyx".index(axis)
    sl = [slice(2, 5), slice(1, 4), slice(3, 7)]
    sl[a] = slice(None)
    labels[tuple(sl)] = 1
    r = tortuosity(labels, 1, VOXEL, axis, rtol=1e-12)
    assert r["percolating"] and r["percolating_fraction"] == 1.0
    assert r["tortuosity_factor"] == pytest.approx(1.0, rel=1e-9)
    assert r["macmullin_number"] == pytest.approx(1 / r["volume_fraction"], rel=1e-9)
    assert r["sigma_eff_rel"] == pytest.approx(r["volume_fraction"], rel=1e-9)


def test_non_percolating_phase():
    labels = np.zeros((8, 6, 6), np.uint8)
    labels[2:5, 2:4, 2:4] = 1                 # isolated blob
    labels[:, 0, 0] = 2
    r = tortuosity(labels, 1, VOXEL, "z")
    assert r["percolating"] is False and r["sigma_eff_rel"] == 0.0
    assert math.isinf(r["tortuosity_factor"]) and math.isinf(r["macmullin_number"])
    assert r["percolating_fraction"] == 0.0 and r["volume_fraction"] == pytest.approx(12 / 288)
    r = tortuosity(labels, 7, VOXEL, "z")      # absent phase
    assert r["percolating"] is False and r["volume_fraction"] == 0.0


def test_percolating_fraction_and_flip_symmetry():
    ps = pytest.importorskip("porespy")
    im = np.asarray(ps.generators.blobs(shape=[24, 22, 20], porosity=0.45, blobiness=1.5,
                                        seed=2), bool)
    labels = im.astype(np.uint8)
    for axis in range(3):
        r1 = tortuosity(labels, 1, VOXEL, axis, rtol=1e-11)
        r2 = tortuosity(np.flip(labels, axis), 1, VOXEL, axis, rtol=1e-11)
        assert r1["percolating"] and 0 < r1["percolating_fraction"] <= 1
        assert r1["tortuosity_factor"] > 1
        assert r2["tortuosity_factor"] == pytest.approx(r1["tortuosity_factor"], rel=1e-8)


def test_multiphase_series_and_parallel():
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[:2] = 1          # CAM 2 planes
    labels[2:] = 2          # SE 4 planes
    r = multiphase_conductivity(labels, PHASES, VOXEL, "z", "ionic")
    assert r["percolating"] is False and r["sigma_eff_S_cm"] == 0.0   # CAM blocks ions
    r = multiphase_conductivity(labels, PHASES, VOXEL, "z", "electronic", rtol=1e-12)
    exact = 6 / (2 / 0.1 + 4 / 1e-9)
    assert r["sigma_eff_S_cm"] == pytest.approx(exact, rel=1e-6)
    r = multiphase_conductivity(labels, PHASES, VOXEL, "x", "electronic", rtol=1e-12)
    assert r["sigma_eff_S_cm"] == pytest.approx((2 * 0.1 + 4 * 1e-9) / 6, rel=1e-6)
    assert r["carrier_phase"] == "CAM"
    assert r["tortuosity_factor_carrier"] == pytest.approx(
        (2 / 6) * 0.1 / r["sigma_eff_S_cm"], rel=1e-12)
    r = multiphase_conductivity(labels, PHASES, VOXEL, "y", "ionic", rtol=1e-12)
    assert r["sigma_eff_S_cm"] == pytest.approx(4 / 6 * 1.6e-3, rel=1e-6)
    assert r["tortuosity_factor_carrier"] == pytest.approx(1.0, rel=1e-6)


def test_run_transport_summary_and_fields():
    rng = np.random.default_rng(5)
    labels = rng.choice([0, 1, 2], size=(14, 12, 10), p=[0.1, 0.5, 0.4]).astype(np.uint8)
    labels[:, :2, :2] = 1   # a straight CAM channel: electronic percolation guaranteed
    labels[:, -2:, -2:] = 2
    measured = {"sigma_eff_electronic_S_cm": 0.01, "sigma_eff_ionic_S_cm": 1.1e-4}
    summary, fields = run_transport(labels, phases=PHASES, voxel_size_um=VOXEL,
                                    measured=measured)
    assert set(summary["tortuosity"]) == {"pore", "CAM", "SE"}
    assert set(summary["tortuosity"]["CAM"]) == {"z", "y", "x"}
    phi_cam = float(np.mean(labels == 1))
    assert summary["volume_fractions"]["CAM"] == pytest.approx(phi_cam)
    k = summary["kappa_experimental"]["electronic"]
    assert k["phase"] == "CAM" and k["kappa"] == pytest.approx(phi_cam * 0.1 / 0.01)
    k = summary["kappa_experimental"]["ionic"]
    assert k["phase"] == "SE" and k["kappa"] == pytest.approx(np.mean(labels == 2) * 1.6e-3 / 1.1e-4)
    el = summary["conductivity"]["electronic"]["z"]
    assert el["percolating"] and el["sigma_eff_S_cm"] > 0
    assert el["sigma_eff_S_cm"] < 0.1 * phi_cam  # bounded by the parallel (Wiener) bound
    assert fields["potential_electronic_V"].dims == ("z", "y", "x")
    assert fields["potential_electronic_V"].shape == labels.shape
    assert float(fields["z"][0]) == pytest.approx(0.1)
    # mean current density through a plane × area / ΔV = σ_eff / L
    j = fields["current_density_electronic_A_cm2"].values
    length_cm = 14 * VOXEL[0] * 1e-4
    assert np.nanmean(j[0]) == pytest.approx(el["sigma_eff_S_cm"] / length_cm, rel=1e-5)


def test_missing_conductivity_raises():
    phases = {"pore": {"label": 0}, "CAM": {"label": 1, "sigma_electronic_S_cm": 0.1}}
    with pytest.raises(InputError, match="sigma_electronic_S_cm"):
        multiphase_conductivity(np.zeros((3, 3, 3), np.uint8), phases, VOXEL, "z")
    with pytest.raises(InputError):
        multiphase_conductivity(np.full((3, 3, 3), 5, np.uint8), PHASES, VOXEL, "z")


def test_agrees_with_taufactor_64():
    tau = pytest.importorskip("taufactor")
    ps = pytest.importorskip("porespy")
    im = np.asarray(ps.generators.blobs(shape=[64, 64, 64], porosity=0.4, blobiness=1.5,
                                        seed=11), bool)
    # TauFactor solves along the first array axis (black-box comparison)
    solver = tau.Solver(im.astype(np.uint8), device="cpu")
    solver.solve(verbose=False, conv_crit=1e-3)
    theirs = float(np.asarray(solver.tau).ravel()[0])
    ours = tortuosity(im.astype(np.uint8), 1, (1, 1, 1), "z", rtol=1e-9)["tortuosity_factor"]
    assert ours == pytest.approx(theirs, rel=2e-3)
