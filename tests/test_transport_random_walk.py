"""Random-walk tortuosity: analytic cases (free space, channels, layers, dead-end comb) and the
flux-based τ of the same voxel network on a random structure."""
import math

import numba
import numpy as np
import pytest

from voxelyte.random_walk import random_walk_tortuosity
from voxelyte.transport import tortuosity

VOXEL = (0.2, 0.1, 0.3)   # anisotropic (dz, dy, dx) µm


def _within(r, axis, expected, rel):
    """τ within ``rel`` of ``expected`` and within 4 standard errors of it."""
    tau, err = r[axis]["tortuosity_factor"], r[axis]["tortuosity_factor_stderr"]
    assert tau == pytest.approx(expected, rel=rel), (axis, tau, err)
    assert abs(tau - expected) < 4 * err, (axis, tau, err)


def test_free_space_is_one_on_every_axis_with_anisotropic_voxels():
    # a small box: walkers cross the mirror faces thousands of times
    r = random_walk_tortuosity(np.ones((6, 9, 5), np.uint8), 1, VOXEL, n_walkers=4000,
                               n_steps=4000, seed=3)
    for axis in "zyx":
        _within(r, axis, 1.0, 0.04)
        assert r[axis]["fit_r2"] > 0.999
    assert r["volume_fraction"] == 1.0


@pytest.mark.parametrize("axis", ["z", "y", "x"])
def test_straight_channel_is_one_along_and_closed_across(axis):
    labels = np.zeros((10, 12, 11), np.uint8)
    a = "zyx".index(axis)
    sl = [slice(3, 6), slice(2, 5), slice(4, 7)]
    sl[a] = slice(None)
    labels[tuple(sl)] = 1
    r = random_walk_tortuosity(labels, 1, VOXEL, n_walkers=3000, n_steps=4000, seed=1)
    _within(r, axis, 1.0, 0.05)
    for other in "zyx".replace(axis, ""):
        # confined across the channel: the MSD saturates, τ is huge or infinite
        assert r[other]["tortuosity_factor"] > 50


def test_layers_free_along_confined_across():
    labels = np.zeros((14, 10, 12), np.uint8)
    for z0, thick in ((0, 1), (3, 2), (7, 3)):      # phase layers of 1, 2, 3 planes
        labels[z0:z0 + thick] = 1
    r = random_walk_tortuosity(labels, 1, VOXEL, n_walkers=3000, n_steps=4000, seed=2)
    _within(r, "y", 1.0, 0.05)
    _within(r, "x", 1.0, 0.05)
    assert r["z"]["tortuosity_factor"] > 50


def _comb(nx=20, ny=6, teeth_z=8):
    """Backbone plane z = 0 along (y, x); dead-end teeth: (z, y) planes at odd x = 1…nx-3 reaching
    up from the backbone; none touches the x faces."""
    labels = np.zeros((teeth_z + 1, ny, nx), np.uint8)
    labels[0] = 1
    labels[:, :, 1:nx - 2:2] = 1
    return labels


def test_dead_end_comb_exact_along_the_backbone():
    # Along x only the backbone conducts; the teeth are dead ends that hold walkers without
    # moving them along x: σ_eff/σ_bulk = φ_backbone exactly, τ = φ / φ_backbone (flux and walk).
    labels = _comb()
    phi = labels.mean()
    phi_backbone = labels[0].size / labels.size
    exact = phi / phi_backbone
    assert exact > 3
    flux = tortuosity(labels, 1, VOXEL, "x", rtol=1e-12)
    assert flux["tortuosity_factor"] == pytest.approx(exact, rel=1e-8)
    r = random_walk_tortuosity(labels, 1, VOXEL, n_walkers=3000, n_steps=20000, seed=4)
    _within(r, "x", exact, 0.05)
    _within(r, "y", 1.0, 0.05)     # along y backbone and teeth are all straight


def test_agrees_with_flux_tau_on_a_random_structure():
    ps = pytest.importorskip("porespy")
    im = np.asarray(ps.generators.blobs(shape=[40, 40, 40], porosity=0.6, blobiness=1.5, seed=7),
                    np.uint8)
    r = random_walk_tortuosity(im, 1, (1, 1, 1), n_walkers=2000, n_steps=20000, seed=5)
    for axis in "zyx":
        flux = tortuosity(im, 1, (1, 1, 1), axis)["tortuosity_factor"]
        assert 1.5 < flux < 3
        # finite walks, mirrored instead of equipotential faces: within 8 %
        assert r[axis]["tortuosity_factor"] == pytest.approx(flux, rel=0.08), axis


def test_seeded_and_independent_of_threads():
    rng = np.random.default_rng(0)
    labels = (rng.random((12, 12, 12)) < 0.7).astype(np.uint8)
    kw = dict(n_walkers=500, n_steps=2000, seed=11)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = random_walk_tortuosity(labels, 1, VOXEL, **kw)
    finally:
        numba.set_num_threads(threads)
    again = random_walk_tortuosity(labels, 1, VOXEL, **kw)
    other = random_walk_tortuosity(labels, 1, VOXEL, **dict(kw, seed=12))
    for axis in "zyx":
        assert again[axis] == one[axis]
        assert other[axis]["tortuosity_factor"] != one[axis]["tortuosity_factor"]


def test_absent_phase_and_bad_settings():
    r = random_walk_tortuosity(np.zeros((4, 4, 4), np.uint8), 1, VOXEL)
    assert math.isinf(r["z"]["tortuosity_factor"]) and r["volume_fraction"] == 0.0
    from voxelyte.errors import InputError
    with pytest.raises(InputError, match="n_walkers"):
        random_walk_tortuosity(np.ones((4, 4, 4), np.uint8), 1, VOXEL, n_walkers=0)
