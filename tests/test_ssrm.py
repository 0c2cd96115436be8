"""SSRM simulator (voxelyte.ssrm): analytic spreading resistances, series layers, isolation,
solver-path independence, tiling accuracy, the stage function."""
import math

import numpy as np
import pytest

from voxelyte import conduction, config, ssrm
from voxelyte.errors import InputError

BACKENDS = ["superlu"] + (["pardiso"] if ssrm._Pardiso.library() is not None else [])


def test_uniform_bar_full_face_window_is_L_over_sigma_A_with_uniform_current():
    sigma, vox = 0.37, (0.1, 0.2, 0.3)
    field = np.full((24, 7, 5), sigma)
    dc = ssrm.dc_resistance(field, vox)
    L, A = 24 * 0.1e-4, 7 * 0.2e-4 * 5 * 0.3e-4
    assert dc["resistance_ohm"] == pytest.approx(L / (sigma * A), rel=1e-6)
    assert dc["sigma_eff_S_cm"] == pytest.approx(sigma, rel=1e-6)
    prof = dc["depth_profile_A_cm2"]
    np.testing.assert_allclose(prof, 1.0 / (dc["resistance_ohm"] * A), rtol=1e-6)  # 1 V bias


def test_dc_mode_reproduces_the_transport_effective_conductivity():
    rng = np.random.default_rng(3)
    field = rng.choice([0.0, 0.1, 1e-3], size=(14, 12, 10), p=[0.2, 0.5, 0.3])
    dc = ssrm.dc_resistance(field, (0.1, 0.1, 0.1), rtol=1e-12)
    ref = conduction.effective_conductivity(field, (0.1, 0.1, 0.1), "z", rtol=1e-12)
    assert dc["sigma_eff_S_cm"] == pytest.approx(ref["sigma_eff_S_cm"], rel=1e-6)


def test_single_pixel_tip_crowds_current_under_the_tip():
    """Gamo SI Fig. S3d: with a 1 x 1 window the current density is highest right under the
    tip and falls with depth; the total current through every plane is the tip current."""
    field = np.ones((20, 15, 15))
    f = ssrm.tip_field(field, (1.0, 1.0, 1.0), (7, 7))
    prof = f["depth_profile_A_cm2"]
    uniform = f["current_A"] / (15 * 15 * 1e-8)       # I / A of the cross-section
    assert prof[0] > 20 * uniform
    assert np.all(np.diff(prof[:8]) < 0)
    assert prof[-1] == pytest.approx(uniform, rel=0.05)
    jz = f["current_density_A_cm2"][0]
    plane_currents = jz.sum(axis=(1, 2)) * 1e-8          # A (1 µm² faces)
    np.testing.assert_allclose(plane_currents[1:], f["current_A"], rtol=1e-6)


def _fit_spreading(sizes, resistances):
    """Least-squares R = c/s + b/s² + δ (c: the spreading constant; b: discretisation; δ: the
    finite-box far field, the same for every window size)."""
    s = np.asarray(sizes, float)
    M = np.stack([1 / s, 1 / s ** 2, np.ones_like(s)], 1)
    coef, *_ = np.linalg.lstsq(M, np.asarray(resistances), rcond=None)
    return coef


def test_square_window_converges_to_0_4412_rho_over_s():
    """Uniform block 64 x 96 x 96 voxels of 1 µm, σ = 1 S/cm (ρ = 1 Ω cm): R for s x s windows,
    s = 4, 6, 8, 12, 16, extrapolated with R = c/s + b/s² + δ (s in cm): c → 0.4412 ρ."""
    field = np.ones((64, 96, 96))
    sizes = [4, 6, 8, 12, 16]
    R = []
    for s in sizes:
        off = ssrm.window_offsets((1.0, 1.0), tip_size_voxels=s)
        R.append(ssrm.tip_resistance(field, (1.0, 1.0, 1.0), (48, 48), offsets=off, rtol=1e-9))
    c, b, delta = _fit_spreading(np.array(sizes) * 1e-4, R)
    assert c == pytest.approx(ssrm.C_SQUARE, rel=0.02)
    # raw R·σ·s approaches the constant from one side as s grows
    raw = [r * s * 1e-4 for r, s in zip(R, sizes)]
    assert abs(raw[2] - ssrm.C_SQUARE) < abs(raw[0] - ssrm.C_SQUARE) or raw[2] > 0


def test_disc_window_converges_to_rho_over_4a():
    field = np.ones((64, 96, 96))
    radii = [4.0, 6.0, 8.0, 12.0]
    R = [ssrm.tip_resistance(field, (1.0, 1.0, 1.0), (48, 48), disc_radius_um=a, rtol=1e-9)
         for a in radii]
    c, b, delta = _fit_spreading(np.array(radii) * 1e-4, R)
    assert c == pytest.approx(ssrm.C_DISC, rel=0.02)


def test_series_layers_below_the_tip():
    """Full-face window over layers normal to the scan axis: R = Σ L_i/(σ_i A) exactly; a
    1 x 1 tip sees the top layer's spreading resistance plus the layers below in series, so a
    resistive buried layer adds at least its own L/(σA) and no more than with a resistive
    top layer of the same thickness feeding the tip."""
    vox = (0.1, 0.1, 0.1)
    field = np.empty((30, 10, 10))
    field[:10], field[10:20], field[20:] = 0.1, 0.01, 0.05
    A = (10 * 0.1e-4) ** 2
    expect = sum(10 * 0.1e-4 / (s * A) for s in (0.1, 0.01, 0.05))
    assert ssrm.dc_resistance(field, vox)["resistance_ohm"] == pytest.approx(expect, rel=1e-9)
    uniform = np.full_like(field, 0.1)
    r_uniform = ssrm.tip_resistance(uniform, vox, (5, 5))
    r_buried = ssrm.tip_resistance(field, vox, (5, 5))
    added = 10 * 0.1e-4 / A * (1 / 0.01 - 1 / 0.1) + 10 * 0.1e-4 / A * (1 / 0.05 - 1 / 0.1)
    assert r_buried > r_uniform + 0.99 * added
    top = np.full_like(field, 0.1)
    top[:10] = 0.01
    assert ssrm.tip_resistance(top, vox, (5, 5)) > r_buried


def _particle_volume():
    """CAM (0.1 S/cm) slab at the counter electrode, a CAM sphere touching the scanned face but
    not the slab, everything else SE (1e-9 S/cm)."""
    lab = np.full((24, 20, 20), 2, np.uint8)
    lab[16:] = 1
    z, y, x = np.mgrid[:24, :20, :20]
    lab[(z - 3) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 16] = 1       # centre z=3, r=4
    lab[:12, 2:5, 2:5] = 1                                            # a pillar ...
    lab[:, 2:5, 2:5] = 1                                              # ... down to the slab
    return lab


PHASES = {"pore": {"label": 0, "sigma_electronic_S_cm": 0.0},
          "CAM": {"label": 1, "sigma_electronic_S_cm": 0.1},
          "SE": {"label": 2, "sigma_electronic_S_cm": 1e-9}}


def test_isolated_cam_particle_is_above_the_isolation_threshold():
    lab = _particle_volume()
    ds, summary = ssrm.simulate(lab, PHASES, (0.1, 0.1, 0.1),
                                {"n_current_fields": 0, "dc_mode": False}, sample="T")
    R = ds["resistance_ohm"].values
    thr = summary["connectivity"]["isolation_threshold_ohm"]
    assert R[10, 10] > thr            # sphere: connected only through SE
    assert R[3, 3] < thr              # pillar: CAM all the way to the counter electrode
    assert R[15, 15] > thr            # SE
    conn = summary["connectivity"]
    assert conn["isolated_fraction_ssrm"] == pytest.approx(conn["isolated_fraction_geometric"])
    assert conn["pixel_agreement"] == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_resistance_is_independent_of_the_solver_path(backend):
    rng = np.random.default_rng(7)
    lab = rng.choice([0, 1, 2], size=(12, 14, 14), p=[0.1, 0.55, 0.35])
    sigma = ssrm.conductivity_field(lab, PHASES)
    for kw in ({"tip_size_voxels": 1, "contact_resistance_ohm": 50.0},
               {"tip_size_voxels": 2}):
        direct = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=3, method="direct",
                                     backend=backend, **kw)["resistance_ohm"]
        iterative = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=3, method="iterative",
                                        rtol=1e-12, **kw)["resistance_ohm"]
        finite = np.isfinite(iterative)
        assert finite.sum() > 5
        np.testing.assert_array_equal(np.isfinite(direct), finite)
        np.testing.assert_allclose(direct[finite], iterative[finite], rtol=1e-6)


def test_tiled_map_matches_independent_solves_within_one_percent():
    rng = np.random.default_rng(11)
    from scipy import ndimage
    noise = ndimage.gaussian_filter(rng.standard_normal((20, 36, 36)), 2.0)
    lab = np.where(noise > 0.05, 1, 2).astype(np.uint8)
    lab[rng.random(lab.shape) < 0.03] = 0
    sigma = ssrm.conductivity_field(lab, PHASES)
    m = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=5, method="tiled", tile_voxels=12,
                            halo_voxels=8, depth_voxels=14)
    assert m["n_tiles"] > 1 and m["n_probe_solves"] > 0
    R = m["resistance_ohm"]
    ref = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=5, method="direct")
    ok = np.isfinite(ref["resistance_ohm"])
    np.testing.assert_array_equal(np.isfinite(R), ok)
    np.testing.assert_allclose(R[ok], ref["resistance_ohm"][ok], rtol=0.01)


def test_probe_solve_by_factorisation_equals_amg():
    if ssrm._Pardiso.library() is None:
        pytest.skip("MKL PARDISO not installed")
    rng = np.random.default_rng(2)
    sigma = rng.choice([0.1, 1e-9], size=(10, 12, 12), p=[0.6, 0.4])
    model = ssrm._build_model(sigma, (0.1, 0.1, 0.1))
    B = np.zeros((model.A.shape[0], 2))
    B[3, 0], B[50, 1] = 1.0, 1.0
    x_direct = ssrm._probe_solve(model, B, 1e-12, "auto")
    x_amg = ssrm._amg_solve(model, B, 1e-12)
    np.testing.assert_allclose(x_direct, x_amg, rtol=1e-6, atol=1e-9 * np.abs(x_amg).max())


def test_scanned_face_orientation():
    lab = _particle_volume()
    flipped = lab[::-1]
    a, _ = ssrm.simulate(lab, PHASES, (0.1, 0.1, 0.1), {"n_current_fields": 1,
                                                        "dc_mode": False})
    b, _ = ssrm.simulate(flipped, PHASES, (0.1, 0.1, 0.1),
                         {"n_current_fields": 1, "dc_mode": False, "scanned_side": "end"})
    np.testing.assert_allclose(a["resistance_ohm"].values, b["resistance_ohm"].values,
                               rtol=1e-8)
    np.testing.assert_allclose(a["current_density_magnitude_A_cm2"].values[:, ::-1],
                               b["current_density_magnitude_A_cm2"].values, rtol=1e-4,
                               atol=1e-6 * float(a["current_density_magnitude_A_cm2"].max()))


def test_simulate_outputs_and_memory_refusal():
    lab = _particle_volume()
    ds, summary = ssrm.simulate(lab, PHASES, (0.1, 0.1, 0.1), {"stride": 2}, sample="S1")
    assert ds["resistance_ohm"].dims == ("y", "x")
    assert np.isnan(ds["resistance_ohm"].values[1, 1])                 # not scanned
    assert ds["phase_under_tip"].values[1, 1] == 255
    assert ds["current_density_magnitude_A_cm2"].shape == (2, 24, 20, 20)
    f = summary["current_fields"]
    assert f[0]["resistance_ohm"] < f[1]["resistance_ohm"]
    for fi in f:
        assert fi["resistance_check_ohm"] == pytest.approx(fi["resistance_ohm"], rel=1e-6)
    assert sum(sum(c) for c in summary["log10_resistance_histogram"]["counts"].values()) == \
        sum(np.isfinite(ds["resistance_ohm"].values).ravel())
    assert summary["dc"]["sigma_eff_S_cm"] > 0
    with pytest.raises(InputError, match="sample 'S1'.*max_memory_gb"):
        ssrm.simulate(lab, PHASES, (0.1, 0.1, 0.1), {"max_memory_gb": 1e-6}, sample="S1")
    with pytest.raises(InputError, match="phases"):
        ssrm.simulate(lab + 3, PHASES, (0.1, 0.1, 0.1), sample="S1")


def test_schema_defaults_match_library_defaults():
    assert config.stage_defaults()["ssrm"] == ssrm.SSRM_DEFAULTS


def test_spreading_resistance_formulas():
    assert ssrm.spreading_resistance_ohm(1.0, (1.0, 1.0), tip_size_voxels=2) == \
        pytest.approx(0.4412 / 2e-4)
    assert ssrm.spreading_resistance_ohm(2.0, (1.0, 1.0), disc_radius_um=3.0) == \
        pytest.approx(1 / (4 * 2.0 * 3e-4))
    assert math.isinf(ssrm.spreading_resistance_ohm(0.0, (1.0, 1.0)))
