"""Unsupervised segmentation of a BSE + SE volume: depth-trend flattening, global thresholds
(multi-Otsu BSE, SE-detector pores), gradient-aware rim removal, self-training with the
trainable features, rim-debris removal."""
from __future__ import annotations

import logging
import math
import time

import numpy as np
import xarray as xr
from scipy import ndimage

from voxelyte.contract import phase_table, volume_fractions
from voxelyte.errors import InputError
from voxelyte.segment.annotations import class_table
from voxelyte.segment.forest import TrainedModel, predict, train_classifier
from voxelyte.segment.postprocess import (_outer_distances, remove_middle_rim,
                                          remove_rim_fragments, rim_thickness)
from voxelyte.segment.settings import channel_names, phase_classes, whole_slice_chunks

log = logging.getLogger(__name__)

#: Settings of the self-training recorded in the stage's info.
SELF_TRAINING_KEYS = ("self_training_slices", "self_training_voxels",
                      "self_training_min_voxels_per_phase", "self_training_min_confidence",
                      "self_training_skip_rim_px")


def _sample_values(data: np.ndarray, n: int, rng) -> np.ndarray:
    flat = data.ravel()
    flat = flat[np.isfinite(flat)]
    if flat.size > n:
        flat = flat[rng.choice(flat.size, n, replace=False)]
    return flat


def _robust_level(values: np.ndarray) -> tuple[float, float]:
    """(median, robust standard deviation 1.4826 MAD) of non-empty ``values``."""
    med = float(np.median(values))
    return med, 1.4826 * float(np.median(np.abs(values - med)))


def _unsupervised_channels(stack: xr.DataArray, p: dict, sample=None) -> list[str]:
    """The stack's channel names, checked to hold ``bse_channel`` and ``se_channel``."""
    names = channel_names(stack)
    for key in ("bse_channel", "se_channel"):
        if p[key] not in names:
            raise InputError("channel for unsupervised segmentation not found", sample=sample,
                             field=f"stages.segment.{key}", expected=f"one of {names}",
                             found=p[key])
    return names


def _class_level_fits(channel: np.ndarray, bright: np.ndarray):
    """Straight-line fits over z of the per-slice medians of the bright class and of the rest
    (slices with >= 100 finite voxels of each), or the reason there are none."""
    nz = channel.shape[0]
    z = np.arange(nz, dtype=np.float64)
    hi, lo = np.full(nz, np.nan), np.full(nz, np.nan)
    for k in range(nz):
        v, b = channel[k], bright[k]
        ok = np.isfinite(v)
        if (ok & b).sum() >= 100 and (ok & ~b).sum() >= 100:
            hi[k], lo[k] = np.median(v[ok & b]), np.median(v[ok & ~b])
    good = np.isfinite(hi) & np.isfinite(lo)
    if good.sum() < 2:
        return None, "fewer than 2 slices with both classes"
    hi_fit = np.polyval(np.polyfit(z[good], hi[good], 1), z)
    lo_fit = np.polyval(np.polyfit(z[good], lo[good], 1), z)
    if np.any(hi_fit - lo_fit <= 0):
        return None, "class levels cross over z"
    return (hi_fit, lo_fit), None


def flatten_level_trend(stack: xr.DataArray, p: dict, *, sample=None
                        ) -> tuple[xr.DataArray, dict]:
    """Take a linear depth trend of the phase levels out of every channel.

    The voxels are split once by Otsu on the smoothed BSE channel (bright class / the rest);
    per channel, straight lines fitted over z to both classes' slice medians (``hi'_z``,
    ``lo'_z``) are mapped onto their medians over z:
    ``v' = lo_ref + (v - lo'_z) (hi_ref - lo_ref) / (hi'_z - lo'_z)``. Channels without two
    populated classes on >= 2 slices are left as they are.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` with ``bse_channel`` and ``se_channel``.
    p : dict
        Segment settings.
    sample : str, optional
        Named in errors.

    Returns
    -------
    stack : xarray.DataArray
        The flattened stack, in memory.
    info : dict
        Per channel: corrected or not (and why), the levels at the first and last slice.
    """
    from skimage.filters import threshold_otsu

    names = _unsupervised_channels(stack, p, sample)
    values = np.array(stack.values, dtype=np.float32)
    s = float(p["unsupervised_smoothing_px"])
    bse = values[names.index(p["bse_channel"])]
    smooth = ndimage.gaussian_filter(bse, s) if s > 0 else bse
    rng = np.random.default_rng([int(p["seed"]), 14])
    bright = smooth >= float(threshold_otsu(_sample_values(smooth, 2_000_000, rng)))
    del smooth
    info = {}
    for c, name in enumerate(names):
        fits, reason = _class_level_fits(values[c], bright)
        if fits is None:
            info[name] = {"corrected": False, "reason": reason}
            continue
        hi_fit, lo_fit = fits
        span = hi_fit - lo_fit
        hi_ref, lo_ref = float(np.median(hi_fit)), float(np.median(lo_fit))
        gain = ((hi_ref - lo_ref) / span).astype(np.float32)
        values[c] = lo_ref + (values[c] - lo_fit[:, None, None].astype(np.float32)) \
            * gain[:, None, None]
        info[name] = {"corrected": True,
                      "bright_class_level_first_last": [float(hi_fit[0]), float(hi_fit[-1])],
                      "other_class_level_first_last": [float(lo_fit[0]), float(lo_fit[-1])]}
    return stack.copy(data=values), info


def _phase_order(phases: dict, phase_order, sample=None) -> list[str]:
    labels_of = phase_table(phases).labels
    if phase_order is None:
        phase_order = ["pore", "SE", "CAM"] if {"pore", "SE", "CAM"} <= set(labels_of) \
            else sorted(labels_of, key=labels_of.get)
    if len(phase_order) != 3:
        raise InputError("unsupervised segmentation separates three phases", sample=sample,
                         field="phases", expected="3 phases (pore, middle, brightest)",
                         found=list(labels_of))
    return list(phase_order)


def _threshold_classes(bse: np.ndarray, se: np.ndarray, p: dict, rng):
    """BSE threshold, bright class, standardised SE value, SE class levels, pores and the
    dark-BSE pore level (None: off)."""
    from skimage.filters import threshold_multiotsu

    t_bse = float(threshold_multiotsu(_sample_values(bse, 2_000_000, rng), classes=2)[0])
    bright = bse >= t_bse
    r = np.empty_like(se)
    stats = {}
    for name, where in (("bright", bright), ("middle", ~bright)):
        vals = _sample_values(se[where], 2_000_000, rng)
        med, mad = _robust_level(vals) if vals.size else (0.0, 1.0)
        r[where] = (se[where] - med) / (mad or 1.0)
        stats[name] = {"se_median": med, "se_mad_scaled": mad}
    pore = r < -float(p["se_pore_threshold_mad"])
    k_dark = float(p["bse_pore_threshold_mad"])
    dark_level = None
    if k_dark > 0 and (~bright).any():
        med, sd = _robust_level(_sample_values(bse[~bright], 2_000_000, rng))
        dark_level = med - k_dark * sd
        pore |= bse < dark_level
    return t_bse, bright, r, stats, pore, dark_level


def _threshold_confidence(bse, bright, pore, r, t_bse, k_se, rng):
    """Heuristic certainty (uint8) and the BSE class centres: distance to the threshold
    relative to half the gap of the class medians."""
    centres = [float(np.median(_sample_values(bse[w], 200_000, rng))) if w.any() else t_bse
               for w in (~bright, bright)]
    half_gap = abs(centres[1] - centres[0]) / 2 or 1.0
    conf = np.rint(255 * (0.5 + 0.5 * np.clip(np.abs(bse - t_bse) / half_gap, 0, 1)))
    conf = conf.astype(np.uint8)
    conf[pore] = np.rint(255 * (0.5 + 0.5 * np.clip((-r[pore] - k_se) / k_se, 0, 1)))
    return conf, centres


def _middle_band(bse, labels, middle, p, rng):
    """BSE band of the middle phase (median +- k robust SD) or None: rim voxels outside it are
    low-high mixtures, which the passes after the first may still take."""
    k_band = float(p["rim_middle_band_mad"])
    if k_band > 0 and (labels == middle).any():
        med, sd = _robust_level(_sample_values(bse[labels == middle], 2_000_000, rng))
        return (med - k_band * sd, med + k_band * sd)
    return None


def unsupervised_segment(stack: xr.DataArray, phases: dict, p: dict, *, phase_order=None,
                         sample=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Threshold segmentation of a BSE + SE volume into a dark, a middle and a bright phase.

    Both channels smoothed; Otsu on BSE splits the middle and the bright phase; pores are
    SE-detector voxels ``se_pore_threshold_mad`` robust SD darker than their BSE class's SE
    level, or middle-class voxels ``bse_pore_threshold_mad`` robust SD dark in BSE; then
    :func:`remove_middle_rim` takes the false middle-phase rim between the outer phases.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)`` with ``bse_channel`` and ``se_channel``.
    phases : dict or PhaseTable
        Three phases.
    p : dict
        Segment settings.
    phase_order : list of str, optional
        Phases dark to bright (default pore, SE, CAM, else by label).
    sample : str, optional

    Returns
    -------
    labels : numpy.ndarray
        uint8.
    confidence : numpy.ndarray
        uint8 heuristic certainty.
    info : dict
        Thresholds, levels, rim counts.

    References
    ----------
    Otsu, IEEE Trans. Syst. Man Cybern. 9, 62 (1979). Cooper et al., npj Comput. Mater. 8,
    222 (2022): the false middle-phase rim.
    """
    names = _unsupervised_channels(stack, p, sample)
    labels_of = phase_table(phases).labels
    phase_order = _phase_order(phases, phase_order, sample)
    low, middle, high = (labels_of[n] for n in phase_order)
    s = float(p["unsupervised_smoothing_px"])
    bse = np.asarray(stack.isel(channel=names.index(p["bse_channel"])).values, np.float32)
    se = np.asarray(stack.isel(channel=names.index(p["se_channel"])).values, np.float32)
    if s > 0:
        bse = ndimage.gaussian_filter(bse, s)
        se = ndimage.gaussian_filter(se, s)
    rng = np.random.default_rng([int(p["seed"]), 12])
    t_bse, bright, r, stats, pore, dark_level = _threshold_classes(bse, se, p, rng)
    labels = np.where(bright, high, middle).astype(np.uint8)
    labels[pore] = low
    conf, centres = _threshold_confidence(bse, bright, pore, r, t_bse,
                                          float(p["se_pore_threshold_mad"]), rng)
    gradient = ndimage.gaussian_gradient_magnitude(bse, 1.0)
    level_mid = 0.5 * (float(np.median(bse[labels == low])) if (labels == low).any() else 0.0) \
        + 0.5 * centres[1]
    band = _middle_band(bse, labels, middle, p, rng)
    rim_before = rim_thickness(labels, low=low, middle=middle, high=high)
    labels, relabelled = remove_middle_rim(
        labels, gradient, low=low, middle=middle, high=high, bright=bse,
        threshold=float(level_mid), max_width_px=int(p["rim_max_width_px"]),
        max_iterations=int(p["rim_max_passes"]), middle_band=band)
    info = {"bse_threshold": t_bse, "se_class_levels": stats,
            "se_pore_threshold_mad": float(p["se_pore_threshold_mad"]),
            "bse_pore_level": dark_level,
            "phase_order_dark_to_bright": list(phase_order),
            "rim_threshold_bse": float(level_mid),
            "rim_middle_band_bse": None if band is None else [float(v) for v in band],
            "rim_voxels_relabelled": int(sum(relabelled)),
            "rim_voxels_relabelled_per_pass": relabelled,
            "sandwiched_middle_voxels_before": int(rim_before.size),
            "sandwiched_middle_voxels_after": int(rim_thickness(
                labels, low=low, middle=middle, high=high).size)}
    return labels, conf, info


def _rim_free_candidates(labels, confidence, zs, *, low, middle, high, p):
    """Flat indices of the confident voxels of each label on slices ``zs``, thin middle rims
    between the outer phases left out; and the count of rim voxels left out."""
    nz = labels.shape[0]
    skip_px = float(p["self_training_skip_rim_px"])
    halo = int(math.ceil(skip_px)) + 1
    min_conf = 255.0 * float(p["self_training_min_confidence"])
    candidates = {lab: [] for lab in np.unique(labels).tolist()}
    skipped = 0
    for z in zs:
        a, b = max(0, z - halo), min(nz, z + halo + 1)
        lab = labels[a:b]
        ok = confidence[z] >= min_conf
        if skip_px > 0 and (lab == low).any() and (lab == high).any():
            d_low, d_high = (d[z - a] for d in _outer_distances(lab, low, high))
            rim = (labels[z] == middle) & (d_low + d_high - 1.0 <= skip_px)
            skipped += int(rim.sum())
            ok &= ~rim
        offset = z * labels[z].size
        for value in candidates:
            candidates[value].append(offset + np.flatnonzero(ok & (labels[z] == value)))
    return candidates, skipped


def self_training_annotations(labels: np.ndarray, confidence: np.ndarray, *, low: int,
                              middle: int, high: int, p: dict) -> tuple[np.ndarray, dict]:
    """Training voxels for one self-training round, drawn from the current labels.

    On ``self_training_slices`` slices spread evenly over z, among voxels with confidence >=
    ``self_training_min_confidence`` that are not middle phase in a rim at most
    ``self_training_skip_rim_px`` thick between the outer phases, each phase gets
    ``self_training_voxels`` times its share of the candidates, at least
    ``self_training_min_voxels_per_phase`` (seeded draw).

    Parameters
    ----------
    labels : numpy.ndarray
        Current labels (z, y, x).
    confidence : numpy.ndarray
        uint8 certainty.
    low, middle, high : int
        Labels of the darkest, middle and brightest phase.
    p : dict
        Segment settings.

    Returns
    -------
    annotations : numpy.ndarray
        uint8, value = label + 1, 0 = unlabelled.
    drawn : dict
        ``slices``, ``voxels_per_label``, ``thin_rim_voxels_skipped``.
    """
    nz = labels.shape[0]
    zs = np.unique(np.linspace(0, nz - 1, min(nz, int(p["self_training_slices"])))
                   .round().astype(int))
    candidates, skipped = _rim_free_candidates(labels, confidence, zs, low=low, middle=middle,
                                               high=high, p=p)
    rng = np.random.default_rng([int(p["seed"]), 13])
    annotations = np.zeros(labels.shape, dtype=np.uint8)
    pools = {value: np.concatenate(parts) for value, parts in candidates.items()}
    total = max(1, sum(idx.size for idx in pools.values()))
    picked = {}
    for value, idx in pools.items():
        n_max = max(int(p["self_training_min_voxels_per_phase"]),
                    round(int(p["self_training_voxels"]) * idx.size / total))
        if idx.size > n_max:
            idx = rng.choice(idx, n_max, replace=False)
        annotations.flat[idx] = value + 1
        picked[int(value)] = int(idx.size)
    return annotations, {"slices": int(zs.size), "voxels_per_label": picked,
                         "thin_rim_voxels_skipped": skipped}


def self_train(stack: xr.DataArray, labels: np.ndarray, confidence: np.ndarray, phases: dict,
               p: dict, *, low: int, middle: int, high: int, num_workers: int = 1
               ) -> tuple[np.ndarray, np.ndarray, TrainedModel | None, list[dict]]:
    """Self-training: ``self_training_rounds`` times a random forest on the trainable features
    is fitted on voxels drawn from the current labels (:func:`self_training_annotations`) and
    relabels the whole volume.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``, whole-slice chunks.
    labels, confidence : numpy.ndarray
        The thresholds' labels and certainty.
    phases : dict or PhaseTable
    p : dict
        Segment settings.
    low, middle, high : int
        Labels of the darkest, middle and brightest phase.
    num_workers : int

    Returns
    -------
    labels, confidence : numpy.ndarray
    model : TrainedModel or None
        The last round's forest.
    rounds : list of dict
        Per round: voxels drawn, voxels changed.

    References
    ----------
    Lee, ICML Workshop on Challenges in Representation Learning (2013): pseudo-labels.
    """
    names_of = {v: n for n, v in phase_table(phases).labels.items()}
    table = class_table(phase_classes(phases), phases)
    model, rounds = None, []
    for r in range(int(p["self_training_rounds"])):
        ann, drawn = self_training_annotations(labels, confidence, low=low, middle=middle,
                                               high=high, p={**p, "seed": int(p["seed"]) + r})
        if len({v for v, n in drawn["voxels_per_label"].items() if n}) < 2:
            break
        model = train_classifier(stack, ann, {v: t for v, t in table.items()
                                              if drawn["voxels_per_label"].get(v - 1)},
                                 {**p, "seed": int(p["seed"]) + r}, n_jobs=num_workers)
        new, confidence = predict(stack, model, chunk_z=int(p["chunk_z"]),
                                  num_workers=num_workers)
        rounds.append({"round": r + 1, **drawn,
                       "voxels_per_label": {names_of[v]: n for v, n in
                                            drawn["voxels_per_label"].items()},
                       "changed_voxels": int(np.count_nonzero(new != labels))})
        log.info("self-training round %d: %d voxels changed", r + 1, rounds[-1]["changed_voxels"])
        labels = new
    return labels, confidence, model, rounds


def segment_unsupervised(stack: xr.DataArray, phases: dict, p: dict, *, num_workers: int = 1,
                         sample=None):
    """The unsupervised method end to end: :func:`flatten_level_trend` (``linear``),
    :func:`unsupervised_segment`, :func:`self_train` (``self_training_rounds`` > 0) and
    :func:`remove_rim_fragments`.

    Parameters
    ----------
    stack : xarray.DataArray
        ``(channel, z, y, x)``.
    phases : dict or PhaseTable
    p : dict
        Segment settings.
    num_workers : int
    sample : str, optional

    Returns
    -------
    labels, confidence : numpy.ndarray
        uint8.
    model : TrainedModel or None
        The self-trained forest.
    info : dict
        ``unsupervised`` (and ``volume_fraction_thresholds`` with self-training).
    timings : dict
        Seconds per step.
    """
    labels_of = phase_table(phases).labels
    t0, levels, info, timings = time.perf_counter(), None, {}, {}
    if p["unsupervised_level_trend"] == "linear":
        stack, levels = flatten_level_trend(stack, p, sample=sample)
    labels, conf, extra = unsupervised_segment(stack, phases, p, sample=sample)
    timings["threshold_s"] = time.perf_counter() - t0
    extra["level_trend"] = levels
    info["unsupervised"] = extra
    low, middle, high = (labels_of[n] for n in extra["phase_order_dark_to_bright"])
    model = None
    if int(p["self_training_rounds"]) > 0:
        t1 = time.perf_counter()
        info["volume_fraction_thresholds"] = volume_fractions(labels, phases)
        labels, conf, model, rounds = self_train(
            whole_slice_chunks(stack), labels, conf, phases, p, low=low, middle=middle,
            high=high, num_workers=num_workers)
        timings["self_training_s"] = time.perf_counter() - t1
        extra["self_training"] = {
            "rounds": rounds,
            "sandwiched_middle_voxels_after": int(rim_thickness(
                labels, low=low, middle=middle, high=high).size),
            **{k: p[k] for k in SELF_TRAINING_KEYS}}
    before, t3 = labels, time.perf_counter()
    labels, extra["rim_fragments"] = remove_rim_fragments(
        labels, low=low, middle=middle, high=high, max_voxels=int(p["rim_fragment_max_voxels"]))
    moved = labels != before
    conf[moved] = 255 - conf[moved]    # at most 1 - p(middle)
    timings["rim_fragments_s"] = time.perf_counter() - t3
    extra["rim_fragments"]["max_voxels"] = int(p["rim_fragment_max_voxels"])
    log.info("rim fragments: %d pieces, %d voxels relabelled",
             extra["rim_fragments"]["fragments"], extra["rim_fragments"]["voxels"])
    return labels, conf, model, info, timings
