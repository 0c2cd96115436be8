"""Descriptor checks against geometry (analytic values), not against earlier runs."""
import json
import math

import numpy as np
import pytest

from voxelyte import config
from voxelyte import descriptors as D
from voxelyte.errors import InputError

#: The stage settings as a workflow run gets them (schema defaults).
SETTINGS = config.stage_defaults()["descriptors"]
PHASES = {"pore": {"label": 0, "density_g_cm3": 0.0}, "CAM": {"label": 1, "density_g_cm3": 4.75},
          "SE": {"label": 2, "density_g_cm3": 2.2}}
TWO = {"a": {"label": 0}, "b": {"label": 1}}
ISO = (1.0, 1.0, 1.0)
#: Area lost per unit edge length by the smoothed indicator: the 0.5-contour of Φ(x/σ)Φ(y/σ)
#: around a right-angled edge is 0.842 σ shorter than the sharp corner (numerical quadrature).
SMOOTH_EDGE_LOSS = 0.842
#: The binary indicator (level 0.5) chamfers each edge: 2·½ voxel replaced by √2·½ voxel.
BINARY_EDGE_LOSS = 1 - math.sqrt(0.5)


def ball(shape, centre, radius, spacing=ISO):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, spacing))
    return r2 <= radius ** 2


# --------------------------------------------------------------------------- surfaces
def test_sphere_area_within_2_percent():
    r = 20.0
    labels = ball((50, 50, 50), (24.6, 25.3, 24.8), r).astype(np.uint8)
    area = D.phase_surface_areas(labels, TWO, ISO)["b"]
    assert area == pytest.approx(4 * math.pi * r * r, rel=0.02)
    # the binary indicator's staircase bias on curved surfaces is large: +5..+10 %
    binary = D.phase_surface_areas(labels, TWO, ISO, smoothing_voxels=0)["b"]
    assert 1.05 < binary / (4 * math.pi * r * r) < 1.10


def test_cube_area_with_known_edge_bias_corrected():
    a = 40
    labels = np.zeros((50, 50, 50), np.uint8)
    labels[5:45, 5:45, 5:45] = 1
    exact = 6 * a * a
    smooth = D.phase_surface_areas(labels, TWO, ISO)["b"]
    assert smooth + 12 * a * SMOOTH_EDGE_LOSS * 1.0 == pytest.approx(exact, rel=0.01)
    binary = D.phase_surface_areas(labels, TWO, ISO, smoothing_voxels=0)["b"]
    assert binary + 12 * a * BINARY_EDGE_LOSS == pytest.approx(exact, rel=0.002)


def test_layered_slabs_interface_and_chords_anisotropic():
    voxel = (0.3, 0.2, 0.1)
    t = 8
    labels = np.zeros((5 * t, 30, 44), np.uint8)
    for k in range(5):
        labels[k * t:(k + 1) * t] = k % 2           # 0 | 1 | 0 | 1 | 0 along z
    plane = 30 * 0.2 * 44 * 0.1
    inter = D.interface_areas(labels, TWO, voxel)
    assert inter[("a", "b")] == pytest.approx(4 * plane, rel=0.01)
    assert D.phase_surface_areas(labels, TWO, voxel)["b"] == pytest.approx(4 * plane, rel=0.01)
    counts = D.chord_lengths(labels, TWO, voxel, step_voxels=2)
    for phase in ("a", "b"):
        assert set(np.nonzero(counts[(phase, "z")])[0]) <= {t}          # interior slabs only
        assert counts[(phase, "y")].sum() == counts[(phase, "x")].sum() == 0   # all touch faces
    assert counts[("a", "z")][t] == 15 * 22 and counts[("b", "z")][t] == 2 * 15 * 22
    scalars, table = D.chord_length_summary(counts, voxel)
    assert scalars["mean_chord_length_b_z_um"] == pytest.approx(t * 0.3)
    assert np.allclose(table["chord_length_um"], t * 0.3)
    # phase b = 2 slabs of t voxels in L = 5t along z (non-periodic estimator, pairs inside
    # the box): S2(d) = 2(t - d)/(L - d) for d <= t; C = 1/e where S2 = φ² + (φ - φ²)/e
    _, stats = D.two_point_correlation(labels, 1, voxel)
    phi, length = 0.4, 5 * t
    s_e = phi ** 2 + (phi - phi ** 2) / math.e
    d_e = (2 * t - s_e * length) / (2 - s_e)          # voxels
    assert stats["z"]["correlation_length_um"] == pytest.approx(d_e * 0.3, rel=0.01)
    assert stats["y"]["correlation_length_um"] is None


def test_eq1_three_phase_layers_and_four_phase_generalisation():
    labels = np.zeros((30, 20, 25), np.uint8)
    labels[10:20] = 1
    labels[20:] = 2
    plane = 20 * 25
    inter = D.interface_areas(labels, PHASES, ISO)
    assert inter[("pore", "CAM")] == pytest.approx(plane, rel=0.01)
    assert inter[("CAM", "SE")] == pytest.approx(plane, rel=0.01)
    assert inter[("pore", "SE")] == pytest.approx(0, abs=0.01 * plane)
    four = dict(PHASES, CBD={"label": 3})
    labels4 = labels.copy()
    labels4[25:] = 3                                 # 0 | 1 | 2 | 3
    inter4 = D.interface_areas(labels4, four, ISO)
    for pair in (("pore", "CAM"), ("CAM", "SE"), ("SE", "CBD")):
        assert inter4[pair] == pytest.approx(plane, rel=0.01)
    for pair in (("pore", "SE"), ("pore", "CBD"), ("CAM", "CBD")):
        assert inter4[pair] == pytest.approx(0, abs=0.01 * plane)


def test_eq1_spherical_shell():
    r1, r2 = 20.0, 30.0                              # CAM core, SE shell, pore outside
    shape, c = (70, 70, 70), (34.7, 35.2, 34.9)
    labels = np.zeros(shape, np.uint8)
    labels[ball(shape, c, r2)] = 2
    labels[ball(shape, c, r1)] = 1
    inter = D.interface_areas(labels, PHASES, ISO)
    assert inter[("CAM", "SE")] == pytest.approx(4 * math.pi * r1 ** 2, rel=0.02)
    assert inter[("pore", "SE")] == pytest.approx(4 * math.pi * r2 ** 2, rel=0.02)
    assert inter[("pore", "CAM")] < 0.01 * 4 * math.pi * r1 ** 2


def test_anisotropic_voxels_sphere_area_and_volume():
    voxel = (0.5, 0.25, 0.25)                        # a sphere of radius 8 µm
    r, shape = 8.0, (40, 76, 76)
    centre = (19.7, 37.6, 37.3)
    labels = ball(shape, centre, r, voxel).astype(np.uint8)
    area = D.phase_surface_areas(labels, TWO, voxel)["b"]
    assert area == pytest.approx(4 * math.pi * r * r, rel=0.02)
    vf = D.volume_fractions(labels, TWO)["b"]
    total = np.prod(shape) * np.prod(voxel)
    assert vf * total == pytest.approx(4 / 3 * math.pi * r ** 3, rel=0.01)


# --------------------------------------------------------------------------- connectivity
def test_connectivity_isolated_spheres_and_columns():
    shape = (40, 40, 40)
    labels = np.zeros(shape, np.uint8)
    for c in ((10, 10, 10), (28, 25, 12), (15, 28, 28)):
        labels[ball(shape, c, 5)] = 1
    res = D.connectivity(labels, TWO)["b"]
    for axis in "zyx":
        assert res[f"isolated_{axis}"] == 1 and res[f"percolating_{axis}"] == 0
    assert res["isolated_from_current_collector"] == 1 and res["n_components"] == 3

    col = np.zeros(shape, np.uint8)
    col[:, 18:22, 18:22] = 1                          # straight column along z
    res = D.connectivity(col, TWO)["b"]
    assert res["percolating_z"] == 1 and res["isolated_y"] == 1 and res["isolated_x"] == 1
    half = np.zeros(shape, np.uint8)
    half[:20, 5:9, 5:9] = 1                           # from the z-start face to mid-depth
    half[30:35, 30:34, 30:34] = 1                     # plus an isolated block (80 / (320+80))
    res = D.connectivity(half, TWO, electrode_normal_axis="z", current_collector_side="start")["b"]
    assert res["dead_end_z"] == pytest.approx(320 / 400) and res["isolated_z"] == pytest.approx(0.2)
    assert res["isolated_from_current_collector"] == pytest.approx(0.2)
    res = D.connectivity(half, TWO, current_collector_side="end")["b"]
    assert res["isolated_from_current_collector"] == 1
    # face pixels whose component misses the opposite face (the SSRM view of that face): the
    # half column's 16 z-start pixels, not the 80 of a wall through z and x (which swallows
    # the block); nothing of the phase on the y = 0 face
    half[:, 30:32, 0:40] = 1
    res = D.connectivity(half, TWO)["b"]
    assert res["surface_unconnected_z_start"] == pytest.approx(16 / (16 + 80))
    assert res["surface_unconnected_z_end"] == 0          # only the wall reaches z = end
    assert res["surface_unconnected_x_start"] == 0 and res["surface_unconnected_y_start"] is None


# --------------------------------------------------------------------------- profiles and 2D
def test_profile_recovers_linear_gradient():
    rng = np.random.default_rng(0)
    nz, n = 50, 40
    dz = 0.25
    f = 0.2 + 0.01 * np.arange(nz)                   # 0.01 per slice = 0.04 per µm
    labels = np.zeros((nz, n, n), np.uint8)
    for k in range(nz):
        flat = np.zeros(n * n, np.uint8)
        flat[rng.permutation(n * n)[:int(round(f[k] * n * n))]] = 1
        labels[k] = flat.reshape(n, n)
    df, s = D.through_thickness_profile(labels, TWO, (dz, 0.1, 0.1), slab_voxels=7)
    assert s["profile_slope_b_um-1"] == pytest.approx(0.01 / dz, rel=0.05)
    assert s["profile_mean_volume_fraction_b"] == pytest.approx(f.mean(), abs=1e-3)
    assert s["profile_rsd_b"] == pytest.approx(f.std() / f.mean(), rel=0.02)
    assert df["position_um"].iloc[1] == pytest.approx(1.5 * dz)
    # along y there is no gradient
    _, sy = D.through_thickness_profile(labels, TWO, (dz, 0.1, 0.1), electrode_normal_axis="y")
    assert abs(sy["profile_slope_b_um-1"]) < 0.1 * 0.01 / dz


def test_slice_descriptors_discs_anisotropic_pixels():
    dy, dx = 0.1, 0.05                               # discs of radius 1.2 µm, cylinders along z
    shape = (6, 90, 180)
    labels = np.zeros(shape, np.uint8)
    yy, xx = np.ogrid[:shape[1], :shape[2]]
    centres = [(2.5, 2.5), (2.5, 5.8), (6.0, 4.0)]
    for cy, cx in centres:
        labels[:, ((yy * dy - cy) ** 2 + (xx * dx - cx) ** 2) <= 1.2 ** 2] = 1
    df, s = D.slice_descriptors_2d(labels, TWO, (0.2, dy, dx), slab_voxels=4)
    assert s["slice2d_particle_density_b_um-2"] == pytest.approx(3 / (90 * dy * 180 * dx))
    assert s["slice2d_mean_perimeter_b_um"] == pytest.approx(2 * math.pi * 1.2, rel=0.03)
    assert s["slice2d_mean_particle_area_b_um2"] == pytest.approx(math.pi * 1.44, rel=0.03)
    assert s["slice2d_mean_circularity_b"] == pytest.approx(1.0, abs=0.06)
    assert s["slice2d_area_fraction_b"] == pytest.approx(labels.mean())
    assert len(df) == 2 * shape[0]


# --------------------------------------------------------------------------- sizes
def test_local_thickness_and_granulometry_of_a_slab():
    labels = np.zeros((30, 24, 24), np.uint8)
    labels[8:18] = 1                                 # slab 10 voxels = 2.0 µm thick
    table, stats = D.local_thickness_distribution(labels, 1, (0.2, 0.2, 0.2), n_sizes=12)
    assert stats["median_local_thickness_um"] == pytest.approx(2.0, abs=0.2)
    assert table["volume_fraction_of_phase"].sum() == pytest.approx(1.0)
    gtab, gstats = D.granulometry(labels, 1, (0.2, 0.2, 0.2), n_sizes=12)
    g = gtab["remaining_volume_fraction"].to_numpy()
    assert np.all(np.diff(g) <= 1e-12) and g[0] == 1.0
    assert gstats["granulometry_mean_radius_um"] == pytest.approx(1.0, abs=0.15)


@pytest.fixture(scope="module")
def small_phantom():
    from voxelyte.phantom import generate_structure
    st = generate_structure({"shape_zyx": [64, 64, 64], "voxel_size_um": 0.2, "se_d50_um": 2.95,
                             "seed": 0})
    return st.central(st.labels), st.central(st.cam_particle_id)


def test_watershed_particle_count_vs_truth(small_phantom):
    """Tolerance: ±20 % of the true CAM particles of at least 50 voxels (smaller true ids are
    sphere slivers cut by the box or hidden in agglomerates; watershed cannot see them)."""
    labels, pid = small_phantom
    _, table = D.separate_particles(labels, 1, (0.2, 0.2, 0.2))
    vol = np.bincount(pid.ravel())[1:]
    n_true = int((vol >= 50).sum())
    n_found = int((table["volume_um3"] >= 50 * 0.008 - 1e-9).sum())
    assert abs(n_found - n_true) <= 0.2 * n_true
    assert table["volume_um3"].sum() == pytest.approx((labels == 1).sum() * 0.008)


def test_particle_contact_area_of_touching_spheres_and_cubes():
    """Two spheres (r = 15) with centres 24 apart, cut at the mid-plane: the contact is a disc of
    radius √(15² − 12²) = 9; on the voxel grid it is exactly the count of separating faces."""
    n = 64
    z, y, x = np.ogrid[:n, :n, :n]
    left = ball((n, n, n), (32, 32, 20), 15) & (x < 32)
    right = ball((n, n, n), (32, 32, 44), 15) & (x >= 32)
    particles = np.zeros((n, n, n), np.int32)
    particles[left], particles[right] = 1, 2
    faces = int(np.sum((particles[:, :, 31] == 1) & (particles[:, :, 32] == 2)))
    result = D.particle_contact_area(particles, ISO)
    assert result["contact_area_um2"] == pytest.approx(faces, rel=0.01)
    assert result["contact_area_um2"] == pytest.approx(math.pi * (15 ** 2 - 12 ** 2), rel=0.02)
    # two cubes (a = 20) face to face: a² less the binary chamfer of the contact rim (4a long)
    particles = np.zeros((40, 40, 60), np.int32)
    particles[10:30, 10:30, 5:25], particles[10:30, 10:30, 25:45] = 1, 2
    result = D.particle_contact_area(particles, (0.5, 0.5, 0.5))
    expected = (20 ** 2 - BINARY_EDGE_LOSS * 4 * 20) * 0.25
    assert result["contact_area_um2"] == pytest.approx(expected, rel=0.002)
    assert result["contact_fraction"] == pytest.approx(
        2 * result["contact_area_um2"] / result["particles_surface_area_um2"])
    lone = (particles == 1).astype(np.int32)                       # no neighbour: no contact
    assert D.particle_contact_area(lone, ISO)["contact_area_um2"] == pytest.approx(0, abs=1e-6)


def test_more_clustered_cam_has_more_particle_contact():
    """True CAM particles of phantoms: clustering (larger SE) presses spheres together."""
    from voxelyte.phantom import generate_structure

    fractions = {}
    for clustering in (0.0, 0.9):
        st = generate_structure({"shape_zyx": [64, 64, 64], "voxel_size_um": 0.2, "seed": 1,
                                 "cam_clustering": clustering})
        pid = st.central(st.cam_particle_id).astype(np.int32)
        fractions[clustering] = D.particle_contact_area(pid, (0.2,) * 3)["contact_fraction"]
    assert fractions[0.9] > 1.5 * fractions[0.0]


# --------------------------------------------------------------------------- demo trends
@pytest.fixture(scope="module")
def demo():
    from voxelyte.phantom import generate_structure
    out = {}
    for se in (3.7, 2.45, 2.95):
        st = generate_structure({"shape_zyx": [96, 96, 96], "voxel_size_um": 0.2, "se_d50_um": se,
                                 "cam_d50_um": 2.5, "cam_volume_fraction": 0.47,
                                 "porosity": "auto", "seed": 0})
        labels = st.central(st.labels)
        vf = D.volume_fractions(labels, PHASES)
        counts = D.chord_lengths(labels, PHASES, (0.2,) * 3)
        chords, _ = D.chord_length_summary(counts, (0.2,) * 3)
        inter = D.interface_areas(labels, PHASES, (0.2,) * 3)
        cam_mass = vf["CAM"] * labels.size * 0.2 ** 3 * 4.75
        out[se] = {"porosity": vf["pore"], "chord": chords["mean_chord_length_CAM_um"],
                   "s_cam_se_m2_g": inter[("CAM", "SE")] / cam_mass}
    return out


def test_demo_phantoms_follow_minnmann_trends(demo):
    big, others = demo[3.7], (demo[2.45], demo[2.95])
    assert all(big["porosity"] > o["porosity"] for o in others)
    assert all(big["chord"] > o["chord"] for o in others)
    assert all(big["s_cam_se_m2_g"] < o["s_cam_se_m2_g"] for o in others)


# --------------------------------------------------------------------------- edge cases, API
def test_empty_and_single_phase_volumes(tmp_path):
    phases = dict(PHASES, CBD={"label": 7, "density_g_cm3": 1.8})   # CBD absent
    labels = np.ones((12, 10, 14), np.uint8)                         # CAM only
    s, tables = D.compute_descriptors(labels, voxel_size_um=(0.3, 0.2, 0.1), phases=phases,
                                      **dict(SETTINGS, n_sizes=4))
    assert s["volume_fraction_CAM"] == 1 and s["volume_fraction_CBD"] == 0
    assert s["surface_area_CAM_um2"] == 0 and s["interface_area_CAM_SE_um2"] == 0
    assert s["mean_chord_length_CBD_um"] is None and s["chord_count_CAM"] == 0
    assert s["connectivity_CAM_percolating_z"] == 1 and s["connectivity_CBD_isolated_z"] is None
    assert s["particle_count_CAM"] == 1
    assert s["total_volume_um3"] == pytest.approx(12 * 10 * 14 * 0.3 * 0.2 * 0.1)
    paths = D.write_descriptors(s, tables, tmp_path / "out")
    assert json.loads(paths["descriptors"].read_text())["volume_fraction_CAM"] == 1
    assert not list((tmp_path / "out").glob("*.tmp-*"))


def test_compute_and_write_full_set(tmp_path, small_phantom):
    labels, _ = small_phantom
    nominal = {"mass_fraction": {"CAM": 0.7, "SE": 0.3}, "porosity_geometric": 0.1}
    s, tables = D.compute_descriptors(labels, voxel_size_um=(0.2, 0.2, 0.2), phases=PHASES,
                                      nominal_composition=nominal, **dict(SETTINGS, n_sizes=8))
    cam = 0.7 / 4.75 / (0.7 / 4.75 + 0.3 / 2.2) * 0.9
    assert s["volume_fraction_CAM_nominal"] == pytest.approx(cam)
    assert s["volume_fraction_pore_nominal"] == pytest.approx(0.1)
    # per-mass units: µm² / (µm³ · g cm⁻³) = m² g⁻¹
    expect = s["interface_area_CAM_SE_um2"] / (s["volume_CAM_um3"] * 4.75)
    assert s["specific_interface_area_CAM_SE_per_CAM_mass_m2_g"] == pytest.approx(expect)
    assert s["surface_coverage_CAM_by_SE"] + s["surface_coverage_CAM_by_pore"] == \
        pytest.approx(1, abs=0.03)
    paths = D.write_descriptors(s, tables, tmp_path)
    assert set(paths) == {"descriptors", *tables}
    assert all(p.exists() for p in paths.values())


def test_dask_and_xarray_input_match_numpy(small_phantom):
    import dask.array as da
    import xarray as xr
    labels, _ = small_phantom
    lazy = xr.DataArray(da.from_array(labels, chunks=(16, 64, 64)), dims=("z", "y", "x"))
    voxel = (0.2, 0.2, 0.2)
    assert D.volume_fractions(lazy, PHASES) == D.volume_fractions(labels, PHASES)
    a = D.phase_surface_areas(lazy, PHASES, voxel, slab_voxels=10)
    b = D.phase_surface_areas(labels, PHASES, voxel, slab_voxels=1000)
    assert a == pytest.approx(b, rel=1e-6)
    ca, cb = D.chord_lengths(lazy, PHASES, voxel, slab_voxels=9), D.chord_lengths(labels, PHASES, voxel)
    assert all(np.array_equal(ca[k], cb[k]) for k in cb)


def test_bad_input_raises_input_error():
    labels = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(InputError, match="voxel"):
        D.volume_fractions(labels, PHASES) and D.phase_surface_areas(labels, PHASES, (0.1, -1, 1))
    with pytest.raises(InputError, match="label"):
        D.volume_fractions(labels, {"a": {"label": 1}, "b": {"label": 1}})
    with pytest.raises(InputError, match="integer"):
        D.volume_fractions(labels.astype(float), PHASES)
    with pytest.raises(InputError, match="unknown phase"):
        D.nominal_volume_fractions({"volume_fraction": {"NCM": 0.5}}, PHASES)
