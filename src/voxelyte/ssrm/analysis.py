"""What an SSRM map says: the isolation threshold from the tip's spreading resistances, log-R
histograms per phase under the tip, isolated carrier pixels against the geometry, the pixels whose
current fields are kept, and the study-level ordering of the samples' isolation."""
from __future__ import annotations

import math

import numpy as np

from voxelyte.contract import phase_table
from voxelyte.ssrm.clusters import geometric_isolation
from voxelyte.ssrm.tip import spreading_resistance_ohm


def isolation_threshold(phases, conductivity: str, floor_S_cm: float, voxel_yx_um, *,
                        tip_size_voxels: int = 1, disc_radius_um: float | None = None,
                        contact_resistance_ohm: float = 0.0, threshold_ohm="auto") -> dict:
    """The carrier phase and the resistance above which a surface pixel counts as isolated.

    Parameters
    ----------
    phases : dict or PhaseTable
        Phase table with ``sigma_<conductivity>_S_cm``.
    conductivity : {'electronic', 'ionic'}
    floor_S_cm : float
        Conductivity floor of every voxel (S cm⁻¹).
    voxel_yx_um : sequence of 2 float
        Face pixel size (µm).
    tip_size_voxels, disc_radius_um, contact_resistance_ohm
        The tip (:func:`voxelyte.ssrm.spreading_resistance_ohm`).
    threshold_ohm : 'auto' or float
        ``auto``: the geometric mean of the half-space spreading resistances (plus contact) of
        the most and the second most conductive phase (10⁶ × the first without a second).

    Returns
    -------
    dict
        carrier (most conductive phase), carrier_spreading_ohm (its spreading resistance plus
        contact), threshold_ohm.
    """
    table = phase_table(phases)
    key = f"sigma_{conductivity}_S_cm"
    sig_of = {name: max(float(spec.get(key) or 0.0), floor_S_cm)
              for name, spec in table.items()}
    ranked = sorted(sig_of, key=sig_of.get, reverse=True)
    carrier = ranked[0]
    second = next((p for p in ranked[1:] if sig_of[p] > 0), None)
    sp_kw = dict(tip_size_voxels=tip_size_voxels, disc_radius_um=disc_radius_um)
    r1 = spreading_resistance_ohm(sig_of[carrier], voxel_yx_um, **sp_kw) + \
        contact_resistance_ohm
    if threshold_ohm == "auto":
        r2 = (spreading_resistance_ohm(sig_of[second], voxel_yx_um, **sp_kw) +
              contact_resistance_ohm) if second else r1 * 1e6
        threshold = math.sqrt(r1 * r2)
    else:
        threshold = float(threshold_ohm)
    return {"carrier": carrier, "carrier_spreading_ohm": r1, "threshold_ohm": threshold}


def resistance_histograms(R: np.ndarray, tip_phase: np.ndarray, phases, threshold_ohm: float,
                          bins: int) -> tuple[np.ndarray, dict, dict]:
    """log10 R histograms and summary numbers per phase under the tip.

    Parameters
    ----------
    R : numpy.ndarray, (n,)
        Resistance of each tip position (Ω).
    tip_phase : numpy.ndarray, (n,)
        Label under each tip position.
    phases : dict or PhaseTable
    threshold_ohm : float
        Isolation threshold (Ω).
    bins : int
        Histogram bins over the finite log10 R range (rounded out to 0.1).

    Returns
    -------
    tuple
        (bin edges in log10 Ω, {phase: counts}, {phase: n_pixels, n_infinite,
        median_resistance_ohm, fraction_above_threshold}).
    """
    logr = np.log10(np.where(np.isfinite(R) & (R > 0), R, np.nan))
    finite = np.isfinite(logr)
    lo, hi = (float(np.nanmin(logr)), float(np.nanmax(logr))) if finite.any() else (0.0, 1.0)
    edges = np.linspace(math.floor(lo * 10) / 10, math.ceil(hi * 10) / 10 + 1e-9,
                        int(bins) + 1)
    hist, per_phase = {}, {}
    for name, spec in phase_table(phases).items():
        sel = tip_phase == spec["label"]
        counts, _ = np.histogram(logr[sel & finite], bins=edges)
        hist[name] = counts.tolist()
        rs = R[sel]
        per_phase[name] = {
            "n_pixels": int(sel.sum()),
            "n_infinite": int(np.count_nonzero(~np.isfinite(rs))),
            "median_resistance_ohm": float(np.median(rs)) if rs.size else None,
            "fraction_above_threshold": float(np.mean(rs > threshold_ohm)) if rs.size else None,
        }
    return edges, hist, per_phase


def carrier_isolation(R: np.ndarray, positions: np.ndarray, labels_oriented: np.ndarray,
                      carrier_label: int, threshold_ohm: float, *,
                      whole_oriented: np.ndarray | None = None, offset=(0, 0)) -> dict:
    """Isolated carrier surface pixels by the map (R above the threshold) against the geometry.

    Parameters
    ----------
    R : numpy.ndarray, (n,)
        Resistance of each tip position (Ω).
    positions : numpy.ndarray, (n, 2)
        Tip positions on the face of ``labels_oriented``.
    labels_oriented : numpy.ndarray
        Mapped labels (depth, rows, cols), scanned face first.
    carrier_label : int
    threshold_ohm : float
    whole_oriented : numpy.ndarray, optional
        The whole (uncropped) volume, oriented the same way; default ``labels_oriented``.
    offset : (int, int)
        Face index of the mapped face's first pixel in ``whole_oriented``.

    Returns
    -------
    dict
        n_carrier_surface_pixels, isolated_fraction_ssrm, isolated_fraction_geometric,
        pixel_agreement and the geometric fraction and agreement at the same pixels of the
        whole volume (None without carrier pixels).
    """
    pos = positions
    on_carrier = labels_oriented[0][pos[:, 0], pos[:, 1]] == carrier_label
    any_ = on_carrier.any()
    iso_r = R[on_carrier] > threshold_ohm
    iso_face = geometric_isolation(labels_oriented, carrier_label)
    geo = iso_face[pos[:, 0], pos[:, 1]][on_carrier]
    agree = float(np.mean(iso_r == geo)) if any_ else None
    if whole_oriented is not None:
        iso_face = geometric_isolation(whole_oriented, carrier_label)
    geo_whole = iso_face[pos[:, 0] + offset[0], pos[:, 1] + offset[1]][on_carrier]
    return {
        "n_carrier_surface_pixels": int(on_carrier.sum()),
        "isolated_fraction_ssrm": float(iso_r.mean()) if any_ else None,
        "isolated_fraction_geometric": float(geo.mean()) if any_ else None,
        "pixel_agreement": agree,
        "isolated_fraction_geometric_whole_volume": float(geo_whole.mean()) if any_ else None,
        "pixel_agreement_whole_volume": float(np.mean(iso_r == geo_whole)) if any_ else None,
    }


def field_positions(R: np.ndarray, candidates: np.ndarray, n_fields: int) -> list[int]:
    """Tip positions whose 3D current fields are kept: the lowest and the highest finite R
    among the candidates, then R quantiles between.

    Parameters
    ----------
    R : numpy.ndarray, (n,)
    candidates : numpy.ndarray of bool, (n,)
        E.g. the positions on the carrier phase.
    n_fields : int

    Returns
    -------
    list of int
        Indices into ``R``, without repeats, at most ``n_fields``.
    """
    cand = np.nonzero(candidates & np.isfinite(R))[0]
    nf = int(n_fields)
    if not (cand.size and nf):
        return []
    order = cand[np.argsort(R[cand], kind="stable")]
    picks = [order[0], order[-1]][:nf]
    for q in np.linspace(0, 1, nf)[1:-1] if nf > 2 else []:
        picks.append(order[int(round(q * (order.size - 1)))])
    seen = []
    for p in picks:
        if p not in seen:
            seen.append(p)
    return seen


def isolation_ordering(connectivity_by_sample: dict, reference: str) -> dict:
    """Study-level check that the SSRM maps rank the samples' isolated carrier pixels as a
    geometric reference does.

    A pair (a, b) agrees when the SSRM fractions differ in the reference's direction, or when the
    reference fractions do not differ beyond two standard errors of the SSRM fractions' pixel
    sampling, sqrt(p'(1−p')/n) each (n = mapped carrier pixels, p' = (p·n + 0.5)/(n + 1), so
    that a fraction of 0 or 1 still carries its sampling error).

    Parameters
    ----------
    connectivity_by_sample : dict
        {sample: ssrm.json "connectivity" (with the reference value added where it comes from
        elsewhere, e.g. the descriptors' surface connectivity)}.
    reference : str
        Key of the geometric fraction to rank against (e.g.
        ``isolated_fraction_geometric_whole_volume``).

    Returns
    -------
    dict
        reference, pairs (samples, ssrm, reference, two_standard_errors, resolved, agree) and
        consistent (None: fewer than two samples with both numbers).
    """
    have = {s: c for s, c in connectivity_by_sample.items()
            if isinstance(c, dict) and c.get("isolated_fraction_ssrm") is not None
            and c.get(reference) is not None}
    names = sorted(have)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ca, cb = have[a], have[b]
            pa, pb = ca["isolated_fraction_ssrm"], cb["isolated_fraction_ssrm"]
            ra, rb = ca[reference], cb[reference]
            se = 0.0
            for p, c in ((pa, ca), (pb, cb)):
                n = max(int(c.get("n_carrier_surface_pixels") or 1), 1)
                q = (p * n + 0.5) / (n + 1)
                se += q * (1 - q) / n
            se = math.sqrt(se)
            resolved = abs(ra - rb) > 2 * se
            agree = (np.sign(pa - pb) == np.sign(ra - rb)) if resolved else True
            pairs.append({"samples": [a, b], "ssrm": [pa, pb], "reference": [ra, rb],
                          "two_standard_errors": 2 * se, "resolved": bool(resolved),
                          "agree": bool(agree)})
    return {"reference": reference, "pairs": pairs,
            "consistent": all(p["agree"] for p in pairs) if pairs else None}
