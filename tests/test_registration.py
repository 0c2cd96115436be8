"""Tests for voxelyte.registration on rendered phantoms (noise, shading, curtains, brightness
drift present) against the ground-truth drift of voxelyte.phantom (DRIFT_CONVENTION)."""
import functools

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from voxelyte import phantom, registration as reg
from voxelyte.errors import InputError

VS = 0.1
# A field representative of real PFIB-SEM images: 1.2 µm CAM at 0.1 µm voxels in a 320 px
# (32 µm) field, ~27 particle diameters across (hundreds of particle sections per slice).
# Neighbour-slice registration of a real 3D structure random-walks by the apparent in-plane
# motion of inclined interfaces; per pair sigma ~ 0.5 px * d50 / field (measured 0.047 / 0.020 /
# 0.0095 px for 160 / 320 / 640 px fields), so small fields of large particles fail the
# accuracy however the correlation is done (see the registration module docstring).
RUN = {"shape_zyx": [40, 320, 320], "voxel_size_um": VS, "cam_d50_um": 1.2,
       "se_d50_um": 1.44, "render": {"drift_total_px": [4.0, -3.0]}}
SEEDS = (1, 2, 3)


def to_array(data):
    nz, ny, nx = data.shape[1:]
    return xr.DataArray(data, dims=("channel", "z", "y", "x"),
                        coords={"channel": ["BSE", "SE"], "z": (np.arange(nz) + 0.5) * VS,
                                "y": (np.arange(ny) + 0.5) * VS, "x": (np.arange(nx) + 0.5) * VS},
                        attrs={"voxel_size_um": [VS, VS, VS]})


@functools.lru_cache(maxsize=None)
def render_run(seed):
    run = phantom.merge_params(RUN, {"seed": seed})
    structure = phantom.generate_structure(run)
    pages = [np.stack([im["BSE"], im["SE"]]) for _, im in phantom.render_slices(structure, run)]
    return to_array(np.stack(pages, axis=1)), phantom.true_drift_px(run)


@pytest.fixture(scope="module")
def rendered():
    return render_run(SEEDS[0])


@pytest.fixture(scope="module")
def estimated(rendered):
    stack, _ = rendered
    return reg.estimate_drift(stack.chunk({"z": 7}))


@pytest.mark.parametrize("seed", SEEDS)
def test_drift_matches_ground_truth(seed):
    """Acceptance: RMS error <= 0.3 px over the stack, no slice worse than 1 px; >= 3 px total
    drift with jitter, shot + read noise, curtains, shading and brightness drift present."""
    stack, truth = render_run(seed)
    assert np.hypot(*truth[-1]) >= 3.0
    estimated = reg.estimate_drift(stack.chunk({"z": 7}))
    error = estimated[["dy_px", "dx_px"]].to_numpy() - truth
    assert np.sqrt(np.mean(error ** 2)) <= 0.3
    assert np.abs(error).max() <= 1.0
    assert list(estimated.columns) == list(reg.DRIFT_COLUMNS)
    assert np.allclose(estimated["dy_um"], estimated["dy_px"] * VS)
    assert estimated["valid"].all() and (estimated["quality"] > 0.3).all()


def test_slow_smooth_drift_is_not_quantised():
    """Identical content drifting 0.008 / -0.006 px per slice, below the 1 / upsample_factor
    grid of the upsampled DFT: rounding every pair to the grid would be off by ~1 px after 120
    slices; the parabolic peak refinement keeps the sum unbiased."""
    from scipy import ndimage
    rng = np.random.default_rng(0)
    base = ndimage.gaussian_filter(rng.random((96, 96)), 3.0)
    nz = 120
    truth = np.stack([np.arange(nz) * 0.008, np.arange(nz) * -0.006], axis=1)
    data = np.stack([ndimage.shift(base, t, order=3, mode="nearest") for t in truth])
    stack = xr.DataArray(data, dims=("z", "y", "x"), attrs={"voxel_size_um": [VS] * 3})
    # default grid 1/100 px; a coarse 1/20 px grid keeps a small parabola bias (unrefined:
    # ~1 px on either grid)
    for upsample_factor, tolerance in ((reg.REGISTER_DEFAULTS["upsample_factor"], 0.05),
                                       (20, 0.2)):
        table = reg.estimate_drift(stack, upsample_factor=upsample_factor)
        error = table[["dy_px", "dx_px"]].to_numpy() - truth
        assert np.abs(error).max() < tolerance, (upsample_factor, np.abs(error).max())


def test_pair_estimator_is_subpixel_on_identical_content():
    """Two renderings of the same slice content with known shifts: no structure change."""
    rng = np.random.default_rng(0)
    from scipy import ndimage
    base = ndimage.gaussian_filter(rng.random((128, 128)), 2.0)
    for shift in [(0.3, -1.7), (2.45, 0.6), (-3.1, 2.2)]:
        moved = ndimage.shift(base, shift, order=3, mode="nearest")
        noisy = [im + rng.normal(0, 0.01, im.shape) for im in (base, moved)]
        a, b = (reg._prepare(im[None], 0.5)[0] for im in noisy)
        m, q = reg._correlate(a, b, 20)
        assert np.allclose(m, shift, atol=0.06) and q > 0.5


def test_chunking_does_not_change_the_estimate(rendered, estimated):
    stack, _ = rendered
    other = reg.estimate_drift(stack.chunk({"z": 40}))
    np.testing.assert_allclose(other[["dy_px", "dx_px"]], estimated[["dy_px", "dx_px"]],
                               atol=1e-9)


def test_same_shift_applied_to_every_channel(rendered, estimated):
    stack, _ = rendered
    twin = stack.copy(data=np.stack([stack.values[0], stack.values[0]]))  # SE := BSE
    out = reg.apply_drift(twin, estimated).values
    np.testing.assert_array_equal(out[0], out[1])
    assert out.dtype == np.uint16


def test_apply_drift_recovers_the_steady_rendering():
    """Quiet rendering: registering the drifting stack gives the drift-free stack."""
    quiet = {"photons_per_unit": 0, "read_noise": 0.0, "shading_amplitude": 0.0,
             "curtain_amplitude": {"BSE": 0.0, "SE": 0.0}, "brightness_drift": 0.0}
    run = phantom.merge_params(RUN, {"shape_zyx": [6, 64, 64], "seed": 3, "render": quiet})
    structure = phantom.generate_structure(run)
    steady_run = phantom.merge_params(run, {"render": {"drift_total_px": [0.0, 0.0],
                                                      "drift_jitter_px": 0.0}})
    pages = lambda r: np.stack([np.stack([im["BSE"], im["SE"]])
                                for _, im in phantom.render_slices(structure, r)], axis=1)
    drifting, steady = to_array(pages(run)), to_array(pages(steady_run))
    truth = phantom.true_drift_px(run)
    table = pd.DataFrame({"dy_px": truth[:, 0], "dx_px": truth[:, 1]})
    out = reg.apply_drift(drifting, table, crop_border=6)
    ref = steady.isel(y=slice(6, -6), x=slice(6, -6))
    diff = np.abs(out.values.astype(float) - ref.values.astype(float))
    assert np.median(diff) / ref.values.mean() < 0.01
    assert out.sizes["y"] == 52 and np.allclose(out.y.values, ref.y.values)


def test_crop_border_modes(estimated):
    auto = reg.crop_bounds_px(estimated, "auto")
    dy, dx = estimated["dy_px"], estimated["dx_px"]
    assert auto["y"] == (int(np.ceil(max(0, -dy.min()) - 1e-6)), int(np.ceil(dy.max() - 1e-6)))
    assert auto["x"][0] == int(np.ceil(-dx.min() - 1e-6))
    assert reg.crop_bounds_px(estimated, "none") == {"y": (0, 0), "x": (0, 0)}
    assert reg.crop_bounds_px(estimated, 3) == {"y": (3, 3), "x": (3, 3)}
    with pytest.raises(InputError):
        reg.crop_bounds_px(estimated, "sometimes")


def test_blank_and_nan_slices_are_interpolated(rendered):
    stack, truth = rendered
    data = stack.values[:, :16].astype(np.float32)
    data[:, 5] = 0.0                 # blank slice
    data[:, 9] = np.nan              # all NaN
    data[:, 12, :20, :20] = np.nan   # a few NaNs: filled for the estimate
    table = reg.estimate_drift(to_array(data))
    assert not table["valid"][5] and not table["valid"][9] and table["valid"][12]
    assert table["quality"][5] == 0 and "interpolated" in table["note"][5]
    error = table[["dy_px", "dx_px"]].to_numpy() - truth[:16]
    assert np.abs(error).max() < 1.0
    out = reg.apply_drift(to_array(data), table).values
    assert np.isnan(out[:, 9]).all() and np.isfinite(out[:, 5]).all()


def test_noise_slice_is_not_trusted(rendered):
    stack, truth = rendered
    data = stack.values[:, :12].copy()
    data[:, 6] = np.random.default_rng(1).integers(1000, 40000, data.shape[2:])
    table = reg.estimate_drift(to_array(data))
    assert not table["valid"][6] and table["quality"][6] == 0
    assert "bridged" in table["note"][7]
    error = table[["dy_px", "dx_px"]].to_numpy() - truth[:12]
    assert np.abs(error).max() < 1.0


def test_bad_inputs(rendered):
    stack, _ = rendered
    with pytest.raises(InputError, match="at least two slices"):
        reg.estimate_drift(stack.isel(z=slice(0, 1)))
    with pytest.raises(InputError, match="method not available"):
        reg.estimate_drift(stack, method="affine")
    with pytest.raises(InputError, match="reference channel"):
        reg.estimate_drift(stack, reference_channel="EDX")
    with pytest.raises(InputError, match="every slice"):
        reg.estimate_drift(stack.isel(z=slice(0, 3)) * 0)


def test_register_stage_and_qc_figure(rendered, tmp_path):
    stack, truth = rendered
    raw = stack.isel(z=slice(0, 10)).chunk({"z": 4}).to_dataset(name="raw")
    ds, drift = reg.register(raw, regularise="median", regularise_window=3)
    assert ds["registered"].dims == ("channel", "z", "y", "x")
    assert ds["registered"].attrs["registration"]["crop_px"]["y"][1] >= 1
    reg.write_drift_table(drift, tmp_path / "drift.csv")
    assert len(pd.read_csv(tmp_path / "drift.csv")) == 10
    reg.drift_qc_figure(raw, ds, drift, tmp_path / "qc.png")
    assert (tmp_path / "qc.png").stat().st_size > 1000
    with pytest.raises(InputError, match="unknown register parameters"):
        reg.register(raw, crop="auto")
