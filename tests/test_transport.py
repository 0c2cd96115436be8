"""Transport stage: tortuosity factors, multi-phase conductivities, κ_exp, the stage output."""
import json
import math

import numpy as np
import pytest

from voxelyte import config
from voxelyte.contract import to_jsonable
from voxelyte.errors import InputError
from voxelyte.transport import (estimate_memory_gb, multiphase_conductivity, run_transport,
                                tortuosity)

VOXEL = (0.2, 0.1, 0.3)
PHASES = {"pore": {"label": 0, "sigma_electronic_S_cm": 0.0, "sigma_ionic_S_cm": 0.0},
          "CAM": {"label": 1, "sigma_electronic_S_cm": 0.1, "sigma_ionic_S_cm": 0.0},
          "SE": {"label": 2, "sigma_electronic_S_cm": 1e-9, "sigma_ionic_S_cm": 1.6e-3}}
#: The stage settings of the schema; no random walk unless a test asks for one.
STAGE = dict(config.stage_defaults()["transport"], random_walk=None)


def _run(labels, **kw):
    """run_transport with the schema's settings, overridden by ``kw``."""
    return run_transport(labels, **{**STAGE, "electrode_normal_axis": "z", **kw})


@pytest.mark.parametrize("axis", ["z", "y", "x"])
def test_straight_channel_tau_is_one(axis):
    labels = np.zeros((9, 8, 10), np.uint8)
    a = "zyx".index(axis)
    sl = [slice(2, 5), slice(1, 4), slice(3, 7)]
    sl[a] = slice(None)
    labels[tuple(sl)] = 1
    r = tortuosity(labels, 1, VOXEL, axis, rtol=1e-12)
    assert r["percolating"] and r["percolating_fraction"] == 1.0
    # exact up to the solver's float32 conductances
    assert r["tortuosity_factor"] == pytest.approx(1.0, rel=1e-6)
    assert r["macmullin_number"] == pytest.approx(1 / r["volume_fraction"], rel=1e-6)
    assert r["sigma_eff_rel"] == pytest.approx(r["volume_fraction"], rel=1e-6)


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


def _random_labels(shape=(14, 12, 10), seed=5):
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 1, 2], size=shape, p=[0.1, 0.5, 0.4]).astype(np.uint8)
    labels[:, :2, :2] = 1   # a straight CAM channel: electronic percolation guaranteed
    labels[:, -2:, -2:] = 2
    return labels


def test_run_transport_summary_kappa_and_fields():
    labels = _random_labels()
    measured = {"sigma_eff_electronic_S_cm": 0.01, "sigma_eff_ionic_S_cm": 1.1e-4}
    summary, fields = _run(labels, phases=PHASES, voxel_size_um=VOXEL,
                                    measured=measured, rtol=1e-10,
                                    random_walk={"n_walkers": 200, "n_steps": 400, "seed": 1})
    assert set(summary["tortuosity"]) == {"pore", "CAM", "SE"}
    assert set(summary["tortuosity"]["CAM"]) == {"z", "y", "x"}
    phi_cam, phi_se = float(np.mean(labels == 1)), float(np.mean(labels == 2))
    assert summary["volume_fractions"]["CAM"] == pytest.approx(phi_cam)
    cam = summary["tortuosity"]["CAM"]["z"]
    assert cam["percolating"] and cam["tortuosity_factor"] > 1
    assert cam["macmullin_number"] == pytest.approx(cam["tortuosity_factor"] / phi_cam)
    assert cam["sigma_eff_S_cm"] == {"electronic": pytest.approx(0.1 * cam["sigma_eff_rel"])}
    assert cam["tortuosity_factor_random_walk"] > 0 and "iterations" in cam
    assert summary["random_walk"]["CAM"]["n_walkers"] == 200
    # κ_exp from the measured σ_eff next to κ_sim along the electrode normal (z)
    k = summary["kappa"]["electronic"]
    assert k["phase"] == "CAM" and k["axis"] == "z"
    assert k["kappa_exp"] == pytest.approx(phi_cam * 0.1 / 0.01)
    el = summary["conductivity"]["electronic"]["z"]
    assert k["kappa_sim"] == pytest.approx(phi_cam * 0.1 / el["sigma_eff_S_cm"])
    assert k["kappa_exp_over_sim"] == pytest.approx(k["kappa_exp"] / k["kappa_sim"])
    k = summary["kappa"]["ionic"]
    assert k["phase"] == "SE" and k["kappa_exp"] == pytest.approx(phi_se * 1.6e-3 / 1.1e-4)
    # SE (1e-9 S/cm) insulates electrons next to CAM: the electronic solve is CAM's own
    assert el["insulating_phases"] == ["SE", "pore"]
    assert el["sigma_eff_S_cm"] == pytest.approx(0.1 * cam["sigma_eff_rel"], rel=1e-12)
    assert el["sigma_eff_S_cm"] < 0.1 * phi_cam  # the parallel (Wiener) bound
    # current fields along z: the mean axial current density of every plane is I / A = σ_eff/L
    assert list(fields["case"].values) == ["electronic", "ionic"]
    jz = fields["current_density_axial_A_cm2"].sel(case="electronic").values
    jm = fields["current_density_magnitude_A_cm2"].sel(case="electronic").values
    assert jz.dtype == np.float32 and jz.shape == labels.shape
    length_cm = 14 * VOXEL[0] * 1e-4
    np.testing.assert_allclose(jz.mean(axis=(1, 2)), el["sigma_eff_S_cm"] / length_cm, rtol=1e-5)
    assert np.all(jm >= np.abs(jz) * (1 - 1e-6))
    assert np.all(jm[labels != 1] == 0)
    assert float(fields["z"][0]) == pytest.approx(0.1)
    assert fields.attrs["transport_axis"] == "z"


def test_kind_reuses_single_phase_solve_and_cutoff_changes_little():
    labels = _random_labels(seed=6)
    kw = dict(phases=PHASES, voxel_size_um=VOXEL, axes=["z"], rtol=1e-11, flux_fields=())
    cut, _ = _run(labels, **kw)
    # pore, CAM, SE single-phase; electronic = CAM's solve, ionic = SE's solve
    assert cut["n_solves"] == 3
    exact, _ = _run(labels, insulating_ratio=0.0, **kw)
    assert exact["n_solves"] == 4            # CAM + SE at 1e-9 S/cm: its own solve
    s_cut = cut["conductivity"]["electronic"]["z"]["sigma_eff_S_cm"]
    s_exact = exact["conductivity"]["electronic"]["z"]["sigma_eff_S_cm"]
    assert s_exact >= s_cut and s_exact == pytest.approx(s_cut, rel=1e-6)


def test_scenarios_filled_porosity_and_conductivity_table():
    # layers normal to z: 3 CAM planes, 2 pore planes, 5 SE planes; along x σ_eff is the
    # parallel mean Σ φ_i σ_i exactly
    labels = np.zeros((10, 4, 6), np.uint8)
    labels[:3], labels[5:] = 1, 2
    scenarios = [{"name": "pores_as_CAM", "reassign": {"pore": "CAM"}},
                 {"name": "pores_as_SE", "reassign": {"pore": "SE"}},
                 {"name": "better_SE", "conductivities": {"SE": {"sigma_ionic_S_cm": 3.2e-3}}}]
    summary, _ = _run(labels, phases=PHASES, voxel_size_um=VOXEL, axes=["x", "z"],
                               rtol=1e-12, scenarios=scenarios, flux_fields=())
    base = summary["conductivity"]
    assert base["ionic"]["x"]["sigma_eff_S_cm"] == pytest.approx(0.5 * 1.6e-3, rel=1e-6)
    assert base["electronic"]["x"]["sigma_eff_S_cm"] == pytest.approx(0.3 * 0.1, rel=1e-6)
    assert base["ionic"]["z"]["percolating"] is False     # CAM and pore planes block ions
    sc = summary["scenarios"]
    assert sc["pores_as_CAM"]["volume_fractions"] == {"pore": 0.0, "CAM": 0.5, "SE": 0.5}
    assert sc["pores_as_CAM"]["conductivity"]["electronic"]["x"]["sigma_eff_S_cm"] == \
        pytest.approx(0.5 * 0.1, rel=1e-6)
    ion = sc["pores_as_SE"]["conductivity"]["ionic"]["x"]
    assert ion["sigma_eff_S_cm"] == pytest.approx(0.7 * 1.6e-3, rel=1e-6)
    assert ion["tortuosity_factor_carrier"] == pytest.approx(1.0, rel=1e-6)
    assert sc["better_SE"]["conductivity"]["ionic"]["x"]["sigma_eff_S_cm"] == \
        pytest.approx(0.5 * 3.2e-3, rel=1e-6)
    with pytest.raises(InputError, match="scenarios.bad.reassign.*unknown phase|unknown phase"):
        _run(labels, phases=PHASES, voxel_size_um=VOXEL, axes=["x"], flux_fields=(),
                      scenarios=[{"name": "bad", "reassign": {"pores": "SE"}}], sample="S1")


def test_non_percolating_phase_is_flagged_and_json_clean():
    labels = np.full((8, 6, 6), 2, np.uint8)
    labels[2:5, 2:4, 2:4] = 1                 # isolated CAM blob: no electronic path
    summary, fields = _run(labels, phases=PHASES, voxel_size_um=VOXEL, axes=["z"],
                                    tortuosity_phases=["CAM", "SE"],
                                    random_walk={"n_walkers": 100, "n_steps": 400},
                                    measured={"sigma_eff_electronic_S_cm": 0.01})
    cam = summary["tortuosity"]["CAM"]["z"]
    assert cam["percolating"] is False and math.isinf(cam["tortuosity_factor"])
    assert summary["conductivity"]["electronic"]["z"]["percolating"] is False
    assert np.all(fields["current_density_magnitude_A_cm2"].sel(case="electronic").values == 0)
    doc = json.loads(json.dumps(to_jsonable(summary), allow_nan=False))
    assert doc["tortuosity"]["CAM"]["z"]["tortuosity_factor"] is None
    assert doc["tortuosity"]["CAM"]["z"]["macmullin_number"] is None
    assert doc["kappa"]["electronic"]["kappa_sim"] is None
    se = doc["tortuosity"]["SE"]["z"]
    assert se["percolating"] and 1 < se["tortuosity_factor"] < 1.2   # around the blob


def test_memory_limit_and_crop():
    labels = _random_labels(shape=(20, 18, 16))
    need = estimate_memory_gb(labels.shape, n_field_cases=2)
    assert need > 0.5
    with pytest.raises(InputError) as err:
        _run(labels, phases=PHASES, voxel_size_um=VOXEL, max_memory_gb=0.5,
                      sample="BM10")
    text = str(err.value)
    assert "sample 'BM10'" in text and "max_memory_gb" in text and "crop_zyx" in text
    summary, fields = _run(labels, phases=PHASES, voxel_size_um=VOXEL, axes=["z"],
                                    crop_zyx=[10, 8, 100], max_memory_gb=64, flux_fields=["CAM"])
    assert summary["shape_zyx"] == [10, 8, 16] and summary["crop_start_zyx"] == [5, 5, 0]
    assert fields["current_density_axial_A_cm2"].shape == (1, 10, 8, 16)
    assert float(fields["z"][0]) == pytest.approx((5 + 0.5) * VOXEL[0])


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


def test_stage_settings_come_from_the_schema():
    # the stage function takes every setting of stages.transport explicitly (no defaults of its
    # own to keep in sync); the random walk's library defaults are the schema's
    import inspect

    from voxelyte.random_walk import random_walk_tortuosity
    stage = config.stage_defaults()["transport"]
    sig = inspect.signature(run_transport).parameters
    settings = {name for name, p in sig.items() if p.kind == p.KEYWORD_ONLY} - {
        "phases", "voxel_size_um", "electrode_normal_axis", "measured", "sample"}
    assert settings == set(stage)
    assert all(sig[key].default is inspect.Parameter.empty for key in settings)
    walk = inspect.signature(random_walk_tortuosity).parameters
    for key, value in stage["random_walk"].items():
        if key in walk:
            assert walk[key].default == value, key
    assert stage["random_walk"]["enabled"] and stage["random_walk"]["phases"] is None


def test_stage_entries_are_the_public_functions_results():
    # the stage composes tortuosity() and multiphase_conductivity(): same numbers, bit for bit
    labels = _random_labels(seed=7)
    summary, _ = _run(labels, phases=PHASES, voxel_size_um=VOXEL, axes=["z", "x"], rtol=1e-9,
                      flux_fields=())
    timing = ("solve_time_s",)
    for name, label in (("CAM", 1), ("SE", 2)):
        for ax in ("z", "x"):
            r = tortuosity(labels, label, VOXEL, ax, rtol=1e-9)
            entry = summary["tortuosity"][name][ax]
            for key, value in entry.items():
                if key not in timing + ("sigma_eff_S_cm",):
                    assert value == r[key], (name, ax, key)
    for kind in ("electronic", "ionic"):
        for ax in ("z", "x"):
            r = multiphase_conductivity(labels, PHASES, VOXEL, ax, kind, rtol=1e-9,
                                        insulating_ratio=STAGE["insulating_ratio"])
            entry = summary["conductivity"][kind][ax]
            assert {k: v for k, v in entry.items() if k not in timing} == \
                {k: v for k, v in r.items() if k not in timing}
