"""SSRM simulator (voxelyte.ssrm): analytic spreading resistances, series layers, isolation,
solver-path independence, tiling accuracy, the stage function."""
import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from voxelyte import conduction, config, contract, phantom, ssrm
from voxelyte.errors import InputError

BACKENDS = ["superlu"] + (["pardiso"] if ssrm.Pardiso.library() is not None else [])
#: The stage settings with the schema's defaults (where the defaults live).
SETTINGS = config.stage_defaults()["ssrm"]


def simulate(labels, phases, voxel_size, sample=None, **settings):
    """ssrm.simulate with the schema's defaults for the settings not given."""
    return ssrm.simulate(labels, phases, voxel_size, **dict(SETTINGS, **settings), sample=sample)


def conductivity(labels, phases):
    """Electronic conductivity field of labels, as the stage builds it."""
    return contract.phase_table(phases).conductivity_field(labels, "electronic")


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


def _fit_spreading(sizes_voxels, resistances, box_quadrupole=False, voxel_cm=1e-4):
    """Least-squares extrapolation in 1/s: R·s = c + b₁/s + b₂/s² + δ·s (+ ε·s³). c is the
    spreading constant (ρ = 1 Ω cm); b₁, b₂ the discretisation (the half-voxel contact and the
    window edge, expanded to second order in 1/s); δ the finite box's far field (the same R
    offset for every window) and ε s³ its next term (the window's quadrupole seen by the
    insulating sides, R ∝ s²)."""
    s = np.asarray(sizes_voxels, float)            # the basis in voxels: well scaled
    y = np.asarray(resistances) * s * voxel_cm
    cols = [np.ones_like(s), 1 / s, 1 / s ** 2, s] + ([s ** 3] if box_quadrupole else [])
    return np.linalg.lstsq(np.stack(cols, 1), y, rcond=None)[0]


@pytest.fixture(scope="module")
def quarter_block():
    """Uniform σ = 1 S/cm block of 1 µm voxels, one quarter (64 deep, 48 x 48) of a 96 x 96
    face: the insulating sides are the symmetry planes of a window centred on the full face's
    centre, so R_full = R_quarter / 4. One Schur complement on the 12 x 12 corner pixels gives
    every window inside it."""
    if ssrm.Pardiso.library() is None:
        pytest.skip("MKL PARDISO not installed (SuperLU is too slow for this size)")
    model = ssrm.build_model(np.ones((64, 48, 48)), (1.0, 1.0, 1.0))
    rows = model.index_map[0, :12, :12].ravel()
    Z = ssrm.SchurSystem(model.A, rows).inverse_block()
    g = 2.0 * 1.0 * 1e-4                     # 2σA/d of a 1 µm voxel (S)

    def resistance(mask):
        idx = np.flatnonzero(mask[:12, :12].ravel())
        return ssrm.window_resistance(Z[np.ix_(idx, idx)], np.full(idx.size, g), 0.0) / 4
    return resistance


def test_square_window_spreading_resistance(quarter_block):
    """s x s windows, s = 4…24 voxels, extrapolated to s → ∞ in 1/s with the finite box's
    offset and quadrupole terms (see _fit_spreading): c = 0.4350, 1.4 % below 0.4412 (the
    same within 0.1 % for fits from s = 6 or 8 up; without the box terms the 96 x 96 x 64 box
    leaves c 3 % low)."""
    sizes = np.arange(4, 25, 2)
    R = []
    for s in sizes:
        mask = np.zeros((12, 12), bool)
        mask[:s // 2, :s // 2] = True
        R.append(quarter_block(mask))
    c, b1, b2, delta, eps = _fit_spreading(sizes, R, box_quadrupole=True)
    assert c == pytest.approx(ssrm.C_SQUARE, rel=0.02)
    assert delta > 0                           # a finite box adds resistance
    for lo in (6, 8):                          # the extrapolation does not hinge on small s
        sel = sizes >= lo
        c_lo = _fit_spreading(sizes[sel], np.array(R)[sel], box_quadrupole=True)[0]
        assert c_lo == pytest.approx(c, rel=0.005)


def test_disc_window_spreading_resistance(quarter_block):
    """Discs of radius a = 3…12 voxels (steps of 0.5) centred on a pixel corner, each with the
    radius of a disc of its staircase window's area; R·a extrapolated in 1/a (second order) with
    the box offset: 0.2508, within 0.3 % of ρ/4."""
    radii = np.arange(3.0, 12.01, 0.5)
    i = np.arange(12)
    dy, dx = np.meshgrid(i, i, indexing="ij")
    masks = [(dy + 0.5) ** 2 + (dx + 0.5) ** 2 <= a * a for a in radii]
    R = [quarter_block(m) for m in masks]
    # radius of the disc with the staircase window's area (4 quarters of m.sum() voxels)
    a_area = np.sqrt(4 * np.array([m.sum() for m in masks]) / np.pi)
    c = _fit_spreading(a_area, R)[0]
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
    ds, summary = simulate(lab, PHASES, (0.1, 0.1, 0.1), n_current_fields=0, dc_mode=False,
                           sample="T")
    R = ds["resistance_ohm"].values
    thr = summary["connectivity"]["isolation_threshold_ohm"]
    assert R[10, 10] > thr            # sphere: connected only through SE
    assert R[3, 3] < thr              # pillar: CAM all the way to the counter electrode
    assert R[15, 15] > thr            # SE
    conn = summary["connectivity"]
    assert conn["isolated_fraction_ssrm"] == pytest.approx(conn["isolated_fraction_geometric"])
    assert conn["pixel_agreement"] == 1.0
    assert not [k for k in conn if k.startswith("descriptor")]    # SSRM reads no descriptors
    # a crop 6 planes deep ends inside the sphere: mapped, the sphere reaches the crop's counter
    # electrode; the whole-volume geometry at the same pixels (shifted by the lateral crop)
    # still calls it isolated
    _, crop = simulate(lab, PHASES, (0.1, 0.1, 0.1), n_current_fields=0, dc_mode=False,
                       crop={"z": [0, 6], "y": [1, 20], "x": [1, 20]})
    cc = crop["connectivity"]
    assert cc["isolated_fraction_ssrm"] == cc["isolated_fraction_geometric"] == 0
    assert conn["isolated_fraction_geometric"] > 0
    assert conn["isolated_fraction_geometric_whole_volume"] == conn["isolated_fraction_geometric"]
    assert cc["isolated_fraction_geometric_whole_volume"] == pytest.approx(
        conn["isolated_fraction_geometric"])
    assert cc["pixel_agreement_whole_volume"] == pytest.approx(
        1 - conn["isolated_fraction_geometric"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_resistance_is_independent_of_the_solver_path(backend, monkeypatch):
    """Schur complement (direct; MKL PARDISO, or SuperLU where MKL is missing) and one
    AMG-CG solve per tip (the Dirichlet window, ``tip_resistance``) give the same R (1e-6)."""
    if backend == "superlu":       # as on a machine without MKL
        monkeypatch.setattr(ssrm.Pardiso, "library", classmethod(lambda cls: None))
    rng = np.random.default_rng(7)
    lab = rng.choice([0, 1, 2], size=(10, 12, 12), p=[0.1, 0.55, 0.35])
    phases = dict(PHASES, SE={"label": 2, "sigma_electronic_S_cm": 1e-5})
    sigma = conductivity(lab, phases)
    model = ssrm.model_of(sigma, (0.1, 0.1, 0.1))
    for kw in ({"tip_size_voxels": 1, "contact_resistance_ohm": 50.0},
               {"tip_size_voxels": 2}):
        m = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=4, method="direct", **kw)
        direct = m["resistance_ohm"]
        iterative = np.array([ssrm.tip_resistance(None, None, p, rtol=1e-11, solver="amg",
                                                  model=model, **kw) for p in m["positions"]])
        finite = np.isfinite(iterative)
        assert finite.sum() >= 5
        np.testing.assert_array_equal(np.isfinite(direct), finite)
        np.testing.assert_allclose(direct[finite], iterative[finite], rtol=1e-6)


def test_tiles_whose_sub_volumes_cover_the_volume_are_exact():
    """Several tiles, each factorised with its own face pixels last and its windows cut from
    that block: equal to the one-Schur-complement map (the tiling bookkeeping is exact)."""
    rng = np.random.default_rng(5)
    lab = rng.choice([0, 1, 2], size=(10, 18, 18), p=[0.1, 0.6, 0.3])
    sigma = conductivity(lab, PHASES)
    for w in (1, 3):
        tiled = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=2, method="tiled",
                                    tile_voxels=6, halo_voxels=18, tip_size_voxels=w)
        assert tiled["n_tiles"] > 4 and tiled["n_probe_solves"] == 0
        exact = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=2, method="direct",
                                    tip_size_voxels=w)["resistance_ohm"]
        ok = np.isfinite(exact)
        np.testing.assert_array_equal(np.isfinite(tiled["resistance_ohm"]), ok)
        np.testing.assert_allclose(tiled["resistance_ohm"][ok], exact[ok], rtol=1e-9)


def test_tiled_map_of_a_phantom_against_the_exact_map():
    """BM10-like phantom (40³, CAM 0.1 / SE 1e-9 S/cm, pores 0): tiles of 10 px with a 10 px
    halo, 20 deep, far field from the corner probes, against the exact Schur-complement map.
    The issue's target is 1 % per pixel; tiling misses it only where a CAM cluster leaves the
    sub-volume through a neck the corner probes do not feed (see the module docstring)."""
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "samples" /
                          "BM10.yaml").read_text())
    params = phantom.resolve_params(dict(cfg["phantom"], shape_zyx=[40, 40, 40]))
    lab = phantom.generate_structure(params).labels[:40, :40, :40]
    sigma = conductivity(lab, cfg["phases"])
    exact = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=2, method="direct")
    tiled = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=2, method="tiled",
                                tile_voxels=10, halo_voxels=10, depth_voxels=20)
    assert tiled["n_tiles"] == 16 and tiled["n_probe_solves"] == 25
    ok = np.isfinite(exact["resistance_ohm"])
    np.testing.assert_array_equal(np.isfinite(tiled["resistance_ohm"]), ok)
    err = np.abs(tiled["resistance_ohm"][ok] / exact["resistance_ohm"][ok] - 1)
    assert np.median(err) < 1e-3
    assert np.mean(err <= 0.01) >= 0.99
    assert err.max() < 0.03


def test_tiles_grow_to_enclose_the_isolated_clusters_they_cut():
    """An isolated CAM bar in an SE shell (fed only through SE) longer than a tile's
    sub-volume: cut at the sub-volume's side it would be grounded there by the probe far field
    (R ~100x too low); the tiles grow to the bar's box plus the halo and keep the exact R."""
    lab = np.ones((24, 48, 48), np.uint8)       # percolating CAM
    lab[0:5, 2:37, 3:11] = 2                    # SE shell ...
    lab[0:3, 4:35, 5:9] = 1                     # ... around an isolated CAM bar along the rows
    phases = dict(PHASES, SE={"label": 2, "sigma_electronic_S_cm": 1e-6})
    sigma = conductivity(lab, phases)
    iso, boxes = ssrm.isolated_clusters(sigma)
    assert [b for b in boxes if b] == [(slice(0, 3), slice(4, 35), slice(5, 9))]
    assert (iso > 0).sum() == 3 * 31 * 4
    on_bar = np.array([(r, 6) for r in range(4, 35, 5)] + [(20, 30), (40, 40)])
    exact = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), positions=on_bar,
                                method="direct")["resistance_ohm"]
    tiled = ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), positions=on_bar, method="tiled",
                                tile_voxels=12, halo_voxels=6, depth_voxels=12)
    assert tiled["n_tiles"] == 5 and tiled["n_tiles_grown"] == 3
    R = tiled["resistance_ohm"]
    np.testing.assert_allclose(R[:7], exact[:7], rtol=1e-4)     # cut, they are ~100x too low
    np.testing.assert_allclose(R[7:], exact[7:], rtol=1e-2)     # percolating CAM: probe far field


def test_auto_takes_the_exact_method_where_it_is_cheap():
    assert ssrm.choose_method((64, 64, 64), 64 * 64, 16.0) == "direct"
    assert ssrm.choose_method((128, 128, 128), 128 * 128, 16.0) == "tiled"
    assert ssrm.choose_method((64, 64, 64), 64 * 64, 0.5) == "tiled"      # memory
    assert ssrm.choose_method((48, 152, 152), 24 * 24, 16.0) == "tiled"   # n: time
    rng = np.random.default_rng(1)
    sigma = rng.choice([0.0, 0.1, 1e-9], size=(8, 10, 10), p=[0.1, 0.6, 0.3])
    assert ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=3)["method"] == "direct"
    assert ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=3, max_memory_gb=1e-6,
                               tile_voxels=4, halo_voxels=2)["method"] == "tiled"
    with pytest.raises(InputError, match="SSRM method"):
        ssrm.resistance_map(sigma, (0.1, 0.1, 0.1), stride=3, method="iterative")


def test_probe_solve_by_factorisation_equals_amg():
    if ssrm.Pardiso.library() is None:
        pytest.skip("MKL PARDISO not installed")
    rng = np.random.default_rng(2)
    sigma = rng.choice([0.1, 1e-9], size=(10, 12, 12), p=[0.6, 0.4])
    model = ssrm.build_model(sigma, (0.1, 0.1, 0.1))
    B = np.zeros((model.A.shape[0], 2))
    B[3, 0], B[50, 1] = 1.0, 1.0
    x_direct = ssrm.probe_solve(model, B, 1e-12)
    x_amg = ssrm.amg_solve(model, B, 1e-12)
    np.testing.assert_allclose(x_direct, x_amg, rtol=1e-6, atol=1e-9 * np.abs(x_amg).max())
    # the matrix-free multigrid of the large-volume probes (float32 operator levels)
    x_gmg = ssrm.gmg_face_solve(model, B, 1e-10)
    np.testing.assert_allclose(x_gmg, x_direct, rtol=1e-5, atol=1e-6 * np.abs(x_direct).max())
    with pytest.raises(ValueError, match="scanned face"):
        ssrm.gmg_face_solve(model, np.eye(model.A.shape[0], 1, k=-model.A.shape[0] + 1), 1e-8)


def test_tip_field_solvers_agree():
    """One Dirichlet-window solve by factorisation, multigrid-CG and AMG-CG: same R and field."""
    rng = np.random.default_rng(3)
    sigma = rng.choice([0.1, 1e-9, 0.0], size=(12, 14, 14), p=[0.55, 0.35, 0.1])
    fields = {s: ssrm.tip_field(sigma, (0.1, 0.1, 0.1), (7, 6), tip_size_voxels=2, solver=s)
              for s in ("direct", "gmg", "amg")}
    R = fields["direct"]["resistance_ohm"]
    assert 0 < R < math.inf
    for s in ("gmg", "amg"):
        assert fields[s]["resistance_ohm"] == pytest.approx(R, rel=1e-6)
        np.testing.assert_allclose(fields[s]["depth_profile_A_cm2"],
                                   fields["direct"]["depth_profile_A_cm2"], rtol=1e-4,
                                   atol=1e-6 * fields["direct"]["depth_profile_A_cm2"].max())
    with pytest.raises(InputError, match="field solver"):
        ssrm.tip_field(sigma, (0.1, 0.1, 0.1), (7, 6), solver="lu")


def test_scanned_face_orientation():
    lab = _particle_volume()
    flipped = lab[::-1]
    a, _ = simulate(lab, PHASES, (0.1, 0.1, 0.1), n_current_fields=1, dc_mode=False)
    b, _ = simulate(flipped, PHASES, (0.1, 0.1, 0.1), n_current_fields=1, dc_mode=False,
                    scanned_side="end")
    np.testing.assert_allclose(a["resistance_ohm"].values, b["resistance_ohm"].values,
                               rtol=1e-8)
    np.testing.assert_allclose(a["current_density_magnitude_A_cm2"].values[:, ::-1],
                               b["current_density_magnitude_A_cm2"].values, rtol=1e-4,
                               atol=1e-6 * float(a["current_density_magnitude_A_cm2"].max()))


def test_simulate_outputs_and_memory_refusal():
    lab = _particle_volume()
    ds, summary = simulate(lab, PHASES, (0.1, 0.1, 0.1), stride=2, sample="S1")
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
    # the stage's DC mode is dc_resistance of the same volume
    dc = ssrm.dc_resistance(conductivity(lab, PHASES), (0.1, 0.1, 0.1))
    assert summary["dc"]["sigma_eff_S_cm"] == dc["sigma_eff_S_cm"]
    assert summary["dc"]["depth_profile_A_cm2"] == dc["depth_profile_A_cm2"].tolist()
    with pytest.raises(InputError, match="sample 'S1'.*max_memory_gb"):
        simulate(lab, PHASES, (0.1, 0.1, 0.1), max_memory_gb=1e-6, sample="S1")
    with pytest.raises(InputError, match="phases"):
        simulate(lab + 3, PHASES, (0.1, 0.1, 0.1), sample="S1")


def test_stage_settings_are_the_keywords_of_simulate():
    """The workflow passes the schema's ``stages.ssrm`` block as simulate's keyword arguments;
    the defaults live in the schema only."""
    params = inspect.signature(ssrm.simulate).parameters
    settings = {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY
                and p.default is p.empty}
    assert set(config.stage_defaults()["ssrm"]) == settings


def test_spreading_resistance_formulas():
    assert ssrm.spreading_resistance_ohm(1.0, (1.0, 1.0), tip_size_voxels=2) == \
        pytest.approx(0.4412 / 2e-4)
    assert ssrm.spreading_resistance_ohm(2.0, (1.0, 1.0), disc_radius_um=3.0) == \
        pytest.approx(1 / (4 * 2.0 * 3e-4))
    assert math.isinf(ssrm.spreading_resistance_ohm(0.0, (1.0, 1.0)))


def test_isolation_ordering_across_samples():
    """The study-level check ranks SSRM isolated fractions against a geometric reference."""
    key = "isolated_fraction_geometric_whole_volume"

    def conn(p_ssrm, p_ref, n):
        return {"isolated_fraction_ssrm": p_ssrm, key: p_ref, "n_carrier_surface_pixels": n}

    ok = ssrm.isolation_ordering({"BM10": conn(0.05, 0.054, 800), "BM01": conn(0.44, 0.46, 700),
                                  "BM03": conn(0.06, 0.07, 30)}, key)
    assert ok["consistent"] is True and len(ok["pairs"]) == 3
    by = {tuple(p["samples"]): p for p in ok["pairs"]}
    assert by[("BM01", "BM10")]["resolved"] and by[("BM01", "BM10")]["agree"]
    # 0.054 vs 0.07 with 30 pixels: within two standard errors, not a verdict either way
    assert not by[("BM03", "BM10")]["resolved"]
    q10, q03 = (0.05 * 800 + 0.5) / 801, (0.06 * 30 + 0.5) / 31
    assert by[("BM03", "BM10")]["two_standard_errors"] == pytest.approx(
        2 * math.sqrt(q10 * (1 - q10) / 800 + q03 * (1 - q03) / 30))
    # no isolated pixel mapped in either sample still carries a sampling error
    zero = ssrm.isolation_ordering({"a": conn(0.0, 0.0, 50), "b": conn(0.0, 0.01, 50)}, key)
    assert zero["consistent"] is True and not zero["pairs"][0]["resolved"]
    # a crop that hides the isolation of the second sample: the ranking flips
    bad = ssrm.isolation_ordering({"BM10": conn(0.05, 0.054, 800), "BM01": conn(0.0, 0.46, 700)},
                                  key)
    assert bad["consistent"] is False and not bad["pairs"][0]["agree"]
    assert ssrm.isolation_ordering({"BM10": conn(0.05, 0.05, 10), "x": None}, key)[
        "consistent"] is None
