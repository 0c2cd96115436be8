"""Finite-volume conduction operator and solver: exact cases from circuit theory."""
import numpy as np
import pytest

from voxelyte.conduction import (assemble, effective_conductivities, effective_conductivity,
                                 face_conductances, grid_operator, percolating_network, solve)
from voxelyte.errors import InputError

VOXEL = (0.2, 0.1, 0.3)  # anisotropic (dz, dy, dx) µm
UM_TO_CM = 1e-4
METHODS = ["gmg", "sa"]  # matrix-free geometric multigrid CG; assembled CSR + pyamg SA AMG-CG


def _layers(axis: int, sig, thick, shape_other=(4, 5)):
    """Layers stacked along ``axis``: layer i has conductivity sig[i] and thickness thick[i]."""
    profile = np.repeat(np.asarray(sig, float), thick)
    shape = list(shape_other)
    shape.insert(axis, profile.size)
    view = [1, 1, 1]
    view[axis] = profile.size
    return np.broadcast_to(profile.reshape(view), shape).copy()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_series_layers_exact(axis, method):
    sig, thick = [2.0, 0.5, 3.0, 1e-3], [2, 3, 1, 2]
    sigma = _layers(axis, sig, thick)
    d = VOXEL[axis]
    length = sum(thick) * d
    exact = length / sum(t * d / s for s, t in zip(sig, thick))
    r = effective_conductivity(sigma, VOXEL, axis, rtol=1e-12, preconditioner=method)
    assert r["percolating"]
    assert r["sigma_eff_S_cm"] == pytest.approx(exact, rel=1e-6)
    assert r["current_imbalance_rel"] < 1e-6


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layer_axis,axis", [(0, 1), (0, 2), (1, 0), (2, 1)])
def test_parallel_layers_exact(layer_axis, axis, method):
    sig, thick = [2.0, 0.5, 3.0], [2, 3, 1]
    sigma = _layers(layer_axis, sig, thick, shape_other=(5, 4))
    exact = sum(s * t for s, t in zip(sig, thick)) / sum(thick)
    r = effective_conductivity(sigma, VOXEL, axis, rtol=1e-12, preconditioner=method)
    assert r["sigma_eff_S_cm"] == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_units_resistance_of_bar(method):
    # uniform bar: R = L / (σ A); σ_eff must come back as σ in S/cm whatever the voxel size
    sigma = np.full((10, 3, 4), 0.25)
    r = effective_conductivity(sigma, VOXEL, "z", rtol=1e-12, preconditioner=method)
    length_cm = 10 * VOXEL[0] * UM_TO_CM
    area_cm2 = 3 * VOXEL[1] * 4 * VOXEL[2] * UM_TO_CM ** 2
    assert r["current_out_A"] == pytest.approx(0.25 * area_cm2 / length_cm, rel=1e-9)
    assert r["sigma_eff_S_cm"] == pytest.approx(0.25, rel=1e-9)


def test_matrix_matches_face_conductances():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.1, 2.0, (4, 5, 6))
    gz, gy, gx = face_conductances(sigma, VOXEL)
    s = assemble(sigma, VOXEL, "y", potential_in=2.0, potential_out=-1.0)
    A, b, idx = s.A, s.b, s.index_map
    assert A.indices.dtype == np.int32 and A.shape == (sigma.size, sigma.size)
    assert abs(A - A.T).max() == 0
    # off-diagonals = −G of the shared face (harmonic mean × area / distance × 1e-4)
    a, c = sigma[1, 2, 3], sigma[2, 2, 3]
    g = 2 * a * c / (a + c) * VOXEL[1] * VOXEL[2] / VOXEL[0] * UM_TO_CM
    assert gz[1, 2, 3] == pytest.approx(g, rel=1e-14)
    assert A[idx[1, 2, 3], idx[2, 2, 3]] == pytest.approx(-gz[1, 2, 3], rel=1e-14)
    assert A[idx[1, 2, 3], idx[1, 3, 3]] == pytest.approx(-gy[1, 2, 3], rel=1e-14)
    assert A[idx[1, 2, 3], idx[1, 2, 4]] == pytest.approx(-gx[1, 2, 3], rel=1e-14)
    # row sums = Dirichlet conductances 2σA/d (half a voxel to the face) on the y faces only
    rows = np.asarray(A.sum(axis=1)).ravel()
    g_face = 2 * sigma[:, 0, :] * VOXEL[0] * VOXEL[2] / VOXEL[1] * UM_TO_CM
    np.testing.assert_allclose(rows[idx[:, 0, :]], g_face, rtol=1e-12)
    np.testing.assert_allclose(b[idx[:, 0, :]], 2.0 * g_face, rtol=1e-12)
    assert np.allclose(rows[idx[:, 1:-1, :]], 0, atol=1e-12 * g_face.max())


def test_non_percolating_returns_zero():
    sigma = np.ones((6, 4, 4))
    sigma[3] = 0.0  # an insulating plane cuts the z path
    r = effective_conductivity(sigma, VOXEL, "z")
    assert r["percolating"] is False and r["sigma_eff_S_cm"] == 0.0 and r["n_unknowns"] == 0
    r = effective_conductivity(np.zeros((3, 3, 3)), VOXEL, "x")
    assert r["percolating"] is False and r["sigma_eff_S_cm"] == 0.0
    # ... but along y and x it conducts with φ = 5/6 of the cross-section
    r = effective_conductivity(sigma, VOXEL, "y", rtol=1e-12)
    assert r["sigma_eff_S_cm"] == pytest.approx(5 / 6, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_isolated_cluster_removed_and_dead_end_changes_nothing(method):
    base = np.zeros((8, 7, 7))
    base[:, 1, 1] = 1.0                      # straight channel along z
    ref = effective_conductivity(base, VOXEL, "z", rtol=1e-12, preconditioner=method)
    sigma = base.copy()
    sigma[3, 1, 2:6] = 1.0                   # dead-end branch attached to the channel
    sigma[2:5, 4:6, 4:6] = 1.0               # isolated cluster, touches neither face... 
    sigma[0:3, 5, 1] = 1.0                   # ... and one touching only the inlet
    r = effective_conductivity(sigma, VOXEL, "z", rtol=1e-12, preconditioner=method)
    assert r["n_unknowns"] == 8 + 4          # channel + dead end; clusters dropped
    assert r["sigma_eff_S_cm"] == pytest.approx(ref["sigma_eff_S_cm"], rel=1e-9)
    assert ref["sigma_eff_S_cm"] == pytest.approx(1 / 49, rel=1e-9)
    net = percolating_network(sigma > 0, "z")
    assert net.sum() == 12 and not net[3, 4, 4] and not net[0, 5, 1]


def test_current_conservation_random():
    rng = np.random.default_rng(3)
    sigma = np.where(rng.random((20, 18, 16)) < 0.6, rng.uniform(0.5, 2.0, (20, 18, 16)), 0.0)
    r = effective_conductivity(sigma, VOXEL, "x", rtol=1e-10)
    assert r["percolating"]
    assert r["current_imbalance_rel"] < 1e-6


def test_flip_symmetry():
    rng = np.random.default_rng(4)
    sigma = np.where(rng.random((16, 14, 12)) < 0.55, rng.uniform(0.5, 2.0, (16, 14, 12)), 0.0)
    for axis in range(3):
        r1 = effective_conductivity(sigma, VOXEL, axis, rtol=1e-11)
        r2 = effective_conductivity(np.flip(sigma, axis), VOXEL, axis, rtol=1e-11)
        assert r1["sigma_eff_S_cm"] > 0
        assert r2["sigma_eff_S_cm"] == pytest.approx(r1["sigma_eff_S_cm"], rel=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_periodic_sides_connect_across_the_wall(method):
    # path (z, x): (0,0) -> (1,0) -x-> wraps to (1,3) -> (2,3): percolates only periodically
    sigma = np.zeros((3, 1, 4))
    sigma[0, 0, 0] = sigma[1, 0, 0] = sigma[1, 0, 3] = sigma[2, 0, 3] = 1.0
    assert effective_conductivity(sigma, VOXEL, "z", preconditioner=method)["percolating"] is False
    r = effective_conductivity(sigma, VOXEL, "z", periodic=True, rtol=1e-12,
                               preconditioner=method)
    dz, dy, dx = VOXEL
    gz, gx = dy * dx / dz * UM_TO_CM, dz * dy / dx * UM_TO_CM
    resistance = 2 * (1 / (2 * gz)) + 2 * (1 / gz) + 1 / gx
    assert r["current_out_A"] == pytest.approx(1 / resistance, rel=1e-9)
    # a uniform block is unchanged by periodic side walls
    r = effective_conductivity(np.full((4, 3, 5), 0.7), VOXEL, "y", periodic=True, rtol=1e-12,
                               preconditioner=method)
    assert r["sigma_eff_S_cm"] == pytest.approx(0.7, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_field_of_uniform_bar(method):
    sigma = np.full((6, 3, 4), 0.5)
    r = effective_conductivity(sigma, VOXEL, "z", rtol=1e-12, return_field=True,
                               preconditioner=method)
    phi, (jz, jy, jx) = r["potential_V"], r["current_density_A_cm2"]
    length_cm = 6 * VOXEL[0] * UM_TO_CM
    np.testing.assert_allclose(jz, 0.5 / length_cm, rtol=1e-8)      # j = σ ΔV / L
    assert np.abs(jy).max() < 1e-8 * jz.max() and np.abs(jx).max() < 1e-8 * jz.max()
    np.testing.assert_allclose(phi[:, 0, 0], 1 - (np.arange(6) + 0.5) / 6, atol=1e-10)


def _blobs(shape, porosity, seed):
    ps = pytest.importorskip("porespy")
    return np.asarray(ps.generators.blobs(shape=list(shape), porosity=porosity, blobiness=1.5,
                                          seed=seed), bool)


def test_default_tolerance_converged_on_random_48():
    # the 0.1 % rule: τ ∝ 1/σ_eff at the default tolerance within 0.1 % (in fact ≤ 1e-5) of a
    # solve converged to 1e-12, for the multigrid path (float64 and float32 conductances) and AMG
    im = _blobs((48, 48, 48), 0.4, 7)
    sigma = im.astype(float)
    ref = effective_conductivity(sigma, (1, 1, 1), "z", rtol=1e-12, preconditioner="sa")
    assert ref["percolating"] and ref["relative_residual"] < 1e-11
    for kw in ({}, {"dtype": np.float32}, {"preconditioner": "sa"}, {"preconditioner": "rs"}):
        r = effective_conductivity(sigma, (1, 1, 1), "z", **kw)
        assert r["converged"] and r["relative_residual"] <= 1e-7
        assert abs(r["sigma_eff_S_cm"] / ref["sigma_eff_S_cm"] - 1) < 1e-5, kw
    # the multigrid preconditioner does its job: few CG iterations (plain CG needs hundreds)
    assert effective_conductivity(sigma, (1, 1, 1), "z")["iterations"] <= 20


def test_float32_csr_has_no_leak():
    # a float32 CSR diagonal rounded on its own leaks ~1e-7·G per row to ground; the solver
    # rebuilds it from the rounded off-diagonals and the exact row sums: float64 agreement
    im = _blobs((40, 40, 40), 0.45, 3)
    ref = effective_conductivity(im.astype(float), (1, 1, 1), "x", rtol=1e-12,
                                 preconditioner="sa")
    r32 = effective_conductivity(im.astype(float), (1, 1, 1), "x", rtol=1e-10,
                                 preconditioner="sa", dtype=np.float32)
    assert r32["sigma_eff_S_cm"] == pytest.approx(ref["sigma_eff_S_cm"], rel=1e-6)


def _random_field(shape, seed, fraction=0.6):
    rng = np.random.default_rng(seed)
    return np.where(rng.random(shape) < fraction, rng.uniform(0.2, 3.0, shape), 0.0)


@pytest.mark.parametrize("shape,periodic,dtype", [
    ((19, 22, 17), False, np.float64),
    ((19, 22, 17), False, np.float32),
    ((21, 15, 13), True, np.float64),      # odd periodic sides: wrap faces on every level
    ((12, 40, 9), True, np.float32),
])
def test_multigrid_matches_csr_amg(shape, periodic, dtype):
    # random conductivities (0.2–3 S/cm) on 60 % of anisotropic voxels: plenty of isolated and
    # dead-end clusters; σ_eff of the matrix-free multigrid CG = assembled CSR + AMG-CG
    sigma = _random_field(shape, seed=sum(shape))
    for axis in range(3):
        ref = effective_conductivity(sigma, VOXEL, axis, rtol=1e-12, preconditioner="sa",
                                     periodic=periodic)
        r = effective_conductivity(sigma, VOXEL, axis, rtol=1e-11, periodic=periodic,
                                   dtype=dtype)
        assert r["percolating"] and ref["n_unknowns"] == r["n_unknowns"]
        assert 0 < r["network_fraction"] < 1      # some conducting voxels are left out
        assert r["sigma_eff_S_cm"] == pytest.approx(ref["sigma_eff_S_cm"], rel=1e-6)
        assert r["current_imbalance_rel"] < 1e-6


def test_multigrid_field_matches_csr():
    sigma = _random_field((14, 13, 12), seed=5)
    a = effective_conductivity(sigma, VOXEL, "y", rtol=1e-12, return_field=True)
    b = effective_conductivity(sigma, VOXEL, "y", rtol=1e-12, return_field=True,
                               preconditioner="sa")
    np.testing.assert_array_equal(np.isnan(a["potential_V"]), np.isnan(b["potential_V"]))
    np.testing.assert_allclose(a["potential_V"], b["potential_V"], atol=1e-7)
    for ja, jb in zip(a["current_density_A_cm2"], b["current_density_A_cm2"]):
        np.testing.assert_allclose(ja, jb, atol=1e-6 * np.abs(jb).max())


@pytest.mark.parametrize("periodic", [False, True])
def test_vcycle_is_symmetric_positive_definite(periodic):
    # CG needs an SPD preconditioner: <M u, v> = <u, M v>, <M u, u> > 0 (the backward sweeps are
    # the exact adjoint of the forward ones, also across odd periodic wraps)
    sigma = _random_field((23, 19, 21), seed=11, fraction=0.7)
    net = percolating_network(sigma > 0, 0, periodic=periodic)
    mg = grid_operator(sigma, VOXEL, net, periodic=periodic)
    assert len(mg.levels) >= 2
    rng = np.random.default_rng(0)
    u, v = (np.where(net, rng.standard_normal(sigma.shape), 0.0) for _ in range(2))
    mu, mv = (np.zeros(sigma.shape, np.float32) for _ in range(2))
    mg.vcycle(u, mu)
    mg.vcycle(v, mv)
    lhs, rhs = float(np.sum(mu * v)), float(np.sum(u * mv))
    assert lhs == pytest.approx(rhs, rel=1e-5)
    assert float(np.sum(mu * u)) > 0 and float(np.sum(mv * v)) > 0
    assert np.all(mu[~net] == 0)


def test_effective_conductivities_all_axes():
    sigma = _random_field((16, 14, 12), seed=9)
    both = effective_conductivities(sigma, VOXEL, ("z", "x"), rtol=1e-11)
    assert set(both) == {"z", "x"}
    for ax, r in both.items():
        one = effective_conductivity(sigma, VOXEL, ax, rtol=1e-11)
        assert r["sigma_eff_S_cm"] == pytest.approx(one["sigma_eff_S_cm"], rel=1e-12)


def test_solve_plain_cg_and_info():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 2, (6, 6, 6))
    s = assemble(sigma, VOXEL, 0)
    x1, info1 = solve(s.A, s.b, rtol=1e-12, preconditioner=None)
    x2, info2 = solve(s.A, s.b, rtol=1e-12, preconditioner="sa")
    assert info1["converged"] and info2["converged"]
    assert info2["iterations"] < info1["iterations"]
    np.testing.assert_allclose(x1, x2, rtol=1e-9)


def test_bad_input():
    with pytest.raises(InputError):
        effective_conductivity(-np.ones((3, 3, 3)), VOXEL, "z")
    with pytest.raises(InputError):
        effective_conductivity(np.ones((3, 3)), VOXEL, "z")
    with pytest.raises(InputError):
        effective_conductivity(np.ones((3, 3, 3)), (1, 0, 1), "z")
    with pytest.raises(InputError):
        effective_conductivity(np.ones((3, 3, 3)), VOXEL, "w")


def test_cluster_deflation_of_floating_inclusions():
    # conducting spheres (0.1 S/cm) in a 1e-9 S/cm matrix; a current into a sphere cluster that
    # touches the face but not the counter electrode (an SSRM probe on isolated CAM). Each
    # floating cluster is nearly an equipotential at a level the V-cycle barely moves; deflating
    # them (one constant vector each) gives the direct solution in far fewer CG iterations
    from scipy import ndimage
    from scipy.sparse.linalg import spsolve

    from voxelyte.conduction import ClusterDeflation, gmg_solve
    n = 24
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:n, :n, :n]
    spheres = np.zeros((n, n, n), bool)
    for _ in range(40):
        c, r = rng.uniform(0, n, 3), rng.uniform(1.5, 3.5)
        spheres |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
    sigma = np.where(spheres, 0.1, 1e-9)
    clusters, _ = ndimage.label(spheres)
    floating = np.where(np.isin(clusters, clusters[-1]), 0, clusters)
    voxel = (0.1, 0.1, 0.1)
    net = percolating_network(sigma > 0, 0)
    no_inlet = np.zeros((n, n), bool)
    mg = grid_operator(sigma, voxel, net, inlet_mask=no_inlet, dtype=np.float32)
    system = assemble(sigma, voxel, 0, inlet_mask=no_inlet, network=net)
    current = np.zeros((n, n))
    current[tuple(np.argwhere(floating[0] > 0)[0])] = 1.0      # 1 A into a floating cluster
    b = np.zeros(system.A.shape[0])
    b[system.index_map[0][current > 0]] = 1.0
    ref = np.zeros((n, n, n))
    ref[system.index_map >= 0] = spsolve(system.A.tocsc(), b)
    deflation = ClusterDeflation(mg, floating)
    assert deflation.k == len(np.unique(floating)) - 1 >= 3
    runs = {}
    for name, d in (("plain", None), ("deflated", deflation)):
        x = np.zeros((n, n, n))
        runs[name] = gmg_solve(mg, 0.0, 0.0, x, rtol=1e-10, maxiter=2000, current_in=current,
                               deflation=d)
        assert runs[name]["converged"]
        runs[name]["error"] = np.abs(x - ref).max() / np.abs(ref).max()
    assert runs["deflated"]["error"] < 2e-6
    assert runs["deflated"]["iterations"] <= runs["plain"]["iterations"] / 3
    with pytest.raises(ValueError, match="shape"):
        ClusterDeflation(mg, floating[:-1])


@pytest.mark.parametrize("periodic", [False, True])
def test_cluster_deflation_coarse_step_is_E_inverse_Zt_A(periodic):
    # μ = (ZᵀAZ)⁻¹ ZᵀA z from the cluster-boundary faces equals the dense product with the
    # operator's own matvec (wrap faces included); the deflated solve equals the plain one
    from scipy import ndimage

    from voxelyte.conduction import ClusterDeflation, gmg_solve
    rng = np.random.default_rng(1)
    n = 14
    carrier = rng.random((n, n, n)) < 0.35
    sigma = np.where(carrier, 0.1, 1e-6)
    net = percolating_network(sigma > 0, 0, periodic=periodic)
    mg = grid_operator(sigma, VOXEL, net, periodic=periodic, dtype=np.float64)
    labels, k = ndimage.label(carrier)
    deflation = ClusterDeflation(mg, labels)
    assert deflation.k == k
    Z = np.stack([(labels == i).ravel().astype(float) for i in range(1, k + 1)], 1)
    AZ = np.empty_like(Z)
    y = np.empty((n, n, n))
    for i in range(k):
        mg.matvec(np.ascontiguousarray(Z[:, i]).reshape(n, n, n), y)
        AZ[:, i] = y.ravel()
    z = rng.standard_normal((n, n, n))
    expected = np.linalg.solve(Z.T @ AZ, AZ.T @ z.ravel())
    np.testing.assert_allclose(deflation.coarse_of_az(z)[1:], expected, rtol=1e-9,
                               atol=1e-12 * np.abs(expected).max())
    x_plain, x_deflated = np.zeros((n, n, n)), np.zeros((n, n, n))
    gmg_solve(mg, 1.0, 0.0, x_plain, rtol=1e-11)
    info = gmg_solve(mg, 1.0, 0.0, x_deflated, rtol=1e-11, deflation=deflation)
    assert info["converged"]
    np.testing.assert_allclose(x_deflated, x_plain, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_problem_api_is_effective_conductivity(method):
    # ConductionProblem(...).solve() is what effective_conductivity runs: same numbers
    from voxelyte.conduction import ConductionProblem
    sigma = _random_field((12, 11, 10), seed=2)
    problem = ConductionProblem(sigma, VOXEL, "x", preconditioner=method)
    r = problem.solve(rtol=1e-10)
    ref = effective_conductivity(sigma, VOXEL, "x", rtol=1e-10, preconditioner=method)
    for key in ("sigma_eff_S_cm", "n_unknowns", "iterations", "relative_residual",
                "current_in_A", "current_out_A", "network_fraction"):
        if method == "gmg":
            assert r[key] == ref[key], key
        else:
            assert r[key] == pytest.approx(ref[key], rel=1e-9), key
    assert problem.n_unknowns == r["n_unknowns"] and r["axis"] == "x"
