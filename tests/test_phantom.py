"""Tests for voxelyte.phantom: structure statistics against the requested parameters, the
Minnmann et al. 2024 trends (larger SE -> more porosity, longer CAM chords, pores between CAM),
and the rendered PFIB-SEM artefacts against their ground truth."""
import json
from itertools import islice

import numpy as np
import pytest
import tifffile
import xarray as xr
from scipy import ndimage
from skimage.filters import window
from skimage.registration import phase_cross_correlation

from voxelyte import phantom
from voxelyte.contract import volume_fractions
from voxelyte.errors import InputError

PORE, CAM, SE = (phantom.PHASES[name] for name in ("pore", "CAM", "SE"))

# 0.2-0.25 µm voxels keep 2.5 µm CAM particles ~10-12 px wide in small test volumes.
SMALL = {"shape_zyx": [48, 56, 56], "voxel_size_um": 0.2}

QUIET_RENDER = {  # noise- and artefact-free rendering, only structure contrast, blur and drift
    "photons_per_unit": 0, "read_noise": 0.0, "shading_amplitude": 0.0,
    "curtain_amplitude": {"BSE": 0.0, "SE": 0.0}, "brightness_drift": 0.0,
}


def params(**overrides):
    return phantom.merge_params(SMALL, overrides)


def render_stack(structure, render_params):
    stacks = {ch: [] for ch in phantom.CHANNELS}
    for z, images in phantom.render_slices(structure, render_params):
        assert z == len(stacks["BSE"])
        for ch in phantom.CHANNELS:
            stacks[ch].append(images[ch])
    return {ch: np.stack(pages) for ch, pages in stacks.items()}


def mean_chord_length_px(mask):
    """Mean length of runs of True along x, runs touching the x boundaries discarded."""
    rows = np.pad(mask.reshape(-1, mask.shape[-1]).astype(np.int8), ((0, 0), (1, 1)))
    steps = np.diff(rows, axis=1)
    _, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)  # row-major order: the k-th end closes the k-th start
    inner = (starts > 0) & (ends < mask.shape[-1])
    return float((ends - starts)[inner].mean())


@pytest.fixture(scope="module")
def small_structure():
    return phantom.generate_structure(params(seed=3))


@pytest.fixture(scope="module")
def porous_structure():
    """Explicit 25 % porosity: pores wide enough to have interiors."""
    return phantom.generate_structure(params(seed=3, porosity=0.25))


def test_defaults_and_params_resolution():
    resolved = phantom.resolve_params({"render": {"blur_sigma_px": 1.0}})
    assert resolved["render"]["blur_sigma_px"] == 1.0
    assert resolved["render"]["bse_levels"] == phantom.DEFAULTS["render"]["bse_levels"]
    assert resolved["cam_volume_fraction"] == phantom.DEFAULTS["cam_volume_fraction"]
    with pytest.raises(InputError, match="porosity"):
        phantom.resolve_params({"cam_volume_fraction": 0.6, "porosity": 0.45})
    with pytest.raises(InputError, match="curtain_axis"):
        phantom.resolve_params({"render": {"curtain_axis": "z"}})


def test_same_seed_same_output_other_seed_differs(small_structure):
    again = phantom.generate_structure(params(seed=3))
    assert np.array_equal(small_structure.labels, again.labels)
    assert np.array_equal(small_structure.cam_particle_id, again.cam_particle_id)
    first = [images for _, images in islice(phantom.render_slices(small_structure,
                                                                  params(seed=3)), 3)]
    second = [images for _, images in islice(phantom.render_slices(again, params(seed=3)), 3)]
    for a, b in zip(first, second):
        for ch in phantom.CHANNELS:
            assert a[ch].dtype == np.uint16
            assert a[ch].tobytes() == b[ch].tobytes()
    other = phantom.generate_structure(params(seed=4))
    assert not np.array_equal(small_structure.labels, other.labels)


def test_structure_layout(small_structure):
    s = small_structure
    nz, ny, nx = SMALL["shape_zyx"]
    m = s.margin_px
    drift_px = np.abs(phantom.true_drift_px(s.params)).max()
    assert m >= np.ceil(drift_px) + 3
    assert s.labels.shape == (nz, ny + 2 * m, nx + 2 * m) and s.labels.dtype == np.uint8
    assert s.cam_particle_id.dtype == np.uint32 and s.cam_particle_id.shape == s.labels.shape
    assert set(np.unique(s.labels)) <= {PORE, CAM, SE}
    # particle ids exactly cover the CAM phase
    assert np.array_equal(s.cam_particle_id > 0, s.labels == CAM)
    assert s.central(s.labels).shape == (nz, ny, nx)


@pytest.mark.parametrize("cam_fraction", [0.35, 0.5])
def test_cam_fraction_hits_request(cam_fraction):
    s = phantom.generate_structure(params(seed=1, cam_volume_fraction=cam_fraction))
    achieved = np.mean(s.central(s.labels) == CAM)
    assert abs(achieved - cam_fraction) <= 0.02
    assert s.info["volume_fraction"]["CAM"] == pytest.approx(achieved)


def test_explicit_porosity_hits_request():
    s = phantom.generate_structure(params(seed=2, cam_volume_fraction=0.45, porosity=0.12))
    fractions = volume_fractions(s.central(s.labels), phantom.PHASES)
    assert abs(fractions["pore"] - 0.12) <= 0.02
    assert abs(fractions["CAM"] - 0.45) <= 0.02
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_larger_se_particles_give_more_porosity_and_longer_cam_chords():
    """Minnmann et al. 2024 (BM10 vs BM03): larger SE -> more pores, more clustered CAM."""
    base = {"shape_zyx": [64, 64, 64], "voxel_size_um": 0.25, "cam_volume_fraction": 0.47}
    porosity, chords_um = {}, {}
    for se_d50_um in (3.7, 2.45):
        pores, chords = [], []
        for seed in (0, 1):  # two realisations average out particle-configuration noise
            s = phantom.generate_structure({**base, "seed": seed, "se_d50_um": se_d50_um})
            labels = s.central(s.labels)
            pores.append(np.mean(labels == PORE))
            chords.append(mean_chord_length_px(labels == CAM) * base["voxel_size_um"])
        porosity[se_d50_um], chords_um[se_d50_um] = np.mean(pores), np.mean(chords)
    assert 0.01 < porosity[2.45] < porosity[3.7] < 0.2
    assert chords_um[3.7] > chords_um[2.45]
    assert (phantom.cam_clustering_probability({"se_d50_um": 3.7})
            > phantom.cam_clustering_probability({"se_d50_um": 2.45}))


def test_pores_sit_between_cam_particles(small_structure):
    labels = small_structure.central(small_structure.labels)
    distance_to_cam = ndimage.distance_transform_edt(labels != CAM)
    assert np.count_nonzero(labels == PORE) > 100
    assert distance_to_cam[labels == PORE].mean() < distance_to_cam[labels == SE].mean()


def test_true_drift_definition():
    drift = phantom.true_drift_px({})
    assert drift.shape == (phantom.DEFAULTS["shape_zyx"][0], 2) and drift.dtype == np.float64
    assert np.array_equal(drift[0], [0.0, 0.0])
    assert np.hypot(*drift[-1]) >= 3.0
    assert np.allclose(drift, phantom.true_drift_px({}))  # seeded


def test_rendered_drift_matches_ground_truth():
    """raw[z](y, x) = ideal[z](y - dy, x - dx): registering raw onto the drift-free rendering
    gives the shift -d_z. Plain cross-correlation (normalization=None) of Hann-windowed images:
    phase normalisation over-weights the highest frequencies, where the cubic-spline shift is
    not a pure phase ramp, and biases the estimate by ~0.1 px."""
    run = phantom.merge_params(params(seed=7, shape_zyx=[16, 128, 128]), {"render": QUIET_RENDER})
    structure = phantom.generate_structure(run)
    steady = render_stack(structure, phantom.merge_params(
        run, {"render": {"drift_total_px": [0.0, 0.0], "drift_jitter_px": 0.0}}))["BSE"]
    drifting = render_stack(structure, run)["BSE"]
    truth = phantom.true_drift_px(run)
    hann = window("hann", steady.shape[1:])
    for z in range(truth.shape[0]):
        reference = (steady[z] - steady[z].mean()) * hann
        moving = (drifting[z] - drifting[z].mean()) * hann
        shift, _, _ = phase_cross_correlation(reference, moving, upsample_factor=20,
                                              normalization=None)
        assert np.allclose(-shift, truth[z], atol=0.1), (z, shift, truth[z])


def _intensity(counts, render):
    return (counts.astype(float) - render["counts_offset"]) / render["counts_scale"]


def test_bse_shine_through_follows_attenuation_law(porous_structure):
    """Noise- and blur-free BSE of a pore = pore + (behind - pore) exp(-k vz / L), with the
    first material voxel k slices deeper (found here by a direct search over k)."""
    run = phantom.merge_params(porous_structure.params, {"render": {
        **QUIET_RENDER, "blur_sigma_px": 0.0, "drift_total_px": [0.0, 0.0],
        "drift_jitter_px": 0.0}})
    render = run["render"]
    bse = _intensity(render_stack(porous_structure, run)["BSE"], render)
    labels = porous_structure.central(porous_structure.labels)
    levels = np.array([render["bse_levels"][name] for name in ("pore", "CAM", "SE")])
    pore = labels == PORE
    expected = levels[labels]
    found = np.zeros_like(pore)
    for k in range(1, labels.shape[0]):
        deeper = labels[k:]
        take = pore[:-k] & ~found[:-k] & (deeper != PORE)
        seen = levels[PORE] + (levels[deeper] - levels[PORE]) * np.exp(
            -k * run["voxel_size_um"] / render["shine_through_depth_um"])
        expected[:-k][take] = seen[take]
        found[:-k] |= take
    assert np.count_nonzero(found) > 1000
    assert np.allclose(bse, expected, atol=1e-3)


def test_shine_through_and_pore_edges_in_default_rendering(porous_structure):
    """With all artefacts on, pores in front of CAM read brighter in BSE than pores in front
    of SE, and in the SE channel pore rims are brighter than pore interiors."""
    run = phantom.merge_params(porous_structure.params,
                         {"render": {"drift_total_px": [0.0, 0.0], "drift_jitter_px": 0.0}})
    images = render_stack(porous_structure, run)
    labels = porous_structure.central(porous_structure.labels)
    pore_front, behind = labels[:-1] == PORE, labels[1:]
    bse = images["BSE"][:-1].astype(float)
    assert bse[pore_front & (behind == CAM)].mean() > bse[pore_front & (behind == SE)].mean()

    pore = labels == PORE
    in_plane = np.zeros((1, 3, 3), bool)
    in_plane[0, 1, :] = in_plane[0, :, 1] = True
    rim = pore & ~ndimage.binary_erosion(pore, in_plane, border_value=1)
    interior = np.stack([ndimage.distance_transform_edt(p) for p in pore]) >= 3
    assert np.count_nonzero(interior) > 100
    se_image = images["SE"].astype(float)
    assert se_image[rim].mean() > se_image[interior].mean()


def test_se_pore_edge_contrast_is_topographic(porous_structure):
    """Blur- and noise-free: the edge effect brightens the solid beside a pore (a straight edge
    pixel gets ~0.88 x se_edge_gain, from the normalised Gaussian gradient) and leaves the
    cavity at the pore level, rim and interior alike; at gain 0 the solid rim is not brighter."""
    labels = porous_structure.central(porous_structure.labels)
    pore = labels == PORE
    in_plane = np.zeros((1, 3, 3), bool)
    in_plane[0, 1, :] = in_plane[0, :, 1] = True
    rim = pore & ~ndimage.binary_erosion(pore, in_plane, border_value=1)
    se_beside_pore = (labels == SE) & ndimage.binary_dilation(pore, in_plane)
    se_far = (labels == SE) & (np.stack([ndimage.distance_transform_edt(~p) for p in pore]) > 5)
    assert np.count_nonzero(se_beside_pore) > 100 and np.count_nonzero(se_far) > 100
    level = {}
    for gain in (0.0, 0.6):
        run = phantom.merge_params(porous_structure.params, {"render": {
            **QUIET_RENDER, "blur_sigma_px": 0.0, "drift_total_px": [0.0, 0.0],
            "drift_jitter_px": 0.0, "se_edge_gain": gain}})
        se_image = _intensity(render_stack(porous_structure, run)["SE"], run["render"])
        pore_level = run["render"]["se_levels"]["pore"]
        assert np.allclose(se_image[pore], pore_level, atol=1e-3)  # rim and interior alike
        level[gain] = se_image[se_beside_pore].mean() - se_image[se_far].mean()
    assert abs(level[0.0]) < 1e-3
    assert level[0.6] > 0.6 * 0.6


def test_two_voxel_crevice_is_dark_in_se():
    """A two-voxel-wide crevice between CAM and SE reads darker than both solids far from it in
    the SE channel after the default blur: the cavity stays dark and only the solid beside it
    is brightened (Minnmann et al. 2024: pores are cavities, easier to see in SE). Brightening
    both sides of the edge would make it read brighter than either solid."""
    labels = np.full((6, 40, 40), CAM, dtype=np.uint8)
    labels[:, :, 20:] = SE
    labels[:, :, 20:22] = PORE
    margin = 10
    structure = phantom.PhantomStructure(
        labels=labels, cam_particle_id=np.zeros_like(labels), margin_px=margin,
        params=phantom.resolve_params(params(shape_zyx=[6, 20, 20])))
    run = phantom.merge_params(structure.params, {"render": {
        **QUIET_RENDER, "drift_total_px": [0.0, 0.0], "drift_jitter_px": 0.0}})
    profile = _intensity(render_stack(structure, run)["SE"], run["render"]).mean(axis=(0, 1))
    levels = run["render"]["se_levels"]
    crevice = profile[20 - margin:22 - margin]
    assert np.allclose(profile[[0, -1]], [levels["CAM"], levels["SE"]], atol=2e-3)
    assert crevice.max() < min(levels["CAM"], levels["SE"])


def test_write_phantom_round_trip(tmp_path):
    shape = [12, 40, 48]
    vs = 0.2
    run = params(seed=5, shape_zyx=shape, voxel_size_um=vs)
    out = tmp_path / "sample_a"
    result = phantom.write_phantom(out, run, "sample_a")

    for ch in phantom.CHANNELS:
        with tifffile.TiffFile(result[ch]) as tif:
            assert len(tif.pages) == shape[0]
            assert tif.pages[0].shape == tuple(shape[1:]) and tif.pages[0].dtype == np.uint16
            assert tif.is_imagej
            assert tif.imagej_metadata["spacing"] == pytest.approx(vs)
            assert tif.imagej_metadata["unit"] == "um"
            assert tif.series[0].shape == tuple(shape)

    ds = xr.open_zarr(result["ground_truth"])
    assert ds["labels"].dims == ("z", "y", "x") and ds["labels"].dtype == np.uint8
    assert ds["cam_particle_id"].dtype == np.uint32
    assert ds["labels"].shape == tuple(shape)
    assert np.allclose(ds["x"].values, (np.arange(shape[2]) + 0.5) * vs)
    assert np.allclose(ds["z"].values, (np.arange(shape[0]) + 0.5) * vs)
    labels = ds["labels"].values
    for name, value in phantom.PHASES.items():
        assert np.mean(labels == value) == pytest.approx(result["volume_fraction"][name])
    assert ds.attrs["phases"] == phantom.PHASES
    assert ds.attrs["voxel_size_um"] == [vs, vs, vs]
    assert np.allclose(ds["drift_dy_px"].values, phantom.true_drift_px(run)[:, 0])
    assert np.allclose(ds["drift_dx_px"].values, phantom.true_drift_px(run)[:, 1])
    assert "drift_convention" in ds.attrs and "brightness_factor" in ds

    summary = json.loads((out / "phantom.json").read_text())
    assert summary["sample_name"] == "sample_a"
    assert summary["porosity"] == pytest.approx(result["volume_fraction"]["pore"])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["BSE.tif", "SE.tif", "ground_truth.zarr", "phantom.json", "sample.yaml"])  # no temp left


def test_written_sample_file_ingests_like_real_data(tmp_path):
    from voxelyte import config, ingest

    run = params(seed=6, shape_zyx=[8, 32, 36], voxel_size_um=0.2)
    phases = {"pore": {"label": 0}, "CAM": {"label": 1, "density_g_cm3": 4.75},
              "SE": {"label": 2, "density_g_cm3": 2.2}}
    phantom.write_phantom(tmp_path / "P", run, "P", phases=phases)
    sample = config.load_sample(tmp_path / "P" / "sample.yaml")
    assert sample.phases == phases
    assert [c["path"] for c in sample.inputs] == [tmp_path / "P" / f"{ch}.tif"
                                                  for ch in phantom.CHANNELS]
    stack = ingest.read_raw_stack(sample.inputs, sample=sample.name,
                              voxel_size_um=sample.voxel_size_um)
    assert stack.shape == (2, 8, 32, 36)
    np.testing.assert_allclose(stack.attrs["voxel_size_um"], [0.2, 0.2, 0.2])
    np.testing.assert_array_equal(stack.sel(channel="SE").values,
                                  tifffile.imread(tmp_path / "P" / "SE.tif"))
